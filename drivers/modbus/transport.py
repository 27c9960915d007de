"""One Modbus bus (RTU serial, TCP, or RTU framing over TCP) over pymodbus async clients.

A bus carries one request at a time: an RS-485 line physically, and a serial
server behind TCP as well, so every request takes the bus lock. Failures are
typed so the scheduler can tell a silent meter (``ModbusTimeout``) from a
garbled line (``ModbusFramingError``: bytes came back but no valid reply) or a
meter that refused (``ModbusExceptionReply``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypedDict

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from drivers.modbus.errors import (
    ModbusConnectionError,
    ModbusError,
    ModbusExceptionReply,
    ModbusFramingError,
    ModbusTimeout,
)

__all__ = ["TRANSPORTS", "BusStats", "ModbusBus", "ModbusConnectionError", "ModbusError", "ModbusExceptionReply",
           "ModbusFramingError", "ModbusTimeout", "split_host_port"]

# pymodbus logs every timeout at ERROR; the scheduler counts and reports them itself
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

TRANSPORTS = ("rtu", "tcp", "rtu-over-tcp")


def split_host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


class _ClientOptions(TypedDict):
    """What both pymodbus clients get, typed so each keyword reaches its parameter checked."""

    timeout: float
    retries: int
    trace_packet: Callable[[bool, bytes], bytes]
    reconnect_delay: float
    reconnect_delay_max: float


@dataclass
class BusStats:
    requests: int = 0
    failures: int = 0
    rx_bytes: int = 0


class ModbusBus:
    """A bus: ``read`` and ``write`` serialised by a lock, reconnecting as needed."""

    def __init__(self, transport: str, port: str, *, baud: int = 9600, timeout_s: float = 0.3,
                 retries: int = 1) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}")
        self.transport = transport
        self.port = port
        self.baud = baud
        self.timeout_s = timeout_s
        self.retries = retries
        self.stats = BusStats()
        self._lock = asyncio.Lock()
        self._rx_in_request = 0
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._rx_in_request += len(data)
            self.stats.rx_bytes += len(data)
        return data

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        common = _ClientOptions(timeout=self.timeout_s, retries=self.retries, trace_packet=self._trace,
                                reconnect_delay=0.1, reconnect_delay_max=2.0)
        if self.transport == "rtu":
            return AsyncModbusSerialClient(self.port, framer=FramerType.RTU, baudrate=self.baud, **common)
        host, port = split_host_port(self.port)
        framer = FramerType.SOCKET if self.transport == "tcp" else FramerType.RTU
        return AsyncModbusTcpClient(host, port=port, framer=framer, **common)

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def connect(self) -> None:
        """(Re)open the link; raise ModbusConnectionError when it cannot."""
        if self._client is None:
            self._client = self._make_client()
        if not self._client.connected:
            ok = await self._client.connect()
            if not ok:
                raise ModbusConnectionError(f"cannot connect to {self.transport} {self.port}")

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def read(self, table: str, address: int, count: int, device_id: int) -> list[int]:
        """Read ``count`` registers; raise a ModbusError subclass on any failure."""
        async with self._lock:
            client = await self._ready()
            fn = client.read_holding_registers if table == "holding" else client.read_input_registers
            rr = await self._call(fn(address, count=count, device_id=device_id))
            regs = list(rr.registers)
            if len(regs) != count:
                self.stats.failures += 1
                raise ModbusFramingError(f"asked {count} registers, got {len(regs)}")
            return regs

    async def write(self, address: int, value: int, device_id: int) -> None:
        """Write one holding register (function 6)."""
        async with self._lock:
            client = await self._ready()
            await self._call(client.write_register(address, value, device_id=device_id))

    async def _ready(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        await self.connect()
        assert self._client is not None
        return self._client

    async def _call(self, coro: Awaitable[ModbusPDU]) -> ModbusPDU:
        self.stats.requests += 1
        self._rx_in_request = 0
        try:
            rr = await coro
        except ConnectionException as exc:
            self.stats.failures += 1
            raise ModbusConnectionError(str(exc)) from None
        except ModbusIOException as exc:
            self.stats.failures += 1
            if self._rx_in_request:
                raise ModbusFramingError(f"no valid reply ({self._rx_in_request} bytes received)") from None
            raise ModbusTimeout(f"no reply within {self.timeout_s}s x{self.retries + 1}") from exc
        except ModbusException as exc:
            self.stats.failures += 1
            raise ModbusError(str(exc)) from None
        if rr.isError():
            self.stats.failures += 1
            raise ModbusExceptionReply(int(getattr(rr, "exception_code", 0) or 0))
        return rr
