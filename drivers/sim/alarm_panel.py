"""Simulated alarm panels: a SIA DC-09 panel over TCP, a Contact ID line sender, a GB/T 26875.3 sender.

The DC-09 panel behaves like a real one where it matters to the receiver: one block at a time,
resent (same sequence number) until it is ACKed, on a new connection if the old one broke;
NAK is answered by resending, DUH by giving up on that block. What the demo's panels send, and
when, is in :mod:`drivers.sim.panel_demo`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from drivers import gb26875 as gb
from drivers.contact_id import format_line
from drivers.sia_dc09 import Framer, build_block, parse_response

log = logging.getLogger(__name__)


@dataclass
class Dc09Panel:
    """A panel client: ``await send("ADM-CID", "1110 01 012")`` returns "ACK" or "DUH" once answered."""

    host: str
    port: int
    account: str = "1234"
    key: bytes | None = None
    receiver: str = ""
    line: str = "0"
    timeout_s: float = 5.0
    retry_s: float = 0.2
    seq: int = 0
    sent: int = 0            # blocks put on the wire, retries included
    answers: list[str] = field(default_factory=list)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _framer: Framer = field(default_factory=Framer)

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._framer = Framer()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self._reader = self._writer = None

    def next_seq(self) -> int:
        self.seq = self.seq % 9999 + 1
        return self.seq

    async def send(self, id_token: str, payload: str = "", *, seq: int | None = None,
                   max_tries: int = 1000, ts: datetime | None = None) -> str:
        """Send one block until ACKed (or DUH); reconnects as needed. Returns the final answer."""
        seq = self.next_seq() if seq is None else seq
        for _ in range(max_tries):
            block = build_block(id_token, seq, self.account, payload, receiver=self.receiver, line=self.line,
                                key=self.key, ts=ts)
            try:
                answer = await self.send_raw(block)
            except (ConnectionError, OSError, TimeoutError, asyncio.IncompleteReadError):
                await self.close()
                await asyncio.sleep(self.retry_s)
                continue
            self.answers.append(answer)
            if answer in ("ACK", "DUH"):
                return answer
            await asyncio.sleep(self.retry_s)  # NAK: resend the same block
        raise TimeoutError(f"block {seq} not acknowledged after {max_tries} tries")

    async def send_raw(self, block: bytes) -> str:
        """Put one block on the wire and wait for the answer's token (ACK/NAK/DUH)."""
        if self._writer is None:
            await self.connect()
        assert self._writer is not None and self._reader is not None
        self._writer.write(block)
        self.sent += 1
        await self._writer.drain()
        return await asyncio.wait_for(self._read_answer(), self.timeout_s)

    async def _read_answer(self) -> str:
        assert self._reader is not None
        while True:
            data = await self._reader.read(4096)
            if not data:
                raise ConnectionError("receiver closed the connection")
            for body in self._framer.feed(data):
                parsed = parse_response(body)
                if parsed:
                    return parsed[0]


async def send_contact_id_lines(host: str, port: int, lines: list[str]) -> None:
    """Print Contact ID lines to a receiver listening on TCP (a serial-to-TCP converter)."""
    _r, w = await asyncio.open_connection(host, port)
    for line in lines:
        w.write(line.encode() + b"\r\n")
    await w.drain()
    w.close()


class GbSender:
    """A user information transmission device: sends status frames, waits for the confirm."""

    def __init__(self, host: str, port: int, source: bytes = b"\x01\x02\x03\x04\x05\x06") -> None:
        self.host, self.port, self.source = host, port, source
        self.serial = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._frames = gb.FrameReader()

    async def send_component(self, address: int, status: int, description: str = "", *, component_type: int = 40,
                             timeout_s: float = 5.0) -> gb.Frame:
        obj = gb.ComponentStatus(1, 1, component_type, address, status, description, datetime.now())
        return await self.send(gb.component_unit([obj]), timeout_s=timeout_s)

    async def send(self, data: bytes, *, timeout_s: float = 5.0) -> gb.Frame:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self.serial = (self.serial + 1) & 0xFFFF
        self._writer.write(gb.build_frame(self.serial, gb.CMD_SEND, data, source=self.source))
        await self._writer.drain()

        async def confirm() -> gb.Frame:
            assert self._reader is not None
            while True:
                chunk = await self._reader.read(4096)
                if not chunk:
                    raise ConnectionError("closed")
                for f in self._frames.feed(chunk):
                    if isinstance(f, gb.Frame) and f.serial == self.serial:
                        return f

        return await asyncio.wait_for(confirm(), timeout_s)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def now_utc() -> datetime:
    return datetime.now(UTC)


__all__ = ["Dc09Panel", "GbSender", "format_line", "send_contact_id_lines"]
