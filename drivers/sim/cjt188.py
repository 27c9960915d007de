"""Simulated CJ/T 188 meters: several meters by address on one bus, served on a TCP port (a pyserial
``socket://`` URL reaches it, as it would reach a serial device server).

Each meter answers 901F (current data), A017 (valve) and 810A (read address) as the standard lays them out,
from its own state (totals rise with flow; a closed valve stops the flow; heat meters count heat from the
flow and the temperature difference). What real meters do is switchable per meter:

* ``wakeup``: the meter sleeps and only answers a request preceded by at least that many FE bytes;
* ``di_high_first``: answers the DI as ``90 1F`` (None: in the order it was asked);
* ``unsupported``: fields it answers with FF (not supported by this meter);
* ``replay``: captured reply frames by DI (from the conformance corpus), sent verbatim to requests for that DI;
* ``fault``: ``silent`` (no reply), ``checksum`` (a reply with a broken checksum), ``error`` (error bit set).

``baud`` > 0 holds the simulated line for the real frame time of each exchange (11 bits per character).
Protocol only: ``serve_for_config`` reads the gateway's config duck-typed; with a hub (``estate-gateway
simulate``) its meters draw like flats (:mod:`drivers.sim.usage`) and keep their counters and valves across
restarts (:mod:`drivers.sim.state`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drivers.cjt188 import (
    C_READ,
    C_READ_ADDRESS,
    C_READ_REPLY,
    C_WRITE,
    C_WRITE_REPLY,
    DI_CURRENT,
    DI_READ_ADDRESS,
    DI_VALVE,
    HEAT_TYPES,
    VALVE_CLOSE,
    VALVE_OPEN,
    CurrentData,
    Frame,
    FrameError,
    IncompleteFrame,
    address_bytes,
    build_frame,
    current_payload,
    leading_preamble,
    parse_frame,
)
from drivers.sim.state import remember, saved_number
from drivers.sim.usage import DrawPattern

log = logging.getLogger(__name__)

FAULTS = (None, "silent", "checksum", "error")
#: kWh per m3 and kelvin of water (the heat a heat meter counts)
KWH_PER_M3K = 1.163


@dataclass
class SimCjtMeter:
    address: str
    meter_type: int = 0x11
    total_m3: float = 100.0
    flow_m3h: float = 0.2
    supply_c: float = 55.0
    return_c: float = 40.0
    heat_kwh: float = 1000.0
    has_valve: bool = True
    valve_closed: bool = False
    battery_low: bool = False
    fault: str | None = None
    wakeup: int = 0
    di_high_first: bool | None = None
    unsupported: frozenset[str] = frozenset()
    replay: dict[int, bytes] = field(default_factory=dict)
    frozen: bool = False
    reads: int = 0
    writes: int = 0
    #: bursts of flow by the clock (None: ``flow_m3h`` all the time)
    pattern: DrawPattern | None = None
    #: called after the valve changed (the simulator saves its state at once)
    on_change: Callable[[], None] | None = None
    _t0: float = field(default_factory=time.monotonic)
    _wall0: float = field(default_factory=time.time)

    def _drawn_m3(self) -> float:
        """Water through the meter since the counters were last settled."""
        if self.frozen or self.valve_closed:
            return 0.0
        if self.pattern is not None:
            return self.pattern.volume(self._wall0, time.time())
        return self.flow_m3h * (time.monotonic() - self._t0) / 3600.0

    def _flow(self) -> float:
        if self.valve_closed:
            return 0.0
        return self.pattern.flow_at() if self.pattern is not None else self.flow_m3h

    def _settle(self) -> None:
        """Fold the flow so far into the counters (before the valve or the flow changes)."""
        v = self._drawn_m3()
        self.total_m3 += v
        self.heat_kwh += v * (self.supply_c - self.return_c) * KWH_PER_M3K
        self._t0, self._wall0 = time.monotonic(), time.time()

    def set_valve(self, closed: bool) -> None:
        self._settle()
        self.valve_closed = closed
        if self.on_change is not None:
            self.on_change()

    def snapshot(self) -> dict[str, Any]:
        """What a restarted simulator needs to continue where this one is (:mod:`drivers.sim.state`)."""
        drawn = self._drawn_m3()
        return {"total_m3": self.total_m3 + drawn,
                "heat_kwh": self.heat_kwh + drawn * (self.supply_c - self.return_c) * KWH_PER_M3K,
                "at": time.time(), "valve_closed": self.valve_closed}

    def restore(self, saved: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot`: its counters plus what flowed since (none while the valve was closed)."""
        total, heat, at = saved_number(saved, "total_m3"), saved_number(saved, "heat_kwh"), saved_number(
            saved, "at", at=True)
        self.total_m3, self.heat_kwh, self._wall0 = total, heat, at
        self.valve_closed = saved.get("valve_closed") is True and self.has_valve
        if self.pattern is None:  # a constant flow: what it drew while the simulator was off, now
            elapsed_h = max(time.time() - self._wall0, 0.0) / 3600.0
            self._t0 = time.monotonic() - elapsed_h * 3600.0

    def current(self) -> CurrentData:
        """What the meter holds now (fields listed in ``unsupported`` go out as FF)."""
        drawn = self._drawn_m3()
        flow = self._flow()
        total = round(self.total_m3 + drawn, 2)
        heat = round(self.heat_kwh + drawn * (self.supply_c - self.return_c) * KWH_PER_M3K, 2)
        v: dict[str, Any] = {"total_m3": total, "settlement_m3": round(self.total_m3, 2), "flow_m3h": flow,
                             "heat_kwh": heat, "settlement_heat_kwh": round(self.heat_kwh, 2),
                             "power_kw": round(flow * (self.supply_c - self.return_c) * KWH_PER_M3K, 2),
                             "supply_c": self.supply_c, "return_c": self.return_c, "hours": 8760,
                             "meter_time": datetime.now().replace(microsecond=0)}
        for name in self.unsupported:
            v[name] = None
        return CurrentData(self.meter_type, self.address, valve="closed" if self.valve_closed else "open",
                           battery_low=self.battery_low, **v)


