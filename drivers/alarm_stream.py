"""Byte-stream plumbing shared by the Contact ID and GB/T 26875.3 receivers: TCP server or serial port.

A *decoder* turns bytes into items (``feed(bytes) -> list``); the *handler* is awaited for each
item in order and may return bytes to send back (a GB/T 26875.3 confirm) -- sent only after the
handler returned, i.e. after the gateway committed. Serial ports are blocking: a thread reads
them and hands the bytes to the asyncio loop. No gateway imports.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from drivers.listener import GuardedListener, Limits
from drivers.reasons import NONE, OPEN_FAILED, READ_FAILED, Reason

log = logging.getLogger(__name__)

ItemHandler = Callable[[Any], Awaitable["bytes | None"]]


class Decoder(Protocol):
    def feed(self, data: bytes) -> list[Any]: ...


class LineDecoder:
    """Lines ending in CR and/or LF, as text (bytes that are not ASCII become U+FFFD); bounded."""

    def __init__(self, max_line: int = 256) -> None:
        self.buf = bytearray()
        self.max_line = max_line
        self.garbage = 0

    def feed(self, data: bytes) -> list[str]:
        self.buf += data
        out: list[str] = []
        while True:
            cut = min((i for i in (self.buf.find(b"\n"), self.buf.find(b"\r")) if i >= 0), default=-1)
            if cut < 0:
                if len(self.buf) > self.max_line:
                    self.garbage += len(self.buf)
                    self.buf.clear()
                return out
            line = bytes(self.buf[:cut])
            del self.buf[: cut + 1]
            if line.strip():
                out.append(line.decode("ascii", errors="replace"))


async def serve_tcp(host: str, port: int, decoder_factory: Callable[[], Decoder], handler: ItemHandler,
                    *, limits: Limits | None = None, on_refuse: Callable[[str, str], None] | None = None,
                    name: str = "alarm stream") -> GuardedListener:
    """Start a guarded listener (allow_from, caps, idle close: :mod:`drivers.listener`); each
    connection has its own decoder and task (one slow peer blocks nobody)."""

    async def conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dec = decoder_factory()
        try:
            while True:
                data = await listener.read(reader, writer)
                if not data:
                    break
                for item in dec.feed(data):
                    reply = await handler(item)
                    if reply:
                        writer.write(reply)
                        await writer.drain()
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # closing: end quietly
        except Exception:
            log.exception("alarm stream: connection failed")
        finally:
            writer.close()

    listener = GuardedListener(name, host, port, conn, limits, on_refuse=on_refuse)
    await listener.start()
    return listener


class SerialSource:
    """Reads a pyserial port (or URL) in a thread; ``run()`` feeds the decoder on the loop.

    ``on_link(up, reason)`` reports the port opening and failing, so the gateway can mark the
    receiver online/offline. The port is reopened after a failure, every ``retry_s``.
    """

    def __init__(self, url: str, baud: int, decoder: Decoder, handler: ItemHandler,
                 on_link: Callable[[bool, Reason], Awaitable[None]] | None = None, retry_s: float = 2.0) -> None:
        self.url, self.baud = url, baud
        self.decoder = decoder
        self.handler = handler
        self.on_link = on_link
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._port: Any = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        put = lambda kind, v: loop.call_soon_threadsafe(queue.put_nowait, (kind, v))  # noqa: E731
        # a fresh stop flag per run: after a crash and restart the old thread must stay stopped
        self._stop = threading.Event()
        thread = threading.Thread(target=self._read, args=(put, self._stop), name=f"serial {self.url}", daemon=True)
        thread.start()
        try:
            while True:
                kind, value = await queue.get()
                if kind == "link":
                    if self.on_link:
                        await self.on_link(*value)
                    continue
                for item in self.decoder.feed(value):
                    reply = await self.handler(item)
                    if reply and self._port is not None:
                        port = self._port
                        await loop.run_in_executor(None, port.write, reply)
        finally:
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        port = self._port
        if port is not None:
            try:
                port.close()
            except Exception:
                pass

    def _read(self, put: Callable[[str, Any], None], stop: threading.Event) -> None:
        import serial

        while not stop.is_set():
            try:
                port = serial.serial_for_url(self.url, baudrate=self.baud, timeout=0.2)
            except Exception as exc:
                put("link", (False, OPEN_FAILED(error=exc)))
                stop.wait(self.retry_s)
                continue
            self._port = port
            put("link", (True, NONE))
            try:
                while not stop.is_set():
                    data = port.read(port.in_waiting or 1)
                    if data:
                        put("data", data)
            except Exception as exc:
                if not stop.is_set():
                    put("link", (False, READ_FAILED(error=exc)))
            finally:
                try:
                    port.close()
                except Exception:
                    pass
                if self._port is port:
                    self._port = None
            stop.wait(self.retry_s)
