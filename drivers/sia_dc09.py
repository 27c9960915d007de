"""SIA DC-09 (ANSI/SIA DC-09) receiver: framing, CRC, AES, ACK/NAK/DUH, and an asyncio TCP server.

A block on the wire::

    LF  CRC(4 hex)  0LLL(length, 3 hex)  "ID"  seq(4 dec)  [Rrcvr]  Lpref  #acct  [data]  [x..]  [_HH:MM:SS,MM-DD-YYYY]  CR

* ``CRC`` is CRC-16/ARC (poly 0x8005 reflected = 0xA001, init 0) over everything from the first
  ``"`` up to (not including) the CR; ``LLL`` is the byte length of that same span.
* ``ID`` is ``SIA-DCS``, ``ADM-CID`` or ``NULL`` (a supervision poll); a leading ``*``
  (``"*SIA-DCS"``) means the part after ``[`` is AES-CBC (zero IV) encrypted and hex encoded.
  Its plain text is ``pad | data ] [x..] _timestamp``: random pad bytes (never ``|[]``) so the
  length is a multiple of 16, then the data without its ``#acct`` (the header has it).
* The timestamp is UTC. Encrypted blocks must carry one; any timestamp outside
  ``[-40 s, +20 s]`` of the receiver's clock is refused with NAK (replay protection).

Answers: ``ACK`` (same seq/receiver/line/account, encrypted when the block was) only after the
handler returned -- i.e. after the gateway committed the event, because the panel resends
anything not ACKed; ``NAK`` (seq 0000, carries the receiver's time so the panel can correct
its clock) for CRC/length/timestamp errors and when the handler failed; ``DUH`` for what
we do not understand (unknown ID token, unknown account, encrypted without a key).

No gateway imports: protocol only. The receiver never lets one connection disturb another:
each connection is its own task, lines are bounded, idle connections are closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Awaitable, Callable, Iterable


log = logging.getLogger(__name__)

LF, CR = 0x0A, 0x0D
MAX_BLOCK = 1024          # bytes between LF and CR; anything longer is garbage
KNOWN_IDS = ("SIA-DCS", "ADM-CID", "NULL")
WINDOW_PAST_S = 40.0
WINDOW_FUTURE_S = 20.0
TS_FORMAT = "_%H:%M:%S,%m-%d-%Y"
PAD_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


# ---------------------------------------------------------------------- CRC
def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()
_CRC_TABLE16: list[int] = []


def _crc_table16() -> list[int]:
    """16 bits at a time: the register is as wide as the chunk, so one lookup replaces two steps."""
    t = _CRC_TABLE
    out = [0] * 65536
    for v in range(65536):
        c = (v >> 8) ^ t[v & 0xFF]
        out[v] = (c >> 8) ^ t[c & 0xFF]
    return out


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC as DC-09 specifies (check value of b"123456789" is 0xBB3D).

    Two bytes per lookup (a 64 Ki table built on first use, ~30 ms): it runs twice per block,
    and the plain byte loop was the largest single cost on the receive path.
    """
    global _CRC_TABLE16
    t = _CRC_TABLE
    crc = 0
    if len(data) >= 16 and sys.byteorder == "little":
        if not _CRC_TABLE16:
            _CRC_TABLE16 = _crc_table16()
        t16 = _CRC_TABLE16
        n = len(data) & ~1
        for w in memoryview(data)[:n].cast("H"):
            crc = t16[crc ^ w]
        if len(data) & 1:
            crc = (crc >> 8) ^ t[(crc ^ data[-1]) & 0xFF]
        return crc
    for b in data:
        crc = (crc >> 8) ^ t[(crc ^ b) & 0xFF]
    return crc


# ---------------------------------------------------------------------- AES
def load_key(text: str) -> bytes:
    """A DC-09 key as hex (32/48/64 hex digits = AES-128/192/256)."""
    key = bytes.fromhex(text.strip())
    if len(key) not in (16, 24, 32):
        raise ValueError("DC-09 AES key must be 16, 24 or 32 bytes (32, 48 or 64 hex digits)")
    return key


def _aes_cbc(key: bytes) -> Any:
    # imported on first use: cryptography costs ~6 MB of RSS, and most panels send plain blocks
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    return Cipher(algorithms.AES(key), modes.CBC(bytes(16)))


def aes_encrypt(key: bytes, plain: bytes) -> bytes:
    enc = _aes_cbc(key).encryptor()
    return enc.update(plain) + enc.finalize()


def aes_decrypt(key: bytes, cipher: bytes) -> bytes:
    dec = _aes_cbc(key).decryptor()
    return dec.update(cipher) + dec.finalize()


def _pad_for(length: int) -> bytes:
    n = (-length) % 16
    rnd = os.urandom(n)
    return bytes(PAD_ALPHABET[b % len(PAD_ALPHABET)] for b in rnd)


