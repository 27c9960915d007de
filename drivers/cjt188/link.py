"""One CJ/T 188 RS-485 bus on a pyserial URL (``/dev/ttyUSB0``, ``socket://host:port``, ``rfc2217://...``).

Why it is shaped like this:

* A bus carries one request at a time: every exchange takes the bus lock, and runs in the bus's own worker
  thread (pyserial is blocking), so the event loop never waits on the line.
* Each request goes out after ``wakeup`` FE bytes (battery meters sleep) and is bounded by ``timeout_s`` per
  attempt, ``retries`` extra attempts: a dead meter costs at most ``timeout_s x (retries+1)``.
* Only the reply that belongs to the request is taken: a reply bit, the requested address, the requested DI
  (in either byte order). The RS-485 adapter's echo of our own request, a late reply from a meter asked before,
  and line noise are skipped, so a reading is never attributed to the wrong household.
* Failures use the gateway's bus error kinds (the same classes Modbus uses, ``drivers/modbus/errors.py``):
  ``timeout`` (nothing), ``framing`` (bytes but no valid reply), ``exception`` (the meter answered with its
  error bit), ``connection`` (the port cannot be opened or dropped), so the scheduler treats both protocols alike.

Protocol only: nothing here knows about the gateway.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from drivers.cjt188.frame import BROADCAST, PREAMBLE, Frame, FrameError, StreamParser
from drivers.modbus.errors import ModbusConnectionError, ModbusExceptionReply, ModbusFramingError, ModbusTimeout

PARITIES = ("N", "E", "O")


class Cjt188Timeout(ModbusTimeout):
    """No reply from the meter within the timeout (every attempt)."""


class Cjt188FramingError(ModbusFramingError):
    """Bytes arrived, but no valid reply from this meter (bad checksum, garbage, a reply that does not decode)."""


class Cjt188ErrorReply(ModbusExceptionReply):
    """The meter answered with its error bit set (C | 0x40); ``code`` is its status byte."""


class Cjt188ConnectionError(ModbusConnectionError):
    """The serial port (or socket) cannot be opened, or failed."""


@dataclass
class LinkStats:
    requests: int = 0
    failures: int = 0
    rx_bytes: int = 0
    skipped: int = 0      # frames on the line that were not our reply (echo, other meters)


class Cjt188Bus:
    """``exchange`` one request for one reply, serialised; reopens the port as needed."""

    def __init__(self, url: str, *, baud: int = 2400, parity: str = "E", timeout_s: float = 1.0,
                 retries: int = 1, wakeup: int = 4) -> None:
        if parity not in PARITIES:
            raise ValueError(f"parity {parity!r}: one of {', '.join(PARITIES)}")
        self.url, self.baud, self.parity = url, baud, parity
        self.timeout_s, self.retries, self.wakeup = timeout_s, retries, wakeup
        self.stats = LinkStats()
        self._lock = asyncio.Lock()
        self._port: Any = None
        self._closed = False
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cjt188-bus")

    async def exchange(self, request: bytes, address: str, di: int) -> Frame:
        """Send ``request`` (FE wake-up prepended) and return the reply from ``address`` for ``di``."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            if self._closed:
                raise Cjt188ConnectionError("bus closed")
            last: Exception | None = None
            for _ in range(self.retries + 1):
                self.stats.requests += 1
                try:
                    return await loop.run_in_executor(self._worker, self._exchange_once, request, address, di)
                except (Cjt188Timeout, Cjt188FramingError) as exc:
                    self.stats.failures += 1
                    last = exc
                except ModbusConnectionError:
                    self.stats.failures += 1
                    raise
            assert last is not None
            raise last

    async def close(self) -> None:
        self._closed = True
        self._drop()
        self._worker.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ the worker thread
    def _open(self) -> Any:
        if self._closed:
            raise Cjt188ConnectionError("bus closed")
        if self._port is None:
            import serial

            try:
                self._port = serial.serial_for_url(self.url, baudrate=self.baud, parity=self.parity, bytesize=8,
                                                   stopbits=1, timeout=0.02, write_timeout=max(self.timeout_s, 1.0))
            except (serial.SerialException, OSError, ValueError) as exc:
                raise Cjt188ConnectionError(f"cannot open {self.url}: {exc}") from None
        return self._port

    def _drop(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # closing a broken port: nothing more to do
                pass

    def _exchange_once(self, request: bytes, address: str, di: int) -> Frame:
        port = self._open()
        try:
            port.reset_input_buffer()
            port.write(bytes([PREAMBLE]) * self.wakeup + request.lstrip(bytes([PREAMBLE])))
            port.flush()
            return self._await_reply(port, address, di)
        except (Cjt188Timeout, Cjt188FramingError, Cjt188ErrorReply):
            raise
        except Exception as exc:  # pyserial raises SerialException or OSError when the line drops
            self._drop()
            raise Cjt188ConnectionError(f"{self.url}: {type(exc).__name__}: {exc}") from None

    def _await_reply(self, port: Any, address: str, di: int) -> Frame:
        parser = StreamParser()
        deadline = time.monotonic() + self.timeout_s
        got = 0
        problem = ""
        while time.monotonic() < deadline:
            chunk = port.read(max(port.in_waiting, 1))
            if not chunk:
                continue
            got += len(chunk)
            self.stats.rx_bytes += len(chunk)
            for item in parser.feed(chunk):
                if isinstance(item, FrameError):
                    problem = str(item)
                elif self._ours(item, address, di):
                    if item.is_error:
                        code = item.payload[0] if item.payload else (item.ser if item.di else 0)
                        raise Cjt188ErrorReply(code, f"meter {address} answered with an error (C={item.control:02x})")
                    return item
        if got:
            raise Cjt188FramingError(f"no valid reply from {address} ({got} bytes received{': ' if problem else ''}"
                                     f"{problem})")
        raise Cjt188Timeout(f"no reply from {address} within {self.timeout_s}s")

    def _ours(self, frame: Frame, address: str, di: int) -> bool:
        """The reply to our request: reply bit, our meter (any, when asked by broadcast), our DI (an error reply
        may carry no DI)."""
        wanted = address.upper()
        if not frame.is_reply or (frame.di != di and not frame.is_error) or (
                frame.address != wanted and wanted != BROADCAST):
            self.stats.skipped += 1
            return False
        return True
