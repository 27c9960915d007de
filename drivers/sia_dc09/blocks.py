"""DC-09 blocks: what a valid one says and why one is refused.

Content of a block (between the framing's length field and CR)::

    "ID"  seq  [Rrcvr]  Lpref  #acct  [data]  [x..]  [_HH:MM:SS,MM-DD-YYYY]

``data`` is ``#acct|payload`` (the standard), ``|payload`` or ``payload`` (both sent by real
panels); encrypted blocks carry ``pad|data]...`` under AES (see :mod:`.crypto`).
:func:`parse_block` checks in a fixed order -- framing (CRC, length: NAK), header (DUH),
account, decryption, data (DUH), then timestamp and its window (NAK) -- and never raises on
input: every refusal is a :class:`BlockError` with the verdict the panel gets, carrying the
block's seq/R/L/account whenever the header could be read so the answer can echo them.

The timestamp window (``[-40 s, +20 s]`` of the receiver's clock, UTC) is what DC-09 requires
for encrypted blocks (replay protection); for plain blocks it is the receiver's choice
(``plain_window``), off by default so a panel on local time is not NAKed forever.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from drivers.sia_dc09.crypto import decrypt, split_plain
from drivers.sia_dc09.header import Header, read_header, unframe

KNOWN_IDS = ("SIA-DCS", "ADM-CID", "NULL")
WINDOW_PAST_S = 40.0
WINDOW_FUTURE_S = 20.0
TS_FORMAT = "_%H:%M:%S,%m-%d-%Y"
#: data and extended text are ASCII by the standard, Windows-1252 where it allows text (x-data);
#: some transmitters send UTF-8 there instead (tried first: a valid multi-byte UTF-8 sequence is
#: next to impossible in real Windows-1252 text)
TEXT_ENCODING = "cp1252"


def decode_text(raw: bytes) -> str:
    """Block text: ASCII, else UTF-8 if it is valid UTF-8, else Windows-1252 (never raises)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode(TEXT_ENCODING, "replace")

#: extended data fields (DC-09 5.5.1): the first character says what the rest is (cross-checked
#: with pysiaalarm's xdata table); text fields (I, L, O, R, S) may be Windows-1252
EXTENDED_FIELDS = {
    "A": "authentication hash", "C": "supervision category", "H": "time of occurrence", "I": "alarm text",
    "J": "network path", "K": "encryption key", "L": "location", "M": "MAC address", "N": "network address",
    "O": "building name", "P": "authentication hash", "R": "room", "S": "site name", "T": "alarm trigger",
    "V": "verification", "X": "longitude", "Y": "latitude", "Z": "altitude",
}

#: why a plain block from an account with a key is refused: anyone on the network can write one (issue 18).
#: DUH, not NAK: NAK means "damaged, send it again" (CRC, length, clock) and the panel would resend the
#: same plain block for ever; DUH is DC-09's "received, will not take this content", as for an encrypted
#: block without a key -- the panel reports it, and a panel that should encrypt needs its settings fixed.
PLAIN_REFUSED = "plain block from an account with a key"

_TAIL = re.compile(r"(?P<data>[^\[\]]*)\](?P<ext>(?:\[[^\[\]]*\])*)(?P<ts>_[0-9:,-]*)?\Z", re.S)
#: the data's own account part: ``#acct|`` (any letters), ``1234|`` (digits) or a bare ``|``
_DATA_ACCOUNT = re.compile(r"(?:#(?P<acct>[0-9A-Za-z]{1,16})|(?P<num>[0-9]{0,16}))\|")


class Verdict(StrEnum):
    ACK = "ACK"
    NAK = "NAK"
    DUH = "DUH"


@dataclass(frozen=True)
class Dc09Message:
    """One valid block. ``data`` is the text inside ``[...]`` (``#acct|Nri1/FA12``), decrypted."""

    id_token: str
    seq: str
    receiver: str | None          # None: no R field
    line: str | None              # None: no L field; "": L without digits
    account: str                  # the header's #acct, else the data's
    data: str
    extended: tuple[str, ...] = ()
    timestamp: datetime | None = None
    encrypted: bool = False
    binary_crc: bool = False
    lenient: tuple[str, ...] = ()  # how the block departs from the standard (logged)
    header_account: bool = True    # False: the account came from the data only

    @property
    def payload(self) -> str:
        """The data after ``#acct|`` (or ``|``), or the whole data when it has no account part."""
        m = _DATA_ACCOUNT.match(self.data)
        return self.data[m.end():] if m else self.data

    @property
    def extended_fields(self) -> tuple[tuple[str, str, str], ...]:
        """The extended data as (letter, what it is, value); an unknown letter is "unknown"."""
        return tuple((x[:1], EXTENDED_FIELDS.get(x[:1], "unknown"), x[1:]) for x in self.extended if x)

    @property
    def data_account(self) -> str:
        """The account inside the data (``#001111|...``), "" when there is none."""
        m = _DATA_ACCOUNT.match(self.data)
        return (m["acct"] or m["num"] or "") if m else ""