def encrypt_tail(key: bytes, tail: str) -> str:
    """``tail`` = what follows ``|`` in the plain data (``...]_timestamp``) -> uppercase hex."""
    body = b"|" + tail.encode("ascii")
    return aes_encrypt(key, _pad_for(len(body)) + body).hex().upper()


# ---------------------------------------------------------------------- parsed blocks
class Verdict(str, Enum):
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
                     int(text[7:9]), tzinfo=timezone.utc)


def format_timestamp(ts: datetime) -> str:
    t = ts.astimezone(timezone.utc)
    return f"_{t.hour:02d}:{t.minute:02d}:{t.second:02d},{t.month:02d}-{t.day:02d}-{t.year:04d}"


def parse_block(
    body: bytes,
    *,
    keys: Callable[[str], bytes | None] = lambda acct: None,
    now: datetime | None = None,
    accounts: "set[str] | frozenset[str] | None" = None,
) -> Dc09Message | BlockError:
    """Check and parse what was between LF and CR. Never raises on input.

    ``keys(account)`` gives the AES key for encrypted blocks; ``accounts`` (if given) are the
    accepted account numbers, upper case; ``now`` enables the timestamp window check.
    """
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
    m = _HEADER.match(rest)
    if m is None:
        return BlockError(Verdict.DUH, "unparsable header")
    encrypted = bool(m["star"])
    id_token = m["id"].decode()
    seq, rcv, line, acct = m["seq"].decode(), (m["rcv"] or b"").decode(), m["line"].decode(), m["acct"].decode()
    ctx = dict(seq=seq, receiver=rcv, line=line, account=acct, encrypted=encrypted)
    if id_token not in KNOWN_IDS:
        return BlockError(Verdict.DUH, f"unknown id {id_token[:20]}", **ctx)
    if accounts is not None and acct.upper() not in accounts:
        return BlockError(Verdict.DUH, "account not accepted", **ctx)
    try:
        tail_text = m["rest"].decode("ascii")
    except UnicodeDecodeError:
        return BlockError(Verdict.DUH, "non-ASCII data", **ctx)
    if encrypted:
        key = keys(acct)
        if key is None:
            return BlockError(Verdict.DUH, "encrypted block but no key", **ctx)
        plain = _decrypt_tail(key, tail_text)
        if plain is None:
            return BlockError(Verdict.DUH, "cannot decrypt", **ctx)
        tail_text = plain
    t = _TAIL.match(tail_text)
    if t is None:
        return BlockError(Verdict.DUH, "unparsable data", **ctx)
    ts = None
    if t["ts"]:
        try:
            ts = parse_timestamp(t["ts"])
        except ValueError:
            return BlockError(Verdict.NAK, "bad timestamp", **ctx)
    elif encrypted:
        return BlockError(Verdict.NAK, "encrypted block without timestamp", **ctx)
    if ts is not None and now is not None:
        delta = (ts - now).total_seconds()
        if delta < -WINDOW_PAST_S or delta > WINDOW_FUTURE_S:
            return BlockError(Verdict.NAK, f"timestamp outside window ({delta:+.0f} s)", **ctx)
    data = t["data"]
    if encrypted:
        data = f"#{acct}|{data}" if data else ""
    ext = tuple(x for x in re.findall(r"\[([^\[\]]*)\]", t["ext"] or ""))
    return Dc09Message(id_token, seq, rcv, line, acct, data, ext, ts, encrypted)


def _decrypt_tail(key: bytes, hex_text: str) -> str | None:
    """The plain text after the pad's ``|`` of an encrypted block, or None."""
    try:
        raw = bytes.fromhex(hex_text)
    except ValueError:
        return None
    if not raw or len(raw) % 16:
        return None
    try:
        plain = aes_decrypt(key, raw).decode("ascii")
    except (UnicodeDecodeError, ValueError):
        return None
    _pad, bar, rest = plain.partition("|")
    return rest if bar else None


# ---------------------------------------------------------------------- building blocks
def frame(content: str) -> bytes:
    """Wrap the span from ``"`` to the end with LF, CRC, length and CR."""
    raw = content.encode("ascii")
    return b"\n" + f"{crc16_arc(raw):04X}0{len(raw):03X}".encode() + raw + b"\r"


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
    now = now or datetime.now(timezone.utc)
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
    with_ts: bool = True,
) -> bytes:
    """A panel's block (simulator, bench): ``payload`` is what follows ``#acct|`` in the data."""
    r = f"R{receiver}" if receiver else ""
    stamp = format_timestamp(ts or datetime.now(timezone.utc)) if (with_ts or key) else ""
    head = f'"{"*" if key else ""}{id_token}"{seq:04d}{r}L{line}#{account}['
    if key is not None:
        return frame(head + encrypt_tail(key, f"{payload}]{stamp}"))
    data = f"#{account}|{payload}" if payload else ""
    return frame(head + f"{data}]{stamp}")


