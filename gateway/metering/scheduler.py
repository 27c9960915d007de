"""One :class:`BusScheduler` per bus: the only task that talks on that bus.

Why it is shaped like this:

* A bus carries one request at a time, so each bus has exactly one task that owns
  the line. Meters are polled at their ``poll_s``, phase-spread so they do not all
  fall due together.
* Never stall: a meter that stops answering costs ``timeout_s x (retries+1)`` per
  attempt, so it is backed off exponentially (up to ``max_backoff_s``) and reported
  offline after ``offline_after`` misses; the others keep their period.
* Valve writes and ``readings.now`` go into the urgent lane, taken before the next
  due poll (never behind a whole cycle); valve writes go ahead of urgent polls.
* A dead link (``ModbusConnectionError``) marks the bus offline, fails the waiting
  urgent jobs and retries the link with its own backoff.
* Two protocols, one scheduler: a ``transport = "serial"`` bus is a CJ/T 188 line
  (``cjt188.py`` reads and drives its meters), every other bus is Modbus. Both raise the
  same bus error kinds, so backoff, offline reports and the urgent lane are the same.

What a poll *means* (anomalies, billing, online/offline, the commit) is the
:class:`PollSink`'s business (``readings.py``); the scheduler only reads the bus.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from drivers.asyncwait import wait_set
from drivers.cjt188.link import Cjt188Bus
from drivers.modbus import ModbusConnectionError, ModbusError
from gateway.config import BusConfig, MeteringSection
from gateway.context import GatewayContext
from gateway.metering import cjt188
from gateway.metering.models import Job, MeterRuntime
from gateway.metering.rules import non_finite, poll_backoff
from gateway.metering.valves import drive_valve
from gateway.reasons import BUS_UNREACHABLE

if TYPE_CHECKING:  # pragma: no cover - typing only
    from drivers.modbus.transport import ModbusBus

log = logging.getLogger(__name__)


def make_bus(cfg: BusConfig) -> ModbusBus | Cjt188Bus:
    """The link a bus config asks for: a CJ/T 188 serial line, or a Modbus bus (pymodbus loaded only then)."""
    if cfg.transport == "serial":
        return cjt188.make_bus(cfg.port, baud=cfg.baud, parity=cfg.parity, timeout_s=cfg.timeout_s,
                               retries=cfg.retries, wakeup=cfg.wakeup_bytes)
    from drivers.modbus.transport import ModbusBus

    return ModbusBus(cfg.transport, cfg.port, baud=cfg.baud, timeout_s=cfg.timeout_s, retries=cfg.retries)


class PollSink(Protocol):
    """Where a poll's outcome goes (the readings writer)."""

    def on_values(self, m: MeterRuntime, values: dict[str, Any]) -> None:
        """A successful read: decide and commit (without holding the bus)."""

    async def meter_missed(self, m: MeterRuntime) -> None:
        """A failed read (``m.misses`` already counted)."""


