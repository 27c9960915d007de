"""The metering area's component: builds the parts at start and wires them; no rules, no SQL here.

Parts (one concern a module): ``profiles`` (meters and their profiles), ``scheduler``
(one task per bus), ``readings`` (what a poll does, committed with its events),
``rules`` (plausibility, billing calendar: pure), ``billing`` (quarter-end readings),
``valves`` (confirmed valve writes), ``register`` (all SQL). HTTP routes are in
``gateway/api/routes/metering.py``; the MQTT commands are the table in :meth:`commands`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from gateway.commands import Handler
from gateway.context import GatewayContext
from gateway.errors import Invalid
from gateway.metering import profiles
from gateway.metering.billing import Billing
from gateway.metering.models import BillingExportArgs, Job, MeterRuntime, ReadingsNowArgs, ReadingsPullArgs, ValveArgs
from gateway.metering.readings import Readings
from gateway.metering.register import MIGRATIONS
from gateway.metering.rules import parse_quarter
from gateway.metering.scheduler import BusScheduler
from gateway.metering.valves import Valves, find_meter


class MeteringComponent:
    name = "metering"
    migrations: list[tuple[int, str]] = MIGRATIONS

    ctx: GatewayContext
    billing: Billing
    readings: Readings
    valves: Valves

    def __init__(self) -> None:
        self.meters: dict[str, MeterRuntime] = {}
        self.schedulers: dict[str, BusScheduler] = {}
        self._billing_task: asyncio.Task[None] | None = None
        self._started = False

    async def start(self, ctx: GatewayContext) -> None:
        self.ctx, self._started = ctx, True
        self.meters = profiles.runtimes(ctx.config)
        self.billing = Billing(ctx, self.meters, self.submit)
        self.readings = Readings(ctx, self.meters, self.billing)
        self.valves = Valves(ctx, self.meters, self.submit)
        self.readings.seed()
        for name, (handler, args) in self.commands().items():
            ctx.commands.register(name, handler, args)
        for bus in ctx.config.buses:
            meters = [m for m in self.meters.values() if m.cfg.bus == bus.id]
            sched = self.schedulers[bus.id] = BusScheduler(ctx, bus, meters, self.readings)
            ctx.devices.declare(bus.id, "bus")
            ctx.supervisor.spawn(f"metering:{bus.id}", sched.run, device=(bus.id, "bus"))
        ctx.handover_sources.append(self)
        # open no-hot-water faults, for the alert rule of that name (config/prometheus/)
        ctx.metrics.gauge_fn("meter_no_hot_water_faults", self.readings.no_hot_water_faults)
        if ctx.config.meters:
            self._billing_task = asyncio.get_running_loop().create_task(self.billing.run(self.readings.prune))

    async def stop(self) -> None:
        if not self._started:
            return
        if self._billing_task is not None:
            self._billing_task.cancel()
        for sched in self.schedulers.values():
            await sched.bus.close()
        await self.readings.settle()

    def commands(self) -> dict[str, tuple[Handler, type[BaseModel]]]:
        """MQTT command -> (handler, args model): everything central may ask of this area."""
        return {
            "valve": (self._cmd_valve, ValveArgs),
            "readings.now": (self._cmd_readings_now, ReadingsNowArgs),
            "readings.pull": (self._cmd_readings_pull, ReadingsPullArgs),     # outbound only: what central
            "billing.export": (self._cmd_billing_export, BillingExportArgs),  # would GET over HTTP
        }

    def submit(self, job: Job) -> bool:
        """Urgent work (valve write, poll now) to the scheduler of the meter's bus."""
        return self.schedulers[job.meter.cfg.bus].submit(job)

    # ------------------------------------------------------------------ what routes and commands call
    async def set_valve(self, meter_id: str, action: str, actor: str, role: str) -> dict[str, Any]:
        return await self.valves.set(meter_id, action, actor, role)

    async def poll_now(self, meter_ids: list[str] | None = None) -> list[str]:
        """Queue an immediate poll (readings follow as events); returns the meters queued."""
        ms = [find_meter(self.meters, i) for i in (meter_ids or list(self.meters))]
        queued = []
        for m in ms:
            if m.pollable:
                self.submit(Job("poll", m))  # a meter already waiting is not queued twice, but counts as queued
                queued.append(m.id)
        return queued

    async def _cmd_valve(self, args: ValveArgs) -> dict[str, Any]:
        res = await self.set_valve(args.meter, args.action, "central", "central")
        return {"state": res["state"]}

    async def _cmd_readings_now(self, args: ReadingsNowArgs) -> dict[str, Any]:
        queued = await self.poll_now(args.meters)
        await self.ctx.audit.record("central", "central", "readings.now", ",".join(queued)[:500], {"count": len(queued)})
        return {"queued": queued}

    async def _cmd_readings_pull(self, args: ReadingsPullArgs) -> dict[str, Any]:
        after = args.cursor()
        if after is None:
            raise Invalid("invalid_cursor", "after must be a cursor returned as next (or null: from the oldest kept)")
        return self.readings_after(after, args.limit)

    async def _cmd_billing_export(self, args: BillingExportArgs) -> dict[str, Any]:
        period = parse_quarter(args.quarter)
        if period is None:
            raise Invalid("invalid_quarter", "quarter must be a year and quarter like 2026Q4 (Q1..Q4)",
                          quarter=args.quarter)
        return self.billing_report(period)

    def readings_after(self, after: int, limit: int, **filters: Any) -> dict[str, Any]:
        """The reading pull; filters: ``meters``, ``units`` (lists), ``start``, ``end`` (RFC 3339 UTC)."""
        return self.readings.after(after, limit, **filters)

    def billing_report(self, period: str) -> dict[str, Any]:
        """Every meter's quarter-end reading for ``period`` (``2026Q4``), or why it is missing."""
        return self.billing.report(period)

    async def flush(self) -> None:
        await self.readings.flush()

    def meter_states(self) -> list[dict[str, Any]]:
        """Every meter's live state for GET /meters and the console."""
        return [m.view() for m in self.meters.values()]

    def handover_items(self) -> dict[str, Any]:
        """Meters offline, anomalous, faulty (no hot water) or with a valve mismatch, for the shift handover."""
        items = [s for s in self.meter_states() if s["online"] is False or s["anomalies"] or s["state"] == "error"
                 or s["faults"] or s["valve_mismatch"]]
        return {"meters": items}
