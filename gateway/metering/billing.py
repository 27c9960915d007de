"""Quarter-end billing: one billing reading per meter and quarter, and a report of the meters that never gave one.

Inside a billing window (site time, ``rules.billing_period``) every meter still lacking
its billing reading is polled now (urgent lane), again at each check until it answers;
the first reading in the window becomes the billing reading (``readings.py`` claims it
here, in the reading's own transaction). After the window, the meters still missing
are reported once per period (``meter.billing_missing``, with the report row in the
same transaction), for up to ``billing_report_days``.

Central pulls a quarter's result with ``GET /billing?quarter=2026Q4`` (:meth:`Billing.report`):
every meter's billing reading, or why it has none (``rules.missing_reason``).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from gateway.context import GatewayContext
from gateway.events import Emit, format_ts
from gateway.metering import register
from gateway.metering.models import Job, MeterRuntime
from gateway.metering.rules import billing_period, billing_window, last_window_end, missing_reason

log = logging.getLogger(__name__)


class Billing:
    def __init__(self, ctx: GatewayContext, meters: Mapping[str, MeterRuntime],
                 submit: Callable[[Job], bool]) -> None:
        self.ctx = ctx
        self.meters = meters
        self.submit = submit
        #: (meter, period) with a billing reading taken (or being committed); seeded from the register
        self.billed: set[tuple[str, str]] = register.billed(ctx.store)

    async def run(self, prune: Callable[[], Awaitable[int]]) -> None:
        """Forever: :meth:`check` every ``billing_check_s``; ``prune`` old readings hourly on the same beat."""
        last_prune = 0.0
        while True:
            try:
                await self.check()
                if time.monotonic() - last_prune > 3600:
                    last_prune = time.monotonic()
                    await prune()
            except Exception:
                log.exception("billing check failed")
            await asyncio.sleep(self.ctx.config.metering.billing_check_s)

    def claim(self, meter_id: str, local: datetime) -> str | None:
        """The period a reading taken at ``local`` is the billing reading for (None: not in a window, or taken)."""
        period = billing_period(local)
        if period is None or (meter_id, period) in self.billed:
            return None
        self.billed.add((meter_id, period))
        return period

    def release(self, meter_id: str, period: str) -> None:
        """Its commit failed: the billing reading is not taken, the next poll in the window retries it."""
        self.billed.discard((meter_id, period))

    async def check(self) -> dict[str, Any]:
        """In the window: poll meters still lacking their billing reading now. After it: report the missing, once."""
        local = self.ctx.clock.local()
        period = billing_period(local)
        if period is not None:
            lacking = [m for m in self.meters.values() if (m.id, period) not in self.billed and m.pollable]
            for m in lacking:
                self.submit(Job("poll", m))
            return {"period": period, "polled": [m.id for m in lacking]}
        done, end = last_window_end(local)
        if local - end > timedelta(days=self.ctx.config.metering.billing_report_days):
            return {}
        if register.billing_reported(self.ctx.store, done):
            return {}
        missing = [m for m in self.meters.values() if (m.id, done) not in self.billed]
        at = format_ts(self.ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Emit) -> None:
            register.insert_billing_report(conn, done, at, (m.id for m in missing))
            for m in missing:
                emit("meter.billing_missing", {"meter": m.id, "unit": m.cfg.unit, "period": done})

        await self.ctx.events.transact(txn)
        if missing:
            log.warning("billing period %s: %d meters without a billing reading", done, len(missing))
        return {"period": done, "missing": [m.id for m in missing]}

    def status(self, period: str) -> dict[str, Any]:
        taken = register.billed_meters(self.ctx.store, period)
        return {"period": period, "taken": sorted(taken), "missing": sorted(set(self.meters) - taken)}

    def report(self, period: str) -> dict[str, Any]:
        """Every meter's billing reading for ``period`` (a valid ``2026Q4``), or why it has none.

        Meters no longer configured but billed in that quarter are listed too (their reading stands).
        """
        window = billing_window(period, self.ctx.clock.tz)
        now = self.ctx.clock.local()
        taken = register.billing_readings(self.ctx.store, period)
        items = []
        for mid in sorted(set(self.meters) | set(taken)):
            m = self.meters.get(mid)
            item: dict[str, Any] = {"meter": mid, "unit": m.cfg.unit if m else taken[mid][0], "status": "read",
                                    "reason": None, "read_at": None, "values": None,
                                    "last_read_at": m.read_at if m else None}
            if mid in taken:
                _, item["read_at"], values = taken[mid]
                item["values"] = m.profile.round_values(values) if m and m.profile else values
            elif m is not None:
                item["status"] = "missing"
                item["reason"] = missing_reason(window, now, state=m.state, ever_read=m.read_at is not None)
            items.append(item)
        return {"quarter": period, "window": {"from": format_ts(window[0]), "to": format_ts(window[1])},
                "read": sum(1 for i in items if i["status"] == "read"),
                "missing": sum(1 for i in items if i["status"] == "missing"), "items": items}
