"""Serial card readers that print what they read: EM4100/RDM6300 ASCII frames and Wiegand converters.

* EM4100 / RDM6300: ``STX(0x02) + 10 hex (version byte + 32-bit id) + 2 hex XOR checksum + ETX(0x03)``,
  repeated while the tag is in the field. The checksum is the XOR of the 5 data bytes.
* Wiegand-to-serial converters: one line per read, either the bits (``"10110..."``) or
  ``"<bits>:<hex>"`` (the canonical form). Known lengths (26/34/37) must pass their parity.

Parsers are pure (``feed(bytes) -> list[CardSeen | BadFrame]``: what the bytes say, before
anyone knows which reader sent them) and never raise on input; bad frames are counted in
``stats``. :class:`SerialCardReader` is the :class:`~drivers.reader.ReaderDriver` of one
port: it runs the blocking port in a thread and hands the reader events of
:mod:`drivers.reader` to the asyncio loop (a card -> ``CardRead``, a bad frame ->
``ReaderError``, the port opening or failing -> ``ReaderStatus``). An unexpected exception
in that thread is logged, counted in ``stats["crashes"]``, reported as
``ReaderStatus(online=False, reason="driver crashed: ...")`` and the reader restarted after
1, 2, 4 ... 60 s. These readers have no relay, LED or buzzer the gateway can drive.
No gateway imports: protocol only.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field

from drivers.cards import (
    WIEGAND_FORMATS,
    CardFormatError,
    card_id_from_bitstring,
    em4100_card_id,
    normalize_card_id,
    parse_card_id,
    wiegand_parity_ok,
)
from drivers.reader import CardRead, ReaderError, ReaderEvent, ReaderStatus
from drivers.restart import Backoff, run_with_restarts

log = logging.getLogger(__name__)

STX, ETX = 0x02, 0x03
HEX = frozenset(b"0123456789abcdefABCDEF")
MAX_LINE = 300
CRASH_BACKOFF_MIN_S = 1.0  # first restart after the reader thread crashed
CRASH_BACKOFF_MAX_S = 60.0
HEALTHY_S = 60.0           # a reader that ran this long without crashing starts its backoff afresh


@dataclass(frozen=True)
class CardSeen:
    """A parser's valid card read: the canonical id."""

    card: str


@dataclass(frozen=True)
class BadFrame:
    """A frame that failed its checksum, parity or syntax (``what`` names which)."""

    what: str


@dataclass
class ParserStats:
    frames: int = 0
    bad_checksum: int = 0
    bad_parity: int = 0
    garbage: int = 0
    counts: dict[str, int] = field(default_factory=dict)


class Em4100Parser:
    """Streaming parser for RDM6300-style frames; resynchronises on the next STX after any error."""

    FRAME_LEN = 14  # STX + 12 hex + ETX

    def __init__(self) -> None:
        self.buf = bytearray()
        self.stats = ParserStats()

    def feed(self, data: bytes) -> list[CardSeen | BadFrame]:
        self.buf += data
        out: list[CardSeen | BadFrame] = []
        while True:
            start = self.buf.find(STX)
            if start < 0:
                if self.buf:
                    self.stats.garbage += 1
                    out.append(BadFrame("garbage"))
                self.buf.clear()
                return out
            if start > 0:
                self.stats.garbage += 1
                out.append(BadFrame("garbage"))
                del self.buf[:start]
            if len(self.buf) < self.FRAME_LEN:
                return out
            frame = bytes(self.buf[: self.FRAME_LEN])
            result = self._frame(frame)
            if isinstance(result, BadFrame) and result.what == "framing":
                del self.buf[:1]  # not a frame here: look for the next STX
            else:
                del self.buf[: self.FRAME_LEN]
            out.append(result)

    def _frame(self, frame: bytes) -> CardSeen | BadFrame:
        body = frame[1:13]
        if frame[13] != ETX or not all(b in HEX for b in body):
            self.stats.garbage += 1
            return BadFrame("framing")
        raw = bytes.fromhex(body.decode("ascii"))
        data, checksum = raw[:5], raw[5]
        x = 0
        for b in data:
            x ^= b
        if x != checksum:
            self.stats.bad_checksum += 1
            return BadFrame("checksum")
        self.stats.frames += 1
        return CardSeen(em4100_card_id(data))


def em4100_frame(raw5: bytes) -> bytes:
    """Build a valid frame (simulators, tests)."""
    x = 0
    for b in raw5:
        x ^= b
    return bytes([STX]) + (raw5 + bytes([x])).hex().upper().encode() + bytes([ETX])