class Cjt188Simulator:
    """One bus' worth of CJ/T 188 meters behind one TCP port."""

    def __init__(self, *, baud: int = 0) -> None:
        self.baud = baud
        self.meters: dict[str, SimCjtMeter] = {}
        #: (address, "read" | "valve" | "address" | "other") in the order requests reached a meter (bounded)
        self.log: collections.deque[tuple[str, str]] = collections.deque(maxlen=10_000)
        self.line = asyncio.Lock()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()

    def add(self, address: str, **kw: Any) -> SimCjtMeter:
        address_bytes(address)  # a bad address is the caller's error, now
        m = self.meters[address] = SimCjtMeter(address=address, **kw)
        return m

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen (port 0 = a free port); return the port."""
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._conns):
                w.close()
            if self._handlers:  # each sees its connection end and returns
                await asyncio.wait(list(self._handlers), timeout=2.0)
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def drop_connections(self) -> None:
        """Cut every client off (a device server rebooting): the gateway must reconnect."""
        for w in list(self._conns):
            w.close()

    # ------------------------------------------------------------------ the line
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        buf = b""
        try:
            while True:
                data = await reader.read(512)
                if not data:
                    return
                buf = (buf + data)[-1024:]
                buf = await self._drain(buf, writer)
        except (ConnectionError, OSError):
            return
        finally:
            self._conns.discard(writer)
            writer.close()

    async def _drain(self, buf: bytes, writer: asyncio.StreamWriter) -> bytes:
        """Answer every whole request in ``buf``; return what is left (an incomplete frame)."""
        while buf:
            fe = leading_preamble(buf)
            try:
                frame, used = parse_frame(buf)
            except IncompleteFrame:
                return buf
            except FrameError:
                nxt = buf.find(b"\x68", fe + 1)
                buf = buf[nxt:] if nxt > 0 else b""
                continue
            request, buf = buf[:used], buf[used:]
            reply = self.answer(frame, fe)
            if self.baud:
                async with self.line:  # the line is busy for the request and the reply, answered or not
                    await asyncio.sleep((len(request) + len(reply or b"")) * 11.0 / self.baud)
            if reply:
                writer.write(reply)
                await writer.drain()
        return buf

    def answer(self, req: Frame, wakeup_seen: int) -> bytes | None:
        """The reply bytes a meter sends to ``req`` (None: silence)."""
        if req.is_reply:
            return None  # another station's reply (or our own echo)
        m = self.meters.get(req.address)
        what = {C_READ: "read", C_WRITE: "valve", C_READ_ADDRESS: "address"}.get(req.control, "other")
        if m is None and req.control == C_READ_ADDRESS and len(self.meters) == 1:
            m = next(iter(self.meters.values()))  # the broadcast "who are you" works on a one-meter line
        if m is None or m.fault == "silent" or wakeup_seen < m.wakeup:
            return None
        self.log.append((m.address, what))
        reply = self._reply(m, req)
        if m.fault == "checksum" and reply:
            reply = reply[:-2] + bytes([reply[-2] ^ 0x5A]) + reply[-1:]
        return reply

    def _reply(self, m: SimCjtMeter, req: Frame) -> bytes:
        high = req.di_swapped if m.di_high_first is None else m.di_high_first
        if m.fault == "error":
            return build_frame(m.meter_type, m.address, req.control | 0xC0, req.di, req.ser, b"\x01",
                               di_high_first=high)
        if req.di in m.replay:
            m.reads += req.di == DI_CURRENT
            m.writes += req.di == DI_VALVE
            return m.replay[req.di]
        if req.control == C_READ and req.di == DI_CURRENT:
            m.reads += 1
            return build_frame(m.meter_type, m.address, C_READ_REPLY, DI_CURRENT, req.ser,
                               current_payload(m.current()), di_high_first=high)
        if req.control == C_WRITE and req.di == DI_VALVE and m.has_valve and req.payload[:1] in (
                bytes([VALVE_OPEN]), bytes([VALVE_CLOSE])):
            m.writes += 1
            m.set_valve(req.payload[0] == VALVE_CLOSE)
            return build_frame(m.meter_type, m.address, C_WRITE_REPLY, DI_VALVE, req.ser,
                               bytes([1 if m.valve_closed else 0, 0]), di_high_first=high)
        if req.control == C_READ_ADDRESS and req.di == DI_READ_ADDRESS:
            return build_frame(m.meter_type, m.address, C_READ_ADDRESS | 0x80, DI_READ_ADDRESS, req.ser,
                               di_high_first=high)
        # anything else: the error bit, status "not supported"
        return build_frame(m.meter_type, m.address, req.control | 0xC0, req.di, req.ser, b"\x01",
                           di_high_first=high)


# ---------------------------------------------------------------------- estate-gateway simulate
def _local_port(url: str) -> int | None:
    """The port of a ``socket://127.0.0.1:PORT`` (or localhost) URL; None for anything not served here."""
    if not url.startswith("socket://"):
        return None
    host, _, port = url[len("socket://"):].partition("?")[0].rpartition(":")
    return int(port) if host in ("127.0.0.1", "localhost") and port.isdigit() else None