@dataclass(frozen=True)
class BlockError:
    """A block we answer with NAK or DUH; ``what`` is for logs and counters (never secrets)."""

    verdict: Verdict
    what: str
    seq: str = "0000"
    receiver: str | None = None
    line: str | None = "0"
    account: str = ""
    encrypted: bool = False
    binary_crc: bool = False
    header_read: bool = False


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


def now_utc() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------- parsing, step by step
def _refuse(h: Header, verdict: Verdict, what: str, account: str = "") -> BlockError:
    return BlockError(verdict, what, h.seq, h.receiver, h.line, account or h.account, h.encrypted, h.binary_crc,
                      True)


def _admit(h: Header, accounts: Collection[str] | None) -> BlockError | None:
    """DUH for an unknown ID token or an account not accepted (when the header names one)."""
    if h.id_token not in KNOWN_IDS:
        return _refuse(h, Verdict.DUH, "unknown id token")
    if h.account and accounts is not None and h.account.upper() not in accounts:
        return _refuse(h, Verdict.DUH, "account not accepted")
    return None


def _tail(h: Header, keys: Callable[[str], bytes | None]) -> bytes | BlockError:
    """The bytes after ``[`` in the clear: decrypted and without the pad (DUH when that fails)."""
    if not h.encrypted:
        return h.rest
    key = keys(h.account)
    if key is None:
        return _refuse(h, Verdict.DUH, "encrypted block but no key")
    plain = decrypt(key, h.rest)
    if plain is None:
        return _refuse(h, Verdict.DUH, "encrypted part is not whole AES blocks of hex")
    parts = split_plain(plain, h.account)
    if parts is None:
        return _refuse(h, Verdict.DUH, "cannot decrypt (wrong key?)")
    return parts[1]


def _timestamp(h: Header, text: str | None, now: datetime | None, lenient: list[str],
               plain_window: bool) -> datetime | None | BlockError:
    """The block's time, checked against the replay window where it applies (NAK when it fails)."""
    checked = h.encrypted or plain_window
    ts = None
    if text:
        try:
            ts = parse_timestamp(text)
        except ValueError:
            if checked:
                return _refuse(h, Verdict.NAK, "bad timestamp")
            lenient.append("unreadable timestamp")
    elif h.encrypted:
        return _refuse(h, Verdict.NAK, "encrypted block without timestamp")
    if ts is not None and now is not None and checked:
        delta = (ts - now).total_seconds()
        if delta < -WINDOW_PAST_S or delta > WINDOW_FUTURE_S:
            return _refuse(h, Verdict.NAK, "timestamp outside window")
    return ts


def parse_block(
    body: bytes,
    *,
    keys: Callable[[str], bytes | None] = lambda acct: None,
    now: datetime | None = None,
    accounts: Collection[str] | None = None,
    plain_window: bool = False,
    allow_plain: bool = True,
) -> Dc09Message | BlockError:
    """Check and parse what was between LF and CR. Never raises on input.

    ``keys(account)`` gives the AES key for an account's encrypted blocks; ``accounts`` (if
    given) are the accepted account numbers, upper case; ``now`` enables the timestamp window
    (always for encrypted blocks, for plain ones only with ``plain_window``). Without
    ``allow_plain``, a plain block from an account that has a key is DUHed (:data:`PLAIN_REFUSED`).
    """
    content, binary, why = unframe(body)
    if content is None:
        return BlockError(Verdict.NAK, why, binary_crc=binary)
    h = read_header(content, binary)
    if h is None:
        return BlockError(Verdict.DUH, "unparsable header", binary_crc=binary)
    tail = _admit(h, accounts) or _tail(h, keys)
    if isinstance(tail, BlockError):
        return tail
    t = _TAIL.match(decode_text(tail))
    if t is None:
        return _refuse(h, Verdict.DUH, "unparsable data")
    lenient = list(h.lenient)
    data = t["data"]
    account = h.account
    if not account:
        m = _DATA_ACCOUNT.match(data)
        account = (m["acct"] or m["num"] or "") if m else ""
        if accounts is not None and account.upper() not in accounts:
            return _refuse(h, Verdict.DUH, "account not accepted", account)
    if not h.encrypted and not allow_plain and keys(account) is not None:
        return _refuse(h, Verdict.DUH, PLAIN_REFUSED, account)
    ts = _timestamp(h, t["ts"], now, lenient, plain_window)
    if isinstance(ts, BlockError):
        return ts
    ext = tuple(re.findall(r"\[([^\[\]]*)\]", t["ext"])) if t["ext"] else ()
    return Dc09Message(h.id_token, h.seq, h.receiver, h.line, account, data, ext, ts, h.encrypted, h.binary_crc,
                       tuple(lenient), bool(h.account))