class WiegandLineParser:
    """Lines from a Wiegand-to-serial converter: ``0101...`` or ``26:0a1b2c40``; CR/LF terminated."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.stats = ParserStats()

    def feed(self, data: bytes) -> list[CardSeen | BadFrame]:
        self.buf += data
        out: list[CardSeen | BadFrame] = []
        while True:
            idx = min((i for i in (self.buf.find(b"\n"), self.buf.find(b"\r")) if i >= 0), default=-1)
            if idx < 0:
                if len(self.buf) > MAX_LINE:
                    self.buf.clear()
                    self.stats.garbage += 1
                    out.append(BadFrame("overlong"))
                return out
            line = bytes(self.buf[:idx])
            del self.buf[: idx + 1]
            if line.strip():
                out.append(self.parse_line(line))

    def parse_line(self, line: bytes) -> CardSeen | BadFrame:
        try:
            text = line.decode("ascii").strip()
            card = card_id_from_bitstring(text) if set(text) <= {"0", "1"} else normalize_card_id(text)
        except (UnicodeDecodeError, CardFormatError):
            self.stats.garbage += 1
            return BadFrame("garbage")
        bits, value = parse_card_id(card)
        for fmt, spec in WIEGAND_FORMATS.items():
            if spec[0] == bits and not wiegand_parity_ok(fmt, value):
                self.stats.bad_parity += 1
                return BadFrame("parity")
        self.stats.frames += 1
        return CardSeen(card)


def make_parser(kind: str) -> Em4100Parser | WiegandLineParser:
    if kind == "serial-ascii":
        return Em4100Parser()
    if kind == "wiegand-serial":
        return WiegandLineParser()
    raise ValueError(f"no parser for reader driver {kind!r}")


class SerialCardReader:
    """Reads a port (any pyserial URL) in a thread; events for ``reader`` go to ``queue`` on ``loop``.

    A tag held on an RDM6300 repeats its frame several times a second; the same
    card within ``repeat_s`` is reported once. The port is reopened after errors; an
    unexpected exception restarts the reader with backoff (never ends the thread).
    """

    relay = False  # these readers only read: no relay, LED or buzzer to drive

    def __init__(self, reader: str, port: str, baud: int, kind: str, loop: asyncio.AbstractEventLoop,
                 queue: asyncio.Queue[ReaderEvent], *, repeat_s: float = 1.0, reopen_s: float = 1.0) -> None:
        self.reader = reader
        self.port = port
        self.baud = baud
        self.parser = make_parser(kind)
        self.loop = loop
        self.queue = queue
        self.repeat_s = repeat_s
        self.reopen_s = reopen_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: tuple[str, float] = ("", 0.0)
        self.backoff = Backoff(CRASH_BACKOFF_MIN_S, CRASH_BACKOFF_MAX_S, HEALTHY_S)
        self.stats = {"crashes": 0}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"reader-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=3)

    # ------------------------------------------------------------------ commands: nothing to drive
    def output(self, reader: str, number: int, *, on: bool | None = None, pulse_s: float | None = None) -> bool:
        return False

    def led(self, reader: str, color: str, seconds: float = 2.0) -> bool:
        return False

    def buzzer(self, reader: str, times: int = 1, on_s: float = 0.1) -> bool:
        return False

    # ------------------------------------------------------------------ the thread
    def _put(self, ev: ReaderEvent) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, ev)
        except RuntimeError:  # loop closed while stopping
            pass

    def _link(self, up: bool, reason: str = "") -> None:
        self._put(ReaderStatus(self.reader, up, False, reason))

    def _run(self) -> None:
        """The thread: :meth:`_serve` until stopped; a crash is reported and restarted with backoff."""
        run_with_restarts(self._serve, stop=self._stop, on_crash=self._crashed, what=f"reader {self.port}", log=log,
                          stats=self.stats, backoff=self.backoff)

    def _crashed(self, reason: str) -> None:
        self.parser.buf.clear()  # whatever half frame was in there is not trusted
        self._link(False, reason)

    def _serve(self) -> None:
        import serial

        while not self._stop.is_set():
            try:
                port = serial.serial_for_url(self.port, baudrate=self.baud, timeout=0.2)
            except (serial.SerialException, OSError, ValueError) as exc:
                self._link(False, f"open failed: {exc}")
                self._stop.wait(self.reopen_s)
                continue
            self._link(True)
            try:
                while not self._stop.is_set():
                    data = port.read(64)
                    if data:
                        for ev in self.parser.feed(data):
                            self._emit(ev)
            except (serial.SerialException, OSError) as exc:
                self._link(False, f"read failed: {exc}")
            finally:
                try:
                    port.close()
                except Exception:
                    pass
            self._stop.wait(self.reopen_s)

    def _emit(self, ev: CardSeen | BadFrame) -> None:
        if isinstance(ev, BadFrame):
            self._put(ReaderError(self.reader, f"bad frame ({ev.what})", ev.what))
            return
        now = time.monotonic()
        if ev.card == self._last[0] and now - self._last[1] < self.repeat_s:
            self._last = (ev.card, now)
            return
        self._last = (ev.card, now)
        self._put(CardRead(self.reader, ev.card, 0, now))
