"""A DC-09 block's frame check and header: ``CRC 0LLL "ID" seq [Rrcvr] [Lpref] [#acct] [``.

Strict where it protects the data (CRC and length: NAK, the panel resends), lenient where
real panels differ from the letter of the standard and the meaning is still clear -- each
such difference is named in :attr:`Header.lenient` so the receiver can log it:

* the CRC as two raw bytes instead of four hex characters (Lupusec, OPAX, Trikdis 2012 mode);
* a sequence number with hex letters (dc09-spt counts in hex: ``000B``);
* ``L`` without digits, or no ``L`` at all (dc09-spt without a line number);
* no ``#acct`` before ``[`` (the account only in the data: ``[#9999|NBA2]``);
* an account with characters other than hex digits (``#foc7688``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from drivers.sia_dc09.crc import crc16_arc

_HEADER = re.compile(
    rb'"(?P<star>\*?)(?P<id>[A-Z0-9-]{1,20})"(?P<seq>[0-9A-Fa-f]{4})(?:R(?P<rcv>[0-9A-Fa-f]{0,6}))?'
    rb'(?:L(?P<line>[0-9A-Fa-f]{0,6}))?(?:#(?P<acct>[0-9A-Za-z]{1,16}))?\['
)
_HEX_ACCOUNT = re.compile(r"[0-9A-Fa-f]{3,16}\Z")


@dataclass(frozen=True)
class Header:
    """What could be read of a block whose frame checked out."""

    id_token: str
    seq: str
    receiver: str | None       # None: no R field; "" : R without digits
    line: str | None           # None: no L field; "" : L without digits
    account: str               # "" when the header has no #acct
    encrypted: bool
    binary_crc: bool
    rest: bytes                # everything after "["
    lenient: tuple[str, ...] = ()


def unframe(body: bytes) -> tuple[bytes | None, bool, str]:
    """(content from the first ``"`` or None, binary CRC?, why not) -- None when CRC or length
    fail (NAK); the CRC form is told either way so the NAK goes back in the form the panel reads."""
    if len(body) >= 9 and body[8:9] == b'"':
        binary, start = False, 8
    elif len(body) >= 7 and body[6:7] == b'"' and body[2:3] == b"0":
        binary, start = True, 6
    else:
        return None, False, "short or malformed block"
    try:
        crc = int.from_bytes(body[:2], "big") if binary else int(body[:4], 16)
        length = int(body[start - 4:start], 16)
    except ValueError:
        return None, binary, "bad CRC or length field"
    content = body[start:]
    if crc16_arc(content) != crc:
        return None, binary, "crc"
    if length != len(content):
        return None, binary, "length"
    return content, binary, ""


def read_header(content: bytes, binary_crc: bool) -> Header | None:
    """The header of checked content, or None when it cannot be read (DUH)."""
    m = _HEADER.match(content)
    if m is None:
        return None
    seq = m["seq"].decode()
    rcv = None if m["rcv"] is None else m["rcv"].decode()
    line = None if m["line"] is None else m["line"].decode()
    acct = (m["acct"] or b"").decode()
    lenient = []
    if binary_crc:
        lenient.append("binary CRC")
    if not seq.isdigit():
        lenient.append("hex sequence number")
    if line is None:
        lenient.append("no L field")
    elif not line:
        lenient.append("L without digits")
    if not acct:
        lenient.append("no #acct in header")
    elif not _HEX_ACCOUNT.match(acct):
        lenient.append("non-hex account")
    return Header(m["id"].decode(), seq, rcv, line, acct, bool(m["star"]), binary_crc,
                  content[m.end():], tuple(lenient))
