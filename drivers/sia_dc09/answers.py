"""What goes back on the wire: the receiver's ACK/NAK/DUH, and blocks as a panel builds them.

Answers have to pass the panels' own parsers, which are stricter than the standard reads:
dc09-spt checks CRC and length, reads the sequence at a fixed offset and, for ``*ACK``, the
last 21 decrypted bytes as ``]_HH:MM:SS,MM-DD-YYYY``; pysiaalarm-style receivers answer
``"ACK"seq R L #acct[]`` and a panel that got ``"ACK"0000None`` from one (Pyronix Enforcer,
HA issue 180511) gives up. So ACK and DUH echo the block's sequence, ``R``, ``L`` and account
as the block had them (``L0`` where it had no line number), in the CRC form the block used; NAK is the standard's
``"NAK"0000R0L0A0[]_time`` with the receiver's clock, so the panel can correct its own.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from drivers.sia_dc09.blocks import Verdict, format_timestamp
from drivers.sia_dc09.crc import crc16_arc
from drivers.sia_dc09.crypto import encrypt_tail
from drivers.sia_dc09.framing import binary_crc_at, frame


def _fields(receiver: str | None, line: str | None, account: str, *, answer: bool = True) -> str:
    """``R..L..#acct`` as the block had them; in an answer a missing or empty ``L`` is ``L0``
    (the standard's form, and the one strict parsers such as pysiaalarm's regex require)."""
    r = "" if receiver is None else f"R{receiver}"
    lp = f"L{line or '0'}" if answer else ("" if line is None else f"L{line}")
    return f"{r}{lp}#{account}" if account else f"{r}{lp}"


def build_response(
    verdict: Verdict,
    *,
    seq: str = "0000",
    receiver: str | None = None,
    line: str | None = "0",
    account: str = "",
    key: bytes | None = None,
    now: datetime | None = None,
    binary_crc: bool = False,
) -> bytes:
    """ACK/DUH echo the block's seq/R/L/#acct; NAK is ``"NAK"0000R0L0A0[]_time`` (receiver time).

    A clear ACK carries no timestamp (as common receivers answer); an encrypted one carries it
    inside the encrypted part, as the panel checks it against replays.
    """
    if verdict is Verdict.NAK:
        ts = format_timestamp(now or datetime.now(UTC))
        return frame(f'"NAK"0000R{receiver or "0"}L0A0[]{ts}', binary_crc=binary_crc)
    head = f'"{verdict.value}"{seq}{_fields(receiver, line, account)}['
    if key is not None and verdict is Verdict.ACK:
        ts = format_timestamp(now or datetime.now(UTC))
        return frame(f'"*{verdict.value}"{seq}{_fields(receiver, line, account)}[' + encrypt_tail(key, "]" + ts),
                     binary_crc=binary_crc)
    return frame(head + "]", binary_crc=binary_crc)


def build_block(
    id_token: str,
    seq: int | str,
    account: str,
    payload: str = "",
    *,
    receiver: str | None = None,
    line: str | None = "0",
    key: bytes | None = None,
    ts: datetime | None = None,
) -> bytes:
    """A panel's block (simulator, bench): ``payload`` is what follows ``#acct|`` in the data.

    Always timestamped; encrypted in the standard layout (``pad|#acct|payload]..._time``).
    ``payload`` may end in extended data (``Nri1/FA1][X115000``); its text goes out as
    Windows-1252. :func:`to_binary_crc` turns the result into a two-byte-CRC panel's block.
    """
    stamp = format_timestamp(ts or datetime.now(UTC))
    seq_txt = seq if isinstance(seq, str) else f"{seq:04d}"
    fields = _fields(receiver or None, line, account, answer=False)
    head = f'"{"*" if key else ""}{id_token}"{seq_txt}{fields}['.encode("ascii")
    data = f"#{account}|{payload}" if payload else ""
    tail = (data + "]" + stamp).encode("cp1252")
    if key is not None:
        return frame(head + encrypt_tail(key, tail).encode("ascii"))
    return frame(head + tail)


def to_binary_crc(block: bytes) -> bytes:
    """A framed block (LF..CR, hex CRC) as panels with a two-byte binary CRC send it."""
    return b"\n" + int(block[1:5], 16).to_bytes(2, "big") + block[5:]


_ANSWER = re.compile(rb'"\*?(ACK|NAK|DUH|RSP)"([0-9A-Fa-f]{4})')


def parse_response(block: bytes) -> tuple[str, str] | None:
    """(verdict token, seq) of a receiver's answer body (between LF and CR), either CRC form; for panels."""
    binary = binary_crc_at(b"\n" + block)
    start = 6 if binary else 8
    try:
        crc = int.from_bytes(block[:2], "big") if binary else int(block[:4], 16)
    except ValueError:
        return None
    if len(block) < start + 1 or crc16_arc(block[start:]) != crc:
        return None
    m = _ANSWER.match(block, start)
    return (m[1].decode(), m[2].decode()) if m else None