# ---------------------------------------------------------------------- stream framing
@dataclass
class Framer:
    """Cuts a byte stream into LF...CR blocks: several per read, one split over reads.

    Bytes outside a block and over-long blocks are dropped and counted (``garbage``).
    """

    max_block: int = MAX_BLOCK
    buf: bytearray = field(default_factory=bytearray)
    garbage: int = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out: list[bytes] = []
        while True:
            start = self.buf.find(b"\n")
            if start < 0:
                self.garbage += len(self.buf)
                self.buf.clear()
                return out
            if start:
                self.garbage += start
                del self.buf[:start]
            end = self.buf.find(b"\r", 1)
            nxt = self.buf.find(b"\n", 1)
            if 0 < nxt and (end < 0 or nxt < end):
                self.garbage += nxt     # a new LF before the CR: the first start was noise
                del self.buf[:nxt]
                continue
            if end < 0:
                if len(self.buf) > self.max_block + 2:
                    self.garbage += len(self.buf)
                    self.buf.clear()
                return out
            out.append(bytes(self.buf[1:end]))
            del self.buf[: end + 1]


# ---------------------------------------------------------------------- the receiver
Handler = Callable[[Dc09Message], Awaitable["Verdict | None"]]


@dataclass
class ReceiverStats:
    connections: int = 0
    blocks: int = 0
    acks: int = 0
    naks: int = 0
    duhs: int = 0
    garbage_bytes: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class Dc09Receiver:
    """An asyncio TCP server answering each block once the handler has returned.

    ``handler(message)`` returns None/ACK (committed), DUH (understood the framing, refuse
    the content) or NAK; if it raises, the block is NAKed so the panel sends it again.
    ``on_error(BlockError)`` is told about every refused block (for counters and logs).
    """

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        accounts: Iterable[str] | None = None,
        key: bytes | None = None,
        receiver_no: str = "",
        idle_timeout_s: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        on_error: Callable[[BlockError], None] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.handler = handler
        self.accounts = {a.upper() for a in accounts} if accounts else None
        self.key = key
        self.receiver_no = receiver_no
        self.idle_timeout_s = idle_timeout_s
        self.clock = clock
        self.on_error = on_error or (lambda e: None)
        self.stats = ReceiverStats()
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen; returns the bound port (pass port 0 for a free one)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=64 * 1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            await self._server.serve_forever()
        finally:
            await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for t in list(self._conns):
            t.cancel()
        if self._conns:
            await asyncio.gather(*self._conns, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self.stats.connections += 1
        framer = Framer()
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: no extra task per read on the hot path
                    async with asyncio.timeout(self.idle_timeout_s):
                        data = await reader.read(4096)
                except TimeoutError:
                    break  # half-open or silent: free the slot; a live panel reconnects
                if not data:
                    break
                before = framer.garbage
                for body in framer.feed(data):
                    writer.write(await self.answer(body))
                    await writer.drain()
                self.stats.garbage_bytes += framer.garbage - before
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # closing: end quietly (asyncio logs a cancelled connection task as an error)
        except Exception:  # never let one connection take the server down
            log.exception("dc09: connection handler failed")
        finally:
            self._conns.discard(task)
            writer.close()

    async def answer(self, body: bytes) -> bytes:
        """The response to one block (after the handler committed it, for a valid one)."""
        self.stats.blocks += 1
        now = self.clock()
        msg = parse_block(body, keys=lambda a: self.key, now=now, accounts=self.accounts)
        if isinstance(msg, BlockError):
            self._count(msg)
            return build_response(msg.verdict, seq=msg.seq, receiver=msg.receiver or self.receiver_no,
                                  line=msg.line, account=msg.account, now=now)
        try:
            verdict = await self.handler(msg) or Verdict.ACK
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("dc09: handler failed on seq %s account %s: %s", msg.seq, msg.account, exc)
            verdict = Verdict.NAK
        if verdict is Verdict.ACK:
            self.stats.acks += 1
        else:
            self._count(BlockError(verdict, "refused by handler", msg.seq, msg.receiver, msg.line, msg.account))
        return build_response(verdict, seq=msg.seq, receiver=msg.receiver, line=msg.line, account=msg.account,
                              key=self.key if msg.encrypted else None, now=self.clock())

    def _count(self, err: BlockError) -> None:
        if err.verdict is Verdict.NAK:
            self.stats.naks += 1
        else:
            self.stats.duhs += 1
        self.stats.errors[err.what] = self.stats.errors.get(err.what, 0) + 1
        try:
            self.on_error(err)
        except Exception:
            log.exception("dc09: on_error hook failed")


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
    return datetime.now(timezone.utc)


__all__ = [
    "BlockError", "Dc09Message", "Dc09Receiver", "Framer", "Verdict", "build_block", "build_response",
    "crc16_arc", "encrypt_tail", "format_timestamp", "frame", "load_key", "parse_block", "parse_response",
    "parse_timestamp",
]
