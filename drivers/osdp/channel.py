"""The byte pipe libosdp talks through: a pyserial URL that reopens itself after errors.

``/dev/ttyUSB0`` and ``socket://host:port`` (an RS-485-to-TCP converter, or the simulator)
work alike. Every byte written and read also goes through a :class:`FrameTap`, so the bus
can say why a reader is offline, and through a :class:`FmtTap` for the osdp_FMT card reads
libosdp ignores.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from drivers.osdp.cardread import FmtTap
from drivers.osdp.frames import FrameTap

log = logging.getLogger(__package__)  # "drivers.osdp", as before the split into modules

REOPEN_S = 1.0


def _channel_base() -> type:
    from osdp import Channel

    return Channel


class SerialChannel(_channel_base()):  # type: ignore[misc]
    """libosdp Channel over a pyserial URL; reopens the port after errors (unplugged converter).

    Never raises into libosdp: errors are remembered and reported by the bus thread.
    """

    def __init__(self, url: str, baud: int) -> None:
        super().__init__()
        self.url = url
        self.baud = baud
        self.port: Any = None
        self.last_error = ""
        self.errors = 0
        #: monotonic time the line went down (None while it is up)
        self.down_since: float | None = None
        self._next_open = 0.0
        self.tap = FrameTap()
        #: osdp_FMT card reads libosdp ignores (drivers.osdp.cardread)
        self.fmt = FmtTap()

    def _ensure(self) -> Any:
        if self.port is not None:
            return self.port
        now = time.monotonic()
        if now < self._next_open:
            return None
        self._next_open = now + REOPEN_S
        import serial

        try:
            self.port = serial.serial_for_url(self.url, baudrate=self.baud, timeout=0, write_timeout=1)
        except (serial.SerialException, OSError, ValueError) as exc:
            self._fail(f"open {self.url}: {exc}")
        return self.port

    def _fail(self, what: str) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("osdp: %s", what)
        else:
            log.debug("osdp: %s", what)
        self.last_error = what
        self.errors += 1
        self.close()

    def read(self, max_bytes: int) -> bytes:
        port = self._ensure()
        if port is None:
            return b""
        try:
            data = port.read(max_bytes) or b""
            if data:
                self.tap.read(data)
                self.fmt.read(data)
            if data and self.down_since is not None:
                log.info("osdp: %s answers again", self.url)
                self.down_since = None
                self.last_error = ""
            return data
        except Exception as exc:
            self._fail(f"read {self.url}: {exc}")
            return b""

    def write(self, buf: bytes) -> int:
        port = self._ensure()
        if port is None:
            return len(buf)  # the bytes are lost on a dead line, like on a cut RS-485 pair
        try:
            n = port.write(buf) or 0
            self.tap.wrote(bytes(buf[:n]))
            return n
        except Exception as exc:
            self._fail(f"write {self.url}: {exc}")
            return len(buf)

    def flush(self) -> None:
        port = self.port
        if port is not None:
            try:
                port.reset_input_buffer()
            except Exception:
                pass

    def close(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            except Exception:
                pass
            self.port = None