async def serve_for_config(cfg: Any, hub: Any = None) -> None:
    """Serve every ``protocol = "cjt188"`` meter of each serial bus on a local socket:// URL until cancelled.

    With a ``hub`` (``estate-gateway simulate``) the meters draw like flats and keep their state in ``hub.state``."""
    sims: list[Cjt188Simulator] = []
    try:
        for bus in cfg.buses:
            port = _local_port(bus.port) if bus.transport == "serial" else None
            if port is None:
                continue
            sim = Cjt188Simulator()
            for i, m in enumerate(x for x in cfg.meters if x.bus == bus.id and x.protocol == "cjt188"):
                heat = m.type_code in HEAT_TYPES
                meter = sim.add(m.address, meter_type=m.type_code, has_valve=bool(m.valve), total_m3=120.0 + 7.3 * i,
                                flow_m3h=(0.6 if heat else 0.15) + 0.05 * i, di_high_first=m.di_order == "high-first")
                if hub is not None:
                    remember(meter, f"cjt188/{bus.id}/{m.address}", hub.state, 0.3 + 0.1 * (i % 3))
            await sim.start("127.0.0.1", port)
            log.info("simulating %d CJ/T 188 meters on bus %s (socket://127.0.0.1:%d)", len(sim.meters), bus.id, port)
            sims.append(sim)
        await asyncio.Event().wait()
    finally:
        for sim in sims:
            await sim.stop()



__all__ = ["FAULTS", "Cjt188Simulator", "SimCjtMeter", "serve_for_config"]
