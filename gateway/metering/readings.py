"""Readings: what a poll's outcome does to a meter, committed with its events without holding the bus.

* A reading goes to the ``readings`` table with an AUTOINCREMENT id, in the same
  transaction as its ``meter.reading`` event (and ``meter.online``, ``meter.anomaly``,
  the billing reading when it is one). The single writer commits in id order, so
  ``GET /readings?after=<id>`` never skips or repeats, even while new readings arrive.
* Plausibility, "no hot water", the valve read-back and billing are decided on the loop
  (``rules.py``) from the meter's previous readings, seeded from the register at start
  (last values, commanded valve states, active faults and mismatches), so a restart
  neither forgets nor repeats them. A fault or mismatch row changes in the same
  transaction as its event (``meter.fault`` / ``meter.fault_cleared``,
  ``meter.valve_mismatch`` / ``meter.valve_mismatch_cleared``).
* The valve's state registers are read with every poll (``Profile.polled``); they are
  taken out of the reading's values here.
* The commit runs as its own task: the bus goes on with the next meter meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from drivers.modbus.profile import VALVE_LIMIT_FIELD, VALVE_STATE_FIELD
from gateway.context import GatewayContext
from gateway.events import Emit, format_ts
from gateway.metering import register
from gateway.metering.billing import Billing
from gateway.metering.models import MeterRuntime
from gateway.metering.rules import NO_HOT_WATER, goes_offline, no_hot_water, plausibility, valve_check

log = logging.getLogger(__name__)

VALVE_MISMATCH = "valve_mismatch"

Txn = Callable[[sqlite3.Connection, Emit], object]


class Readings:
    """The scheduler's :class:`~gateway.metering.scheduler.PollSink`, and the reading pull."""

    def __init__(self, ctx: GatewayContext, meters: Mapping[str, MeterRuntime], billing: Billing) -> None:
        self.ctx = ctx
        self.meters = meters
        self.billing = billing
        self._pending: set[asyncio.Task[None]] = set()

    def seed(self) -> None:
        """Last values per meter and valve states from the register: plausibility survives restarts."""
        for meter, read_at, values in register.last_readings(self.ctx.store):
            m = self.meters.get(meter)
            if m is not None:
                m.values = values
                m.read_at = read_at
                total = values.get("total_m3")
                m.prev_total = float(total) if isinstance(total, (int, float)) else None
                m.prev_at = _parse_ts(read_at)
        for meter, state in register.valve_states(self.ctx.store).items():
            if meter in self.meters:
                self.meters[meter].valve = state
        for meter, kind, since in register.conditions(self.ctx.store):
            m = self.meters.get(meter)
            if m is not None and kind == VALVE_MISMATCH:
                m.valve_mismatch = since
            elif m is not None:
                m.faults[kind] = since

    def no_hot_water_faults(self) -> int:
        """Meters with an open no-hot-water fault (the alert rule NoHotWater reads it as a gauge)."""
        return sum(1 for m in self.meters.values() if NO_HOT_WATER in m.faults)

    def on_values(self, m: MeterRuntime, values: dict[str, Any]) -> None:
        """A successful poll: decide anomalies, faults, valve, billing, online; commit it all in one transaction."""
        now = self.ctx.clock.now()
        read_at = format_ts(now)
        came_back = m.online is False
        m.online, m.misses, m.last_error, m.offline_since = True, 0, "", None
        valve = self._valve(m, values.pop(VALVE_STATE_FIELD, None), values.pop(VALVE_LIMIT_FIELD, None), now)
        new_anomalies = plausibility(m, values, now, self.ctx.config.metering)
        fault = no_hot_water(m, values, now, self.ctx.config.metering)
        if fault is not None:
            log.warning("meter %s: %s %s (supply %s degC, floor %s)", m.id, fault[1]["kind"],
                        "raised" if fault[0] == "raise" else "cleared", fault[1]["temp_c"], fault[1]["floor_c"])
        m.values, m.read_at = values, read_at
        period = self.billing.claim(m.id, self.ctx.clock.local())
        unit, mid = m.cfg.unit, m.id
        body = register.encode_values(values)

        def txn(conn: sqlite3.Connection, emit: Emit) -> None:
            register.insert_reading(conn, mid, unit, read_at, body)
            emit("meter.reading", {"meter": mid, "unit": unit, "values": values, "read_at": read_at})
            if came_back:
                emit("meter.online", {"meter": mid, "unit": unit})
            for kind, detail in new_anomalies:
                emit("meter.anomaly", {"meter": mid, "unit": unit, "kind": kind, **detail})
            for change, kind, details in ([valve] if valve else []) + ([(fault[0], "fault", fault[1])] if fault else []):
                _condition(conn, emit, mid, unit, change, kind, details)
            if period is not None and register.insert_billing_reading(conn, mid, period, unit, read_at, body):
                emit("meter.billing_reading", {"meter": mid, "unit": unit, "period": period,
                                               "values": values, "read_at": read_at})

        # a failed commit must not leave the billing reading marked as taken: it is retried
        self._write(txn, (lambda: self.billing.release(mid, period)) if period is not None else None)

    @staticmethod
    def _valve(m: MeterRuntime, raw: Any, limit: Any, now: datetime) -> tuple[str, str, dict[str, Any]] | None:
        """The valve as this poll read it, against the commanded state: (raise|clear, kind, details) or None."""
        if not isinstance(raw, int) or m.profile is None or m.profile.valve is None:
            return None
        read = m.profile.valve.state_of(raw, limit if isinstance(limit, int) else None)
        commanded, since = m.valve, m.valve_mismatch
        change = valve_check(m, read, raw, now)
        if change is None:
            return None
        if change == "raise":
            since = m.valve_mismatch
            log.warning("meter %s: valve reads %s (raw %d), commanded %s", m.id, read, raw, commanded)
        return change, VALVE_MISMATCH, {"commanded": commanded, "read": read, "raw": raw, "since": since}

    async def meter_missed(self, m: MeterRuntime) -> None:
        if not goes_offline(m, self.ctx.config.metering.offline_after):
            return
        m.online = False
        m.offline_since = format_ts(self.ctx.clock.now())
        log.warning("meter %s offline after %d misses (%s)", m.id, m.misses, m.last_error)
        data = {"meter": m.id, "unit": m.cfg.unit, "misses": m.misses, "error": m.last_error.split(":")[0]}
        self._write(lambda conn, emit: emit("meter.offline", data))

    def _write(self, txn: Txn, on_fail: Callable[[], None] | None = None) -> None:
        """Commit without holding the bus: the writer keeps FIFO order, the poll goes on."""
        task = asyncio.get_running_loop().create_task(self._commit(txn, on_fail))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _commit(self, txn: Txn, on_fail: Callable[[], None] | None = None) -> None:
        try:
            await self.ctx.events.transact(txn)
        except Exception:
            log.exception("could not store a meter reading")
            self.ctx.metrics.inc("meter_store_failures_total")
            if on_fail is not None:
                on_fail()

    async def flush(self) -> None:
        """Wait until every reading handed to the store is committed, including those handed over meanwhile."""
        while self._pending:
            await self.settle()

    async def settle(self) -> None:
        """Wait for the commits handed over so far (stop: the buses may still be polling)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def after(self, after: int, limit: int, **filters: Any) -> dict[str, Any]:
        """Cursor pull: items with id > after in id order (``register.readings_after`` filters), and ``next``.

        Values are rounded to their profile's precision (readings stored before it was declared).
        """
        items, last = register.readings_after(self.ctx.store, after, limit, **filters)
        for item in items:
            m = self.meters.get(item["meter"])
            if m is not None and m.profile is not None:
                item["values"] = m.profile.round_values(item["values"])
        return {"items": items, "next": str(last)}

    async def prune(self) -> int:
        """Drop readings older than ``keep_days`` (the disk stays bounded; billing readings are kept)."""
        cutoff = format_ts(self.ctx.clock.now() - timedelta(days=self.ctx.config.metering.keep_days))
        hi = await asyncio.to_thread(register.last_reading_before, self.ctx.store, cutoff)
        if hi <= 0:
            return 0
        n, slices = await self.ctx.store.delete_in_slices(
            lambda conn, after, limit: register.prune_readings(conn, cutoff, after, hi, limit))
        if n:
            log.info("pruned %d readings older than %s in %d slice(s)", n, cutoff, slices)
        return n


def _condition(conn: sqlite3.Connection, emit: Emit, meter: str, unit: str, change: str, kind: str,
               details: dict[str, Any]) -> None:
    """Raise or clear a fault / valve mismatch: its row and its event, in the reading's transaction.

    ``kind`` is ``fault`` (``details["kind"]`` names which: ``no_hot_water``) or ``valve_mismatch``.
    """
    key = details["kind"] if kind == "fault" else kind
    event = f"meter.{kind}" if change == "raise" else f"meter.{kind}_cleared"
    if change == "raise":
        register.set_condition(conn, meter, key, details["since"], details)
    else:
        register.clear_condition(conn, meter, key)
    emit(event, {"meter": meter, "unit": unit, **details})


def _parse_ts(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
