"""DC-09 blocks: what a valid one says, why one is refused, and the blocks and answers we build.

Content of a block (between the framing's length field and CR)::

    "ID"  seq(4 dec)  [Rrcvr]  Lpref  #acct  [data]  [x..]  [_HH:MM:SS,MM-DD-YYYY]

:func:`parse_block` checks in a fixed order -- framing (CRC, length: NAK), header (DUH),
account, encryption, data, then timestamp and its window (NAK) -- and never raises on input:
every refusal is a :class:`BlockError` with the verdict the panel gets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from drivers.sia_dc09.crc import crc16_arc
from drivers.sia_dc09.crypto import decrypt_tail, encrypt_tail
from drivers.sia_dc09.framing import frame

KNOWN_IDS = ("SIA-DCS", "ADM-CID", "NULL")
WINDOW_PAST_S = 40.0
WINDOW_FUTURE_S = 20.0
TS_FORMAT = "_%H:%M:%S,%m-%d-%Y"


class Verdict(StrEnum):
    ACK = "ACK"
    NAK = "NAK"
    DUH = "DUH"


@dataclass(frozen=True)
class Dc09Message:
    """One valid block. ``data`` is the text inside ``[...]`` (``#acct|Nri1/FA12``), decrypted."""

    id_token: str
    seq: str
    receiver: str        # hex digits after R ("" when absent)
    line: str            # hex digits after L
    account: str
    data: str
    extended: tuple[str, ...] = ()
    timestamp: datetime | None = None
    encrypted: bool = False

    @property
    def payload(self) -> str:
        """The data after ``#acct|`` (or the whole data when there is no account part)."""
        _acct, bar, rest = self.data.partition("|")
        return rest if bar else self.data


@dataclass(frozen=True)
class BlockError:
    """A block we answer with NAK or DUH; ``what`` is for logs and counters (never secrets)."""

    verdict: Verdict
    what: str
    seq: str = "0000"
    receiver: str = ""
    line: str = "0"
    account: str = ""
    encrypted: bool = False


_HEADER = re.compile(
    rb'^"(?P<star>\*?)(?P<id>[A-Z0-9-]{1,20})"(?P<seq>\d{4})(?:R(?P<rcv>[0-9A-Fa-f]{1,6}))?'
    rb'L(?P<line>[0-9A-Fa-f]{1,6})#(?P<acct>[0-9A-Fa-f]{3,16})\[(?P<rest>.*)$',
    re.S,
)
_TAIL = re.compile(r"^(?P<data>[^\[\]]*)\](?P<ext>(?:\[[^\[\]]*\])*)(?P<ts>_\d\d:\d\d:\d\d,\d\d-\d\d-\d{4})?$", re.S)


def parse_timestamp(text: str) -> datetime:
    """``_HH:MM:SS,MM-DD-YYYY`` (UTC); slicing, not strptime: this is on every block's path."""
    if len(text) != 20 or text[0] != "_" or text[3] != ":" or text[6] != ":" or text[9] != "," \
            or text[12] != "-" or text[15] != "-":
        raise ValueError("bad DC-09 timestamp")
    return datetime(int(text[16:20]), int(text[10:12]), int(text[13:15]), int(text[1:3]), int(text[4:6]),
                    int(text[7:9]), tzinfo=UTC)


def format_timestamp(ts: datetime) -> str:
    t = ts.astimezone(UTC)
    return f"_{t.hour:02d}:{t.minute:02d}:{t.second:02d},{t.month:02d}-{t.day:02d}-{t.year:04d}"


# ---------------------------------------------------------------------- parsing, step by step
@dataclass(frozen=True)
class _Header:
    """The parsed header of a block whose framing was valid."""

    id_token: str
    seq: str
    receiver: str
    line: str
    account: str
    encrypted: bool
    rest: bytes

    def refuse(self, verdict: Verdict, what: str) -> BlockError:
        return BlockError(verdict, what, self.seq, self.receiver, self.line, self.account, self.encrypted)


def _unframe(body: bytes) -> bytes | BlockError:
    """The content after CRC and length, once both check out (NAK otherwise)."""
    if len(body) < 9 or body[8:9] != b'"':
        return BlockError(Verdict.NAK, "short or malformed block")
    crc_txt, len_txt, rest = body[:4], body[4:8], body[8:]
    try:
        crc = int(crc_txt, 16)
        if len_txt[:1] != b"0":
            raise ValueError
        length = int(len_txt[1:], 16)
    except ValueError:
        return BlockError(Verdict.NAK, "bad CRC or length field")
    if crc16_arc(rest) != crc:
        return BlockError(Verdict.NAK, "crc")
    if length != len(rest):
        return BlockError(Verdict.NAK, "length")
    return rest


def _header(content: bytes) -> _Header | BlockError:
    m = _HEADER.match(content)
    if m is None:
        return BlockError(Verdict.DUH, "unparsable header")
    return _Header(m["id"].decode(), m["seq"].decode(), (m["rcv"] or b"").decode(), m["line"].decode(),
                   m["acct"].decode(), bool(m["star"]), m["rest"])


def _tail_text(h: _Header, keys: Callable[[str], bytes | None],
               accounts: set[str] | frozenset[str] | None) -> str | BlockError:
    """The plain text after ``[`` (decrypted), once the id and account are accepted (DUH otherwise)."""
    if h.id_token not in KNOWN_IDS:
        return h.refuse(Verdict.DUH, f"unknown id {h.id_token[:20]}")
    if accounts is not None and h.account.upper() not in accounts:
        return h.refuse(Verdict.DUH, "account not accepted")
    try:
        text = h.rest.decode("ascii")
    except UnicodeDecodeError:
        return h.refuse(Verdict.DUH, "non-ASCII data")
    if not h.encrypted:
        return text
    key = keys(h.account)
    if key is None:
        return h.refuse(Verdict.DUH, "encrypted block but no key")
    plain = decrypt_tail(key, text)
    if plain is None:
        return h.refuse(Verdict.DUH, "cannot decrypt")
    return plain


def _timestamp(h: _Header, text: str | None, now: datetime | None) -> datetime | None | BlockError:
    """The block's time, checked against the replay window (NAK when bad, missing when encrypted, or out)."""
    ts = None
    if text:
        try:
            ts = parse_timestamp(text)
        except ValueError:
            return h.refuse(Verdict.NAK, "bad timestamp")
    elif h.encrypted:
        return h.refuse(Verdict.NAK, "encrypted block without timestamp")
    if ts is not None and now is not None:
        delta = (ts - now).total_seconds()
        if delta < -WINDOW_PAST_S or delta > WINDOW_FUTURE_S:
            return h.refuse(Verdict.NAK, f"timestamp outside window ({delta:+.0f} s)")
    return ts


def parse_block(
    body: bytes,
    *,
    keys: Callable[[str], bytes | None] = lambda acct: None,
    now: datetime | None = None,
    accounts: set[str] | frozenset[str] | None = None,
) -> Dc09Message | BlockError:
    """Check and parse what was between LF and CR. Never raises on input.

    ``keys(account)`` gives the AES key for encrypted blocks; ``accounts`` (if given) are the
    accepted account numbers, upper case; ``now`` enables the timestamp window check.
    """
    content = _unframe(body)
    if isinstance(content, BlockError):
        return content
    h = _header(content)
    if isinstance(h, BlockError):
        return h
    tail_text = _tail_text(h, keys, accounts)
    if isinstance(tail_text, BlockError):
        return tail_text
    t = _TAIL.match(tail_text)
    if t is None:
        return h.refuse(Verdict.DUH, "unparsable data")
    ts = _timestamp(h, t["ts"], now)
    if isinstance(ts, BlockError):
        return ts
    data = t["data"]
    if h.encrypted:
        data = f"#{h.account}|{data}" if data else ""
    ext = tuple(x for x in re.findall(r"\[([^\[\]]*)\]", t["ext"] or ""))
    return Dc09Message(h.id_token, h.seq, h.receiver, h.line, h.account, data, ext, ts, h.encrypted)


# ---------------------------------------------------------------------- building blocks and answers
def build_response(
    verdict: Verdict,
    *,
    seq: str = "0000",
    receiver: str = "",
    line: str = "0",
    account: str = "",
    key: bytes | None = None,
    now: datetime | None = None,
) -> bytes:
    """ACK/DUH echo the block's seq/R/L/#acct; NAK is ``"NAK"0000R0L0A0[]_time`` (receiver time).

    A clear ACK carries no timestamp (as common receivers answer); an encrypted one carries it
    inside the encrypted part, as the panel checks it against replays.
    """
    now = now or datetime.now(UTC)
    ts = format_timestamp(now)
    if verdict is Verdict.NAK:
        return frame(f'"NAK"0000R{receiver or "0"}L0A0[]{ts}')
    r = f"R{receiver}" if receiver else ""
    acct = f"#{account}" if account else ""
    if key is not None and verdict is Verdict.ACK:
        return frame(f'"*ACK"{seq}{r}L{line}{acct}[' + encrypt_tail(key, "]" + ts))
    return frame(f'"{verdict.value}"{seq}{r}L{line}{acct}[]')


def build_block(
    id_token: str,
    seq: int,
    account: str,
    payload: str = "",
    *,
    receiver: str = "",
    line: str = "0",
    key: bytes | None = None,
    ts: datetime | None = None,
) -> bytes:
    """A panel's block (simulator, bench): ``payload`` is what follows ``#acct|`` in the data; always timestamped."""
    r = f"R{receiver}" if receiver else ""
    stamp = format_timestamp(ts or datetime.now(UTC))
    head = f'"{"*" if key else ""}{id_token}"{seq:04d}{r}L{line}#{account}['
    if key is not None:
        return frame(head + encrypt_tail(key, f"{payload}]{stamp}"))
    data = f"#{account}|{payload}" if payload else ""
    return frame(head + f"{data}]{stamp}")


def parse_response(block: bytes) -> tuple[str, str] | None:
    """(verdict token, seq) of a receiver's answer body (between LF and CR); for panels."""
    try:
        if len(block) < 9 or crc16_arc(block[8:]) != int(block[:4], 16):
            return None
    except ValueError:
        return None
    m = re.match(rb'^"\*?(ACK|NAK|DUH)"(\d{4})', block[8:])
    return (m[1].decode(), m[2].decode()) if m else None


def now_utc() -> datetime:
    return datetime.now(UTC)
