"""The driver of one serial card reader port: EM4100/RDM6300/ID-xxLA frames, Wiegand converters, text lines.

What the bytes mean is the reader's ``framing`` (:mod:`drivers.serial_frames`: ``rdm6300``,
``id12la``, ``wiegand``, ``wiegand-hex``, ``wiegand-decimal``, ``line``, ``auto``); a reader
that sets none keeps what its driver always read (``serial-ascii`` -> ``rdm6300``,
``wiegand-serial`` -> ``wiegand``). :class:`SerialCardReader` is the
:class:`~drivers.reader.ReaderDriver` of one port: it runs the blocking port in a thread and
hands the reader events of :mod:`drivers.reader` to the asyncio loop (a card -> ``CardRead``, a
refused frame -> ``ReaderError`` with its kind and reason, the port opening or failing ->
``ReaderStatus``). An unexpected exception in that thread is logged, counted in
``stats["crashes"]``, reported as ``ReaderStatus(online=False, reason="driver crashed: ...")``
and the reader restarted after 1, 2, 4 ... 60 s. These readers have no relay, LED or buzzer
the gateway can drive. No gateway imports: protocol only.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from drivers.reader import CardRead, ReaderError, ReaderEvent, ReaderStatus
from drivers.reasons import NONE, OPEN_FAILED, READ_FAILED, Reason
from drivers.restart import Backoff, run_with_restarts
from drivers.serial_frames import (
    DEFAULT_FRAMING,
    BadFrame,
    CardSeen,
    LineParser,
    Parser,
    StxParser,
    WiegandLineParser,
    em4100_frame,
    make_parser,
)

log = logging.getLogger(__name__)

CRASH_BACKOFF_MIN_S = 1.0  # first restart after the reader thread crashed
CRASH_BACKOFF_MAX_S = 60.0
HEALTHY_S = 60.0           # a reader that ran this long without crashing starts its backoff afresh

#: the parser classes by their old names (``serial-ascii`` reads RDM6300 frames by default)
Em4100Parser = StxParser

__all__ = ["BadFrame", "CardSeen", "Em4100Parser", "LineParser", "SerialCardReader", "WiegandLineParser",
           "em4100_frame", "parser_for"]


def parser_for(driver: str, framing: str = "", wiegand_bits: int = 0) -> Parser:
    """The parser of a reader: its ``framing``, or its driver's default framing."""
    chosen = framing or DEFAULT_FRAMING.get(driver)
    if chosen is None:
        raise ValueError(f"no framing for reader driver {driver!r}")
    return make_parser(chosen, wiegand_bits)


class SerialCardReader:
    """Reads a port (any pyserial URL) in a thread; events for ``reader`` go to ``queue`` on ``loop``.

    A tag held on an RDM6300 repeats its frame several times a second; the same
    card within ``repeat_s`` is reported once. The port is reopened after errors; an
    unexpected exception restarts the reader with backoff (never ends the thread).
    """

    relay = False  # these readers only read: no relay, LED or buzzer to drive

    def __init__(self, reader: str, port: str, baud: int, parser: Parser, loop: asyncio.AbstractEventLoop,
                 queue: asyncio.Queue[ReaderEvent], *, repeat_s: float = 1.0, reopen_s: float = 1.0) -> None:
        self.reader = reader
        self.port = port
        self.baud = baud
        self.parser = parser  # parser_for(driver, framing, wiegand_bits): what the bytes on this port mean
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

    def _link(self, up: bool, reason: Reason = NONE) -> None:
        self._put(ReaderStatus(self.reader, up, False, reason))

    def _run(self) -> None:
        """The thread: :meth:`_serve` until stopped; a crash is reported and restarted with backoff."""
        run_with_restarts(self._serve, stop=self._stop, on_crash=self._crashed, what=f"reader {self.port}", log=log,
                          stats=self.stats, backoff=self.backoff)

    def _crashed(self, reason: Reason) -> None:
        self.parser.buf.clear()  # whatever half frame was in there is not trusted
        self._link(False, reason)

    def _serve(self) -> None:
        import serial

        while not self._stop.is_set():
            try:
                port = serial.serial_for_url(self.port, baudrate=self.baud, timeout=0.2)
            except (serial.SerialException, OSError, ValueError) as exc:
                self._link(False, OPEN_FAILED(error=exc))
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
                self._link(False, READ_FAILED(error=exc))
            finally:
                try:
                    port.close()
                except Exception:
                    pass
            self._stop.wait(self.reopen_s)

    def _emit(self, ev: CardSeen | BadFrame) -> None:
        if isinstance(ev, BadFrame):
            self._put(ReaderError(self.reader, f"bad frame ({ev.what}): {ev.detail}" if ev.detail
                                  else f"bad frame ({ev.what})", ev.what))
            return
        now = time.monotonic()
        if ev.card == self._last[0] and now - self._last[1] < self.repeat_s:
            self._last = (ev.card, now)
            return
        self._last = (ev.card, now)
        self._put(CardRead(self.reader, ev.card, 0, now))
