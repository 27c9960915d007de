"""Door outputs: what moves a door's lock -- an output of its OSDP reader, or a coil on a Modbus relay board.

Why two kinds: doors behind serial readers (Wiegand converters, ASCII readers) have no output the gateway
can drive, so a grant, an operator unlock or a fire release there was only an event. A relay board on
its own RS-485 bus (``[[doors]] output = { bus, device_id, coil }``) gives every door a lock the gateway
moves. Both kinds take the OSDP output's commands -- a pulse for seconds, permanently on, off -- and say
whether they can reach the lock now: a board that does not answer is ``device.offline`` (kind
``relay_board``, id ``<bus>:<device_id>``) and its doors show ``offline``; nothing crashes, and the board
is driven to the wanted state as soon as it answers again (:mod:`drivers.modbus.relays`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from gateway.access.readers import Readers
from gateway.config.models import BusConfig, DoorConfig, RelayOutputConfig
from gateway.context import GatewayContext
from gateway.reasons import Reason

if TYPE_CHECKING:  # pragma: no cover - typing only (pymodbus loads only where a board is configured)
    from drivers.modbus.relays import RelayBoard

log = logging.getLogger(__name__)

BOARD_KIND = "relay_board"


class DoorOutput(Protocol):
    """The lock of one door, whatever drives it."""

    kind: str

    def drive(self, *, on: bool | None = None, pulse_s: float | None = None) -> bool:
        """Pulse for ``pulse_s`` seconds, or permanently ``on`` / off; True when the command went out."""

    def drivable(self) -> bool:
        """False when nothing can move this lock (a serial reader with no relay board)."""

    def online(self) -> bool | None:
        """Can the lock be reached now (None = not known yet)?"""

    def describe(self) -> dict[str, Any]:
        """For the door's JSON: kind, where it is, online."""


class ReaderOutput:
    """An output (relay) of the door's own reader (OSDP)."""

    kind = "osdp"

    def __init__(self, readers: Readers, reader: str, number: int) -> None:
        self.readers, self.reader, self.number = readers, reader, number

    def drive(self, *, on: bool | None = None, pulse_s: float | None = None) -> bool:
        return self.readers.output(self.reader, self.number, on=on, pulse_s=pulse_s)

    def drivable(self) -> bool:
        return self.readers.has_relay(self.reader)

    def online(self) -> bool | None:
        return self.readers.online.get(self.reader)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "reader": self.reader, "number": self.number, "online": self.online()}


class CoilOutput:
    """A coil on a Modbus relay board; the board's task writes it (never blocks the caller)."""

    kind = "relay"

    def __init__(self, board: RelayBoard, device: str, cfg: RelayOutputConfig) -> None:
        self.board, self.device, self.cfg = board, device, cfg

    def drive(self, *, on: bool | None = None, pulse_s: float | None = None) -> bool:
        self.board.set(self.cfg.coil, on=on, pulse_s=pulse_s)
        return self.board.online is not False

    def drivable(self) -> bool:
        return True

    def online(self) -> bool | None:
        return self.board.online

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "bus": self.cfg.bus, "device_id": self.cfg.device_id, "coil": self.cfg.coil,
                "device": self.device, "online": self.online()}


def board_id(cfg: RelayOutputConfig) -> str:
    return f"{cfg.bus}:{cfg.device_id}"


class Outputs:
    """Every door's output; the relay boards (one task each) and their buses."""

    def __init__(self, readers: Readers) -> None:
        self.readers = readers
        self.by_door: dict[str, DoorOutput] = {}
        self.boards: dict[str, RelayBoard] = {}
        self.doors_of_board: dict[str, list[str]] = {}
        self._buses: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def build(self, ctx: GatewayContext, changed: Callable[[list[str]], Awaitable[None]]) -> None:
        """One output per door; one board per (bus, device id) with the coils its doors use.

        ``changed(door ids)`` is awaited when a board goes online or offline (the doors' states follow).
        """
        relay_doors = [d for d in ctx.config.doors if isinstance(d.output, RelayOutputConfig)]
        if relay_doors:
            self._build_boards(ctx, relay_doors, changed)
        for d in ctx.config.doors:
            if isinstance(d.output, RelayOutputConfig):
                dev = board_id(d.output)
                self.by_door[d.id] = CoilOutput(self.boards[dev], dev, d.output)
            else:
                self.by_door[d.id] = ReaderOutput(self.readers, d.reader, d.output)

    def _build_boards(self, ctx: GatewayContext, doors: list[DoorConfig],
                      changed: Callable[[list[str]], Awaitable[None]]) -> None:
        from drivers.modbus.relays import RelayBoard, RelayBus

        buses: dict[str, BusConfig] = {b.id: b for b in ctx.config.buses}
        coils: dict[str, list[int]] = {}
        for d in doors:
            assert isinstance(d.output, RelayOutputConfig)
            dev = board_id(d.output)
            coils.setdefault(dev, []).append(d.output.coil)
            self.doors_of_board.setdefault(dev, []).append(d.id)
        for dev, board_coils in coils.items():
            bus_id, _, device_id = dev.rpartition(":")
            if bus_id not in self._buses:
                b = buses[bus_id]
                self._buses[bus_id] = RelayBus(b.transport, b.port, baud=b.baud, timeout_s=b.timeout_s,
                                               retries=b.retries)
            ctx.devices.declare(dev, BOARD_KIND)
            self.boards[dev] = RelayBoard(self._buses[bus_id], int(device_id), board_coils,
                                          on_status=self._status_hook(ctx, dev, changed))

    def _status_hook(self, ctx: GatewayContext, dev: str,
                     changed: Callable[[list[str]], Awaitable[None]]) -> Callable[[bool, Reason], Awaitable[None]]:
        async def hook(online: bool, reason: Reason) -> None:
            await ctx.devices.set_state(dev, BOARD_KIND, online, reason)
            await changed(self.doors_of_board.get(dev, []))

        return hook

    def start(self, ctx: GatewayContext) -> None:
        """Run every board's task (supervised: a crash is logged, reported and restarted)."""
        for dev, board in self.boards.items():
            self._tasks.append(ctx.supervisor.spawn(f"access.relays:{dev}", board.run, device=(dev, BOARD_KIND)))

    def stop(self) -> None:
        """Stop the boards' tasks and close their buses (the coils stay as they are)."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        for bus in self._buses.values():
            bus.close_now()

    def of(self, door_id: str) -> DoorOutput:
        return self.by_door[door_id]
