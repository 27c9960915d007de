"""Simulated hot-water meters: a real pymodbus server holding many meters by device id.

Serves Modbus TCP (MBAP) or RTU framing over TCP (what serial device servers
do). Totals rise with each meter's flow (constant, or a flat's bursts when it has a
:class:`~drivers.sim.usage.DrawPattern`). Faults on demand per meter:
``silent`` (no reply at all), ``crc`` (reply with a broken CRC), ``exception``
(exception reply 4, device failure). ``baud`` > 0 delays each reply by the time
request and reply would take on a real RS-485 line (11 bits per character plus
a 3.5-character gap each way), so benchmarks see a bus's physical limit.

Protocol only: ``serve_for_config`` reads the gateway's config duck-typed; with a hub
(``estate-gateway simulate``) its meters draw like flats and keep their totals across restarts
(:mod:`drivers.sim.state`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer

from drivers.modbus.profile import Field, Profile, load_profile
from drivers.sim.state import remember, saved_number
from drivers.sim.usage import DrawPattern

log = logging.getLogger(__name__)
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

FAULTS = (None, "silent", "crc", "exception")


def frame_time_s(baud: int, request_bytes: int, reply_bytes: int) -> float:
    """Line time of one request/reply pair at ``baud`` 8N1 (11 bits with parity-less stop framing)."""
    char = 11.0 / baud
    gap = max(3.5 * char, 0.00175)
    return (request_bytes + reply_bytes) * char + 2 * gap


@dataclass
class SimMeter:
    device_id: int
    profile: Profile
    total_m3: float = 100.0
    flow_m3h: float = 0.2
    temp_c: float = 55.0
    fault: str | None = None
    #: fixed values by field name (tests pin exact values)
    pinned: dict[str, float] = field(default_factory=dict)
    valve_state: int = 1
    frozen: bool = False
    reads: int = 0
    writes: int = 0
    #: bursts of flow by the clock (None: ``flow_m3h`` all the time)
    pattern: DrawPattern | None = None
    #: called after the valve changed (the simulator saves its state at once)
    on_change: Callable[[], None] | None = None
    _t0: float = field(default_factory=time.monotonic)
    _wall0: float = field(default_factory=time.time)
    _extra: dict[int, int] = field(default_factory=dict)

    def value(self, f: Field) -> float:
        """What the meter holds in field ``f`` now: pinned, else derived from the field's name."""
        if f.name in self.pinned:
            return self.pinned[f.name]
        name = f.name
        if f.add_to:  # the fraction part of a split total (integer m3 + fraction)
            total = self.current_total()
            return (total - int(total)) if f.add_to.startswith("total") else 0.0
        if any(p.add_to == name for p in self.profile.fields):
            return float(int(self.current_total())) if name.startswith("total") else 0.0
        return self._by_name(name)

    def _by_name(self, name: str) -> float:
        if name.startswith("total") or name.startswith("volume"):
            return self.current_total()
        if name.startswith("flow"):
            if self.valve_closed:
                return 0.0
            return self.pattern.flow_at() if self.pattern is not None else self.flow_m3h
        if "temp" in name:
            return self.temp_c
        if name.startswith("battery"):
            return 3.6
        if name.startswith("valve"):
            return self.valve_state
        return 0.0

    @property
    def valve_closed(self) -> bool:
        return self.profile.valve is not None and self.valve_state == self.profile.valve.close

    def current_total(self) -> float:
        if self.frozen or self.valve_closed:
            return self.total_m3
        if self.pattern is not None:
            return self.total_m3 + self.pattern.volume(self._wall0, time.time())
        hours = (time.monotonic() - self._t0) / 3600.0
        return self.total_m3 + self.flow_m3h * hours

    def snapshot(self) -> dict[str, Any]:
        """What a restarted simulator needs to continue where this one is (:mod:`drivers.sim.state`)."""
        return {"total_m3": self.current_total(), "at": time.time(), "valve_state": self.valve_state}

    def restore(self, saved: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot`: its total plus what flowed since (none while the valve was closed)."""
        total, at = saved_number(saved, "total_m3"), saved_number(saved, "at", at=True)
        self.valve_state = int(saved_number(saved, "valve_state")) if "valve_state" in saved else self.valve_state
        if self.pattern is not None:
            self.total_m3, self._wall0 = total, at
        else:
            flowed = 0.0 if self.valve_closed else self.flow_m3h * max(time.time() - at, 0.0) / 3600.0
            self.total_m3, self._t0 = total + flowed, time.monotonic()

    def registers(self, address: int, count: int) -> list[int]:
        image: dict[int, int] = dict(self._extra)
        for f in self.profile.fields:
            if f.end > address and f.address < address + count:
                for i, w in enumerate(f.encode(self.value(f))):
                    image[f.address + i] = w
        v = self.profile.valve
        if v is not None:
            image[v.read_address] = self.valve_state
        return [image.get(a, 0) for a in range(address, address + count)]

    def write(self, address: int, values: list[int]) -> None:
        self.writes += 1
        v = self.profile.valve
        for i, w in enumerate(values):
            a = address + i
            if v is not None and a == v.address and w in (v.open, v.close):
                # freeze the total at its current value when the valve changes (no flow when closed)
                self.total_m3, self._t0, self._wall0 = self.current_total(), time.monotonic(), time.time()
                self.valve_state = w
                if self.on_change is not None:
                    self.on_change()
            else:
                self._extra[a] = w


class MetersContext(ModbusServerContext):
    """pymodbus datastore answering for many meters; the hook for delays and faults."""

    def __init__(self, sim: MeterSimulator) -> None:  # no super().__init__(): we are the store
        self.sim = sim
        self.old_simulator = True  # tells pymodbus to call our async_getValues/async_setValues
        self.simdevices = []
        self._devices = {}

    async def _meter(self, device_id: int, request_bytes: int, reply_bytes: int) -> SimMeter:
        meter = self.sim.meters.get(device_id)
        self.sim.log.append((device_id, "write" if reply_bytes == 8 else "read"))
        if self.sim.baud:
            # the line is busy for the whole exchange, answered or not
            async with self.sim.line:
                await asyncio.sleep(frame_time_s(self.sim.baud, request_bytes, reply_bytes))
        if meter is None or meter.fault == "silent":
            raise NoSuchIdException(f"device {device_id} silent")
        return meter

    async def async_getValues(self, device_id: int, func_code: int, address: int, count: int = 1) -> Any:
        meter = await self._meter(device_id, 8, 5 + 2 * count)
        if meter.fault == "exception":
            return ExcCodes.DEVICE_FAILURE
        if address + count > 0x10000:
            return ExcCodes.ILLEGAL_ADDRESS
        meter.reads += 1
        return meter.registers(address, count)

    async def async_setValues(self, device_id: int, func_code: int, address: int, values: Any) -> Any:
        meter = await self._meter(device_id, 8, 8)
        if meter.fault == "exception":
            return ExcCodes.DEVICE_FAILURE
        meter.write(address, [int(v) for v in values])
        return None

    def device_ids(self) -> list[int]:
        return list(self.sim.meters)


class MeterSimulator:
    """One bus' worth of meters behind one TCP port."""

    def __init__(self, *, framing: str = "tcp", baud: int = 0) -> None:
        if framing not in ("tcp", "rtu-over-tcp"):
            raise ValueError(f"framing {framing!r}: tcp or rtu-over-tcp")
        self.framing = framing
        self.baud = baud
        self.meters: dict[int, SimMeter] = {}
        #: (device id, "read" | "write") in the order requests reached the meters (bounded)
        self.log: collections.deque[tuple[int, str]] = collections.deque(maxlen=10_000)
        self.line = asyncio.Lock()
        self.port = 0
        self._server: ModbusTcpServer | None = None
        self._task: asyncio.Task[None] | None = None

    def add(self, device_id: int, profile: Profile, **kw: Any) -> SimMeter:
        m = SimMeter(device_id=device_id, profile=profile, **kw)
        self.meters[device_id] = m
        return m

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if sending and data:
            dev = data[0] if self.framing == "rtu-over-tcp" else (data[6] if len(data) > 6 else -1)
            meter = self.meters.get(dev)
            if meter is not None and meter.fault == "crc":
                return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen (port 0 = a free port); return the port."""
        framer = FramerType.SOCKET if self.framing == "tcp" else FramerType.RTU
        self._server = ModbusTcpServer(MetersContext(self), framer=framer, address=(host, port),
                                       ignore_missing_devices=True, trace_packet=self._trace)
        await self._server.serve_forever(background=True)
        listening = self._server.transport  # pymodbus types it as a transport; a server listens here
        assert isinstance(listening, asyncio.Server), type(listening)
        self.port = int(listening.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None


# ---------------------------------------------------------------------- estate-gateway simulate
def _find_profile(dirs: list[Path], profile_id: str) -> Path | None:
    for d in dirs:
        p = Path(d) / f"{profile_id}.toml"
        if p.is_file():
            return p
    return None


async def serve_for_config(cfg: Any, hub: Any = None) -> None:
    """Serve every [[meters]] of each tcp/rtu-over-tcp bus (or rtu bus on socket://) on 127.0.0.1 until cancelled.

    With a ``hub`` (:class:`drivers.sim.control.SimHub`, ``estate-gateway simulate``) the meters draw like
    flats (:class:`DrawPattern`) and their totals and valves are kept in ``hub.state`` across restarts."""
    sims: list[MeterSimulator] = []
    try:
        for bus in cfg.buses:
            address = bus.port
            framing = bus.transport
            if framing == "rtu" and address.startswith("socket://"):
                # an RTU bus on a pyserial socket:// URL: serve RTU framing there (a serial server, simulated)
                address, framing = address[len("socket://"):], "rtu-over-tcp"
            elif framing not in ("tcp", "rtu-over-tcp"):
                continue
            host, _, port = address.rpartition(":")
            if host not in ("127.0.0.1", "localhost"):
                continue
            sim = MeterSimulator(framing=framing)
            for m in cfg.meters:
                if m.bus != bus.id:
                    continue
                path = _find_profile(list(cfg.profile_dirs()), m.profile)
                if path is None:
                    log.warning("meter %s: no profile %s, not simulated", m.id, m.profile)
                    continue
                meter = sim.add(m.device_id, load_profile(path), total_m3=100.0 + m.device_id * 3.7,
                                flow_m3h=0.05 + (m.device_id % 7) * 0.05)
                if hub is not None:
                    remember(meter, f"modbus/{bus.id}/{m.device_id}", hub.state, 0.2 + (meter.device_id % 4) * 0.1)
            await sim.start("127.0.0.1", int(port))
            log.info("simulating %d meters on bus %s (%s, port %s)", len(sim.meters), bus.id, framing, port)
            sims.append(sim)
        await asyncio.Event().wait()
    finally:
        for sim in sims:
            await sim.stop()



__all__ = ["FAULTS", "MeterSimulator", "MetersContext", "SimMeter", "frame_time_s", "serve_for_config"]
