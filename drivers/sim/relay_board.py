"""Simulated Modbus relay boards: a real pymodbus server answering Read Coils (01) and Write Single Coil (05).

What a door lock sees: each board (a device id) has ``coils`` relays, all off at power-up. Tests use it as
the board behind doors with serial readers: every coil write is logged with its time (``writes``), a
board can be made ``silent`` (no reply: unplugged from the bus) or ``power_cycle``-d (every relay drops
off, as after a power cut), and the whole server can be stopped and started on the same port (the
network to it down and back). Serves Modbus TCP (MBAP) or RTU framing over TCP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

READ_COILS, WRITE_COIL = 1, 5


@dataclass
class SimBoard:
    device_id: int
    relays: list[bool]
    silent: bool = False
    #: (monotonic time, coil, on) of every write it accepted, in order
    writes: list[tuple[float, int, bool]] = field(default_factory=list)
    reads: int = 0

    def power_cycle(self) -> None:
        """Power lost and back: every relay off."""
        self.relays = [False] * len(self.relays)


class BoardsContext(ModbusServerContext):
    """pymodbus datastore answering for the boards (the same hook the meter simulator uses)."""

    def __init__(self, sim: RelayBoardSim) -> None:  # no super().__init__(): we are the store
        self.sim = sim
        self.old_simulator = True  # pymodbus calls our async_getValues/async_setValues
        self.simdevices = []
        self._devices = {}

    def _board(self, device_id: int) -> SimBoard:
        board = self.sim.boards.get(device_id)
        if board is None or board.silent:
            raise NoSuchIdException(f"device {device_id} silent")
        return board

    async def async_getValues(self, device_id: int, func_code: int, address: int, count: int = 1) -> Any:
        board = self._board(device_id)
        if func_code not in (READ_COILS, WRITE_COIL):   # a coil write answers with the coil read back
            return ExcCodes.ILLEGAL_FUNCTION
        if address + count > len(board.relays):
            return ExcCodes.ILLEGAL_ADDRESS
        board.reads += 1
        return board.relays[address:address + count]

    async def async_setValues(self, device_id: int, func_code: int, address: int, values: Any) -> Any:
        board = self._board(device_id)
        if func_code != WRITE_COIL:
            return ExcCodes.ILLEGAL_FUNCTION
        if address + len(values) > len(board.relays):
            return ExcCodes.ILLEGAL_ADDRESS
        for i, v in enumerate(values):
            board.relays[address + i] = bool(v)
            board.writes.append((time.monotonic(), address + i, bool(v)))
        return None

    def device_ids(self) -> list[int]:
        return list(self.sim.boards)


class RelayBoardSim:
    """Relay boards by device id behind one TCP port."""

    def __init__(self, *, framing: str = "tcp") -> None:
        if framing not in ("tcp", "rtu-over-tcp"):
            raise ValueError(f"framing {framing!r}: tcp or rtu-over-tcp")
        self.framing = framing
        self.boards: dict[int, SimBoard] = {}
        self.port = 0
        self._server: ModbusTcpServer | None = None

    def add(self, device_id: int, coils: int = 8) -> SimBoard:
        board = self.boards[device_id] = SimBoard(device_id, [False] * coils)
        return board

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen (port 0 = a free one; after :meth:`stop`, the same port again by default); return the port."""
        framer = FramerType.SOCKET if self.framing == "tcp" else FramerType.RTU
        self._server = ModbusTcpServer(BoardsContext(self), framer=framer, address=(host, port or self.port),
                                       ignore_missing_devices=True)
        await self._server.serve_forever(background=True)
        listening = self._server.transport
        assert isinstance(listening, asyncio.Server), type(listening)
        self.port = int(listening.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Stop listening and drop every connection (the network to the boards is down)."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None


__all__ = ["BoardsContext", "RelayBoardSim", "SimBoard"]