class BusScheduler:
    """The one task that talks on a bus."""

    def __init__(self, ctx: GatewayContext, cfg: BusConfig, meters: list[MeterRuntime], sink: PollSink) -> None:
        self.ctx = ctx
        self.section: MeteringSection = ctx.config.metering
        self.cfg = cfg
        self.sink = sink
        self.meters = [m for m in meters if m.pollable]
        self.bus: ModbusBus | Cjt188Bus = make_bus(cfg)
        self.urgent: collections.deque[Job] = collections.deque()
        self.wake = asyncio.Event()
        self.polls = 0
        self._spread()

    def _spread(self) -> None:
        """Phase-spread first polls over (at most) the first 5 s so meters do not all fall due in one instant.

        Not over the whole period: after a start, central and the console want every meter's value within
        seconds, and the bus serves one request at a time anyway (a due meter waits its turn)."""
        now = time.monotonic()
        n = max(len(self.meters), 1)
        for i, m in enumerate(self.meters):
            m.next_due = now + min(m.cfg.poll_s, 5.0) * i / n

    def submit(self, job: Job) -> bool:
        """Queue urgent work: valve writes ahead of everything (after earlier valve writes), then polls.

        A meter already waiting for an urgent poll is not queued twice (billing retries and
        ``readings.now`` repeated while a slow bus catches up would otherwise pile up).
        """
        if job.kind == "valve":
            pos = sum(1 for j in self.urgent if j.kind == "valve")
            self.urgent.insert(pos, job)
        elif any(j.kind == "poll" and j.meter is job.meter for j in self.urgent):
            return False
        else:
            self.urgent.append(job)
        self.wake.set()
        return True

    async def run(self) -> None:
        """Forever: urgent jobs first, else the most overdue meter, else wait until one is due."""
        backoff = 0.5
        while True:
            try:
                await self._step()
                backoff = 0.5
            except ModbusConnectionError as exc:
                await self.ctx.devices.set_state(self.cfg.id, "bus", False, BUS_UNREACHABLE(error=exc))
                self._fail_urgent(exc)
                await self._sleep_or_wake(backoff)
                backoff = min(backoff * 2, 30.0)

    async def _step(self) -> None:
        if self.urgent:
            await self._do(self.urgent.popleft())
            return
        if not self.meters:
            await self._sleep_or_wake(3600)
            return
        m = min(self.meters, key=lambda x: x.next_due)
        delay = m.next_due - time.monotonic()
        if delay > 0:
            await self._sleep_or_wake(delay)
            return
        await self._poll(m)

    async def _sleep_or_wake(self, delay: float) -> None:
        self.wake.clear()
        if self.urgent:
            return
        await wait_set(self.wake, delay)

    def _fail_urgent(self, exc: Exception) -> None:
        while self.urgent:
            job = self.urgent.popleft()
            if job.future is not None and not job.future.done():
                job.future.set_exception(exc)

    async def _do(self, job: Job) -> None:
        try:
            if job.kind == "poll":
                result: Any = await self._poll(job.meter, urgent=True)
            elif isinstance(self.bus, Cjt188Bus):
                result = await cjt188.drive_valve(self.bus, job.meter, job.action)
            else:
                result = await drive_valve(self.bus, job.meter, job.action)
        except ModbusConnectionError:
            self.urgent.appendleft(job)  # run() reports the bus and fails the queue
            raise
        except Exception as exc:  # handed to whoever waits
            if job.future is not None and not job.future.done():
                job.future.set_exception(exc)
            return
        if job.future is not None and not job.future.done():
            job.future.set_result(result)

    async def _read_meter(self, m: MeterRuntime) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if isinstance(self.bus, Cjt188Bus):
            values = await cjt188.read_values(self.bus, m)
        else:
            for block in m.plan:
                regs = await self.bus.read(block.table, block.start, block.count, m.cfg.device_id)
                values.update(block.decode(regs))
            values = m.profile.fold(values) if m.profile is not None else values
        bad = non_finite(values)
        if bad:
            # NaN/inf is not JSON and no reading: drop the field, count it
            self.ctx.devices.error(self.cfg.id, "bus", "bad_value")
            for k in bad:
                del values[k]
        return values

    async def _poll(self, m: MeterRuntime, urgent: bool = False) -> dict[str, Any] | None:
        started = time.monotonic()
        try:
            values = await self._read_meter(m)
        except ModbusConnectionError:
            raise
        except ModbusError as exc:
            await self._missed(m, exc)
            if urgent:
                raise
            return None
        self.polls += 1
        await self.ctx.devices.set_state(self.cfg.id, "bus", True)
        # keep the phase: due again one period after it was due, not after it was served
        if not urgent:
            m.next_due = max(m.next_due + m.cfg.poll_s, started)
        self.ctx.metrics.inc("meter_polls_total", {"bus": self.cfg.id})
        try:
            self.sink.on_values(m, values)
        except Exception:  # a rule bug must not stop the bus: log it, keep polling
            log.exception("meter %s: could not process a reading", m.id)
            self.ctx.metrics.inc("meter_process_failures_total")
        return values

    async def _missed(self, m: MeterRuntime, exc: ModbusError) -> None:
        """Count the miss, back the meter off (the others keep their period), tell the sink."""
        self.polls += 1
        m.misses += 1
        m.last_error = f"{exc.kind}: {exc}"
        self.ctx.devices.error(self.cfg.id, "bus", exc.kind)
        self.ctx.metrics.inc("meter_poll_failures_total", {"bus": self.cfg.id, "error": exc.kind})
        m.next_due = time.monotonic() + poll_backoff(m.cfg.poll_s, m.misses, self.section.max_backoff_s)
        await self.sink.meter_missed(m)
