"""Hot-water metering: one scheduler per bus, readings, plausibility, quarter-end billing, valves.

Why it is shaped like this:

* A bus carries one request at a time, so each bus has exactly one task (its
  :class:`BusScheduler`) that owns the line. Meters are polled at their
  ``poll_s``, phase-spread so they do not all fall due together. A meter that
  stops answering costs ``timeout_s x (retries+1)`` per attempt, so it is backed
  off exponentially (up to ``max_backoff_s``) and reported ``meter.offline``
  after ``offline_after`` misses: it cannot stall the others.
* Valve writes and ``readings.now`` go into the scheduler's urgent lane, taken
  before the next due poll (never behind a whole cycle).
* Readings go to the ``readings`` table with an AUTOINCREMENT id, in the same
  transaction as their ``meter.reading`` event. The single writer commits in id
  order, so ``GET /readings?after=<id>`` never skips or repeats, even while new
  readings arrive.
* Plausibility and billing are decided on the loop from the meter's previous
  reading (seeded from the database at start, so a restart does not forget).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field as PField

from drivers.modbus import (ModbusConnectionError, ModbusError, Profile, ProfileError, ReadBlock, load_profile,
                            plan_reads)
from gateway import config as config_mod
from gateway.api.auth import Principal, require_role
from gateway.api.errors import ApiError, error_responses
from gateway.commands import CommandError
from gateway.config import BusConfig, GatewayConfig, MeterConfig, Problem, find_profile
from gateway.context import GatewayContext
from gateway.events import format_ts

log = logging.getLogger(__name__)

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
    CREATE TABLE readings (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        meter TEXT NOT NULL,
        unit TEXT NOT NULL,
        read_at TEXT NOT NULL,
        vals TEXT NOT NULL
    );
    CREATE INDEX readings_meter ON readings(meter, id);
    CREATE TABLE billing_readings (
        meter TEXT NOT NULL,
        period TEXT NOT NULL,
        unit TEXT NOT NULL,
        read_at TEXT NOT NULL,
        vals TEXT NOT NULL,
        PRIMARY KEY (meter, period)
    );
    CREATE TABLE billing_reports (period TEXT PRIMARY KEY, reported_at TEXT NOT NULL, missing TEXT NOT NULL);
    CREATE TABLE meter_valves (meter TEXT PRIMARY KEY, state TEXT NOT NULL, at TEXT NOT NULL, by TEXT NOT NULL);
    """),
]

QUARTER_END_MONTHS = (3, 6, 9, 12)
BILLING_FIRST_DAY, BILLING_LAST_DAY = 25, 30
#: a frozen total while flowing is "stuck" once this much volume should have been counted
STUCK_EXPECTED_M3 = 0.1


# ---------------------------------------------------------------------- billing calendar
def billing_period(local: datetime) -> str | None:
    """``2026Q4`` when ``local`` (site time) is inside a quarter's billing window, else None."""
    if local.month in QUARTER_END_MONTHS and BILLING_FIRST_DAY <= local.day <= BILLING_LAST_DAY:
        return f"{local.year}Q{local.month // 3}"
    return None


def last_window_end(local: datetime) -> tuple[str, datetime]:
    """The most recent billing window that has ended: (period, end in site time)."""
    year, month = local.year, local.month
    for _ in range(5):
        q_month = ((month - 1) // 3) * 3 + 3
        end = local.replace(year=year, month=q_month, day=BILLING_LAST_DAY, hour=0, minute=0, second=0,
                            microsecond=0) + timedelta(days=1)
        if end <= local:
            return f"{year}Q{q_month // 3}", end
        month = q_month - 3
        if month <= 0:
            month += 12
            year -= 1
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------- per-meter state
@dataclass
class MeterRuntime:
    cfg: MeterConfig
    profile: Profile | None
    plan: tuple[ReadBlock, ...]
    error: str = ""                    # profile problem: never polled
    next_due: float = 0.0
    misses: int = 0
    online: bool | None = None
    last_error: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    read_at: str | None = None
    prev_total: float | None = None
    prev_at: datetime | None = None
    expected_since_change: float = 0.0
    flow_since: datetime | None = None
    anomalies: dict[str, str] = field(default_factory=dict)   # kind -> since
    valve: str | None = None
    offline_since: str | None = None

    @property
    def id(self) -> str:
        return self.cfg.id


@dataclass
class Job:
    """Urgent work for a bus: a valve write or an immediate poll."""

    kind: Literal["valve", "poll"]
    meter: MeterRuntime
    action: str = ""
    future: asyncio.Future[Any] | None = None


class BusScheduler:
    """The one task that talks on a bus."""

    def __init__(self, comp: "MeteringComponent", cfg: BusConfig, meters: list[MeterRuntime]) -> None:
        self.comp = comp
        self.cfg = cfg
        self.meters = [m for m in meters if m.profile is not None]
        from drivers.modbus.transport import ModbusBus  # pymodbus only where there is a bus

        self.bus = ModbusBus(cfg.transport, cfg.port, baud=cfg.baud, timeout_s=cfg.timeout_s, retries=cfg.retries)
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
                await self.comp.ctx.devices.set_state(self.cfg.id, "bus", False, str(exc))
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
        try:
            await asyncio.wait_for(self.wake.wait(), delay)
        except asyncio.TimeoutError:
            pass

    def _fail_urgent(self, exc: Exception) -> None:
        while self.urgent:
            job = self.urgent.popleft()
            if job.future is not None and not job.future.done():
                job.future.set_exception(exc)

    async def _do(self, job: Job) -> None:
        try:
            if job.kind == "poll":
                result: Any = await self._poll(job.meter, urgent=True)
            else:
                result = await self._valve(job.meter, job.action)
        except ModbusConnectionError:
            self.urgent.appendleft(job)  # run() reports the bus and fails the queue
            raise
        except Exception as exc:  # noqa: BLE001 - handed to whoever waits
            if job.future is not None and not job.future.done():
                job.future.set_exception(exc)
            return
        if job.future is not None and not job.future.done():
            job.future.set_result(result)

    async def _read_meter(self, m: MeterRuntime) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for block in m.plan:
            regs = await self.bus.read(block.table, block.start, block.count, m.cfg.device_id)
            values.update(block.decode(regs))
        values = m.profile.fold(values) if m.profile is not None else values
        bad = [k for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            # NaN/inf (a float register holding garbage) is not JSON and no reading: drop the field, count it
            self.comp.ctx.devices.error(self.cfg.id, "bus", "bad_value")
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
            self.polls += 1
            m.misses += 1
            m.last_error = f"{exc.kind}: {exc}"
            self.comp.ctx.devices.error(self.cfg.id, "bus", exc.kind)
            self.comp.ctx.metrics.inc("meter_poll_failures_total", {"bus": self.cfg.id, "error": exc.kind})
            backoff = min(m.cfg.poll_s * (2 ** (m.misses - 1)), max(m.cfg.poll_s, self.comp.section.max_backoff_s))
            m.next_due = time.monotonic() + backoff
            await self.comp.meter_missed(m)
            if urgent:
                raise
            return None
        self.polls += 1
        await self.comp.ctx.devices.set_state(self.cfg.id, "bus", True)
        # keep the phase: due again one period after it was due, not after it was served
        if not urgent:
            m.next_due = max(m.next_due + m.cfg.poll_s, started)
        self.comp.ctx.metrics.inc("meter_polls_total", {"bus": self.cfg.id})
        try:
            self.comp.on_values(m, values)
        except Exception:  # a rule bug must not stop the bus: log it, keep polling
            log.exception("meter %s: could not process a reading", m.id)
            self.comp.ctx.metrics.inc("meter_process_failures_total")
        return values

    async def _valve(self, m: MeterRuntime, action: str) -> str:
        assert m.profile is not None and m.profile.valve is not None
        v = m.profile.valve
        want = v.open if action == "open" else v.close
        await self.bus.write(v.address, want, m.cfg.device_id)
        got = (await self.bus.read("holding", v.read_address, 1, m.cfg.device_id))[0]
        if got != want:
            raise CommandError("valve_not_confirmed", f"meter {m.id}: valve register reads {got}, wrote {want}",
                               meter=m.id, wrote=want, read=got)
        return "open" if action == "open" else "closed"


# ---------------------------------------------------------------------- component
class ValveArgs(BaseModel):
    meter: str = PField(max_length=64)
    action: Literal["open", "close"]


class ValveBody(BaseModel):
    action: Literal["open", "close"]


class ReadingsNowArgs(BaseModel):
    meters: list[str] | None = None


class MeteringComponent:
    name = "metering"
    migrations: list[tuple[int, str]] = MIGRATIONS

    def __init__(self) -> None:
        self.ctx: GatewayContext | None = None  # type: ignore[assignment]
        self.meters: dict[str, MeterRuntime] = {}
        self.schedulers: dict[str, BusScheduler] = {}
        self._billed: set[tuple[str, str]] = set()
        self._pending_writes: set[asyncio.Task[Any]] = set()
        self._billing_task: asyncio.Task[None] | None = None

    @property
    def section(self) -> Any:
        return self.ctx.config.metering

    # ------------------------------------------------------------------ lifecycle
    async def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        cfg = ctx.config
        profiles: dict[str, tuple[Profile | None, str]] = {}
        for mc in cfg.meters:
            if mc.profile not in profiles:
                profiles[mc.profile] = _load_for_runtime(cfg, mc.profile)
            profile, err = profiles[mc.profile]
            plan = plan_reads(profile, max_gap=self.section.max_gap,
                              max_registers=self.section.max_registers) if profile else ()
            if err:
                log.error("meter %s not polled: %s", mc.id, err)
            self.meters[mc.id] = MeterRuntime(cfg=mc, profile=profile, plan=plan, error=err)
        self._seed_from_store()
        ctx.commands.register("valve", self._cmd_valve, ValveArgs)
        ctx.commands.register("readings.now", self._cmd_readings_now, ReadingsNowArgs)
        for bus in cfg.buses:
            sched = BusScheduler(self, bus, [m for m in self.meters.values() if m.cfg.bus == bus.id])
            self.schedulers[bus.id] = sched
            ctx.devices.declare(bus.id, "bus")
            ctx.supervisor.spawn(f"metering:{bus.id}", sched.run, device=(bus.id, "bus"))
        if cfg.meters:
            self._billing_task = asyncio.get_running_loop().create_task(self._billing_loop())

    async def stop(self) -> None:
        if self._billing_task is not None:
            self._billing_task.cancel()
        for sched in self.schedulers.values():
            await sched.bus.close()
        if self._pending_writes:
            await asyncio.gather(*self._pending_writes, return_exceptions=True)

    def _seed_from_store(self) -> None:
        """Last values per meter, billing readings taken, valve states: plausibility survives restarts."""
        rows = self.ctx.store.query(
            "SELECT r.meter, r.read_at, r.vals FROM readings r JOIN "
            "(SELECT meter, MAX(id) AS id FROM readings GROUP BY meter) last ON last.id = r.id")
        for meter, read_at, vals in rows:
            m = self.meters.get(meter)
            if m is not None:
                m.values = json.loads(vals)
                m.read_at = read_at
                total = m.values.get("total_m3")
                m.prev_total = float(total) if isinstance(total, (int, float)) else None
                m.prev_at = _parse_ts(read_at)
        for meter, period in self.ctx.store.query("SELECT meter, period FROM billing_readings"):
            self._billed.add((meter, period))
        for meter, state in self.ctx.store.query("SELECT meter, state FROM meter_valves"):
            if meter in self.meters:
                self.meters[meter].valve = state

    # ------------------------------------------------------------------ readings
    def on_values(self, m: MeterRuntime, values: dict[str, Any]) -> None:
        """A successful poll: decide anomalies, billing, online; commit it all in one transaction."""
        now = self.ctx.clock.now()
        read_at = format_ts(now)
        came_back = m.online is False
        m.online, m.misses, m.last_error, m.offline_since = True, 0, "", None
        new_anomalies = self._plausibility(m, values, now)
        m.values, m.read_at = values, read_at
        period = billing_period(self.ctx.clock.local())
        bill = period is not None and (m.id, period) not in self._billed
        if bill:
            self._billed.add((m.id, period))  # type: ignore[arg-type]
        unit, mid = m.cfg.unit, m.id
        body = json.dumps(values, separators=(",", ":"))

        def txn(conn: sqlite3.Connection, emit: Any) -> None:
            conn.execute("INSERT INTO readings(meter, unit, read_at, vals) VALUES(?,?,?,?)", (mid, unit, read_at, body))
            emit("meter.reading", {"meter": mid, "unit": unit, "values": values, "read_at": read_at})
            if came_back:
                emit("meter.online", {"meter": mid, "unit": unit})
            for kind, detail in new_anomalies:
                emit("meter.anomaly", {"meter": mid, "unit": unit, "kind": kind, **detail})
            if bill:
                cur = conn.execute("INSERT OR IGNORE INTO billing_readings(meter, period, unit, read_at, vals) "
                                   "VALUES(?,?,?,?,?)", (mid, period, unit, read_at, body))
                if cur.rowcount:
                    emit("meter.billing_reading", {"meter": mid, "unit": unit, "period": period,
                                                   "values": values, "read_at": read_at})

        # a failed commit must not leave the billing reading marked as taken: it is retried
        self._write(txn, (lambda: self._billed.discard((mid, period))) if bill else None)  # type: ignore[arg-type]

    def _write(self, txn: Callable[[sqlite3.Connection, Any], None], on_fail: Callable[[], None] | None = None) -> None:
        """Commit without holding the bus: the writer keeps FIFO order, the poll goes on."""
        task = asyncio.get_running_loop().create_task(self._commit(txn, on_fail))
        self._pending_writes.add(task)
        task.add_done_callback(self._pending_writes.discard)

    async def _commit(self, txn: Callable[[sqlite3.Connection, Any], None],
                      on_fail: Callable[[], None] | None = None) -> None:
        try:
            await self.ctx.events.transact(txn)
        except Exception:
            log.exception("could not store a meter reading")
            self.ctx.metrics.inc("meter_store_failures_total")
            if on_fail is not None:
                on_fail()

    async def flush(self) -> None:
        """Wait until every reading handed to the store is committed (tests, stop)."""
        while self._pending_writes:
            await asyncio.gather(*list(self._pending_writes), return_exceptions=True)

    async def meter_missed(self, m: MeterRuntime) -> None:
        if m.misses < self.section.offline_after or m.online is False:
            return
        m.online = False
        m.offline_since = format_ts(self.ctx.clock.now())
        log.warning("meter %s offline after %d misses (%s)", m.id, m.misses, m.last_error)
        data = {"meter": m.id, "unit": m.cfg.unit, "misses": m.misses, "error": m.last_error.split(":")[0]}
        self._write(lambda conn, emit: emit("meter.offline", data))

    # ------------------------------------------------------------------ plausibility
    def _plausibility(self, m: MeterRuntime, values: dict[str, Any], now: datetime) -> list[tuple[str, dict[str, Any]]]:
        """Return anomalies that start with this reading (each kind once per episode)."""
        sec = self.section
        found: dict[str, dict[str, Any]] = {}
        total = values.get("total_m3")
        flow = values.get("flow_m3h")
        total = float(total) if isinstance(total, (int, float)) else None
        prev, prev_at = m.prev_total, m.prev_at
        if total is not None and prev is not None:
            delta = total - prev
            rollover = m.profile.rollover_m3 if m.profile else 0.0
            if delta < -sec.reverse_tolerance_m3:
                if rollover and prev > 0.9 * rollover and total < 0.1 * rollover:
                    delta = total + rollover - prev  # documented register rollover: not a reverse
                else:
                    found["reverse"] = {"from_m3": prev, "to_m3": total}
            if delta > sec.spike_m3:
                found["spike"] = {"from_m3": prev, "to_m3": total}
            # stuck: the meter says water flows, the register does not move
            hours = max((now - prev_at).total_seconds() / 3600.0, 0.0) if prev_at else 0.0
            if isinstance(flow, (int, float)) and flow > 0 and abs(delta) < 1e-9:
                m.expected_since_change += float(flow) * hours
                if m.expected_since_change >= STUCK_EXPECTED_M3:
                    found["stuck"] = {"expected_m3": round(m.expected_since_change, 3), "total_m3": total}
            else:
                m.expected_since_change = 0.0
        flowing = (isinstance(flow, (int, float)) and flow > 0) or (
            flow is None and total is not None and prev is not None and total > prev)
        if flowing:
            m.flow_since = m.flow_since or (prev_at if prev_at and flow is None else now)
            if now - m.flow_since >= timedelta(hours=sec.leak_hours):
                found["leak"] = {"since": format_ts(m.flow_since)}
        else:
            m.flow_since = None
        if total is not None:
            m.prev_total, m.prev_at = total, now
        started = [(k, d) for k, d in found.items() if k not in m.anomalies]
        stamp = format_ts(now)
        m.anomalies = {k: m.anomalies.get(k, stamp) for k in found}
        return started

    # ------------------------------------------------------------------ billing
    async def _billing_loop(self) -> None:
        last_prune = 0.0
        while True:
            try:
                await self.check_billing()
                if time.monotonic() - last_prune > 3600:
                    last_prune = time.monotonic()
                    await self.prune()
            except Exception:
                log.exception("billing check failed")
            await asyncio.sleep(self.section.billing_check_s)

    async def prune(self) -> int:
        """Drop readings older than ``keep_days`` (the disk stays bounded; billing readings are kept)."""
        cutoff = format_ts(self.ctx.clock.now() - timedelta(days=self.section.keep_days))
        n = await self.ctx.store.write(
            lambda conn: conn.execute("DELETE FROM readings WHERE read_at < ?", (cutoff,)).rowcount)
        if n:
            log.info("pruned %d readings older than %s", n, cutoff)
        return int(n)

    async def check_billing(self) -> dict[str, Any]:
        """In the window: poll meters still lacking their billing reading now. After it: report the missing, once."""
        local = self.ctx.clock.local()
        period = billing_period(local)
        if period is not None:
            lacking = [m for m in self.meters.values() if (m.id, period) not in self._billed and m.profile]
            for m in lacking:
                self.schedulers[m.cfg.bus].submit(Job("poll", m))
            return {"period": period, "polled": [m.id for m in lacking]}
        done, end = last_window_end(local)
        if local - end > timedelta(days=self.section.billing_report_days):
            return {}
        rows = self.ctx.store.query("SELECT 1 FROM billing_reports WHERE period=?", (done,))
        if rows:
            return {}
        missing = [m for m in self.meters.values() if (m.id, done) not in self._billed]
        at = format_ts(self.ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Any) -> None:
            conn.execute("INSERT OR IGNORE INTO billing_reports(period, reported_at, missing) VALUES(?,?,?)",
                         (done, at, json.dumps([m.id for m in missing])))
            for m in missing:
                emit("meter.billing_missing", {"meter": m.id, "unit": m.cfg.unit, "period": done})

        await self.ctx.events.transact(txn)
        if missing:
            log.warning("billing period %s: %d meters without a billing reading", done, len(missing))
        return {"period": done, "missing": [m.id for m in missing]}

    def billing_status(self, period: str) -> dict[str, Any]:
        taken = {r[0] for r in self.ctx.store.query("SELECT meter FROM billing_readings WHERE period=?", (period,))}
        return {"period": period, "taken": sorted(taken), "missing": sorted(set(self.meters) - taken)}

    # ------------------------------------------------------------------ valves and polls on demand
    def _meter(self, meter_id: str) -> MeterRuntime:
        m = self.meters.get(meter_id)
        if m is None:
            raise CommandError("not_found", f"no meter {meter_id!r}", meter=meter_id)
        return m

    async def set_valve(self, meter_id: str, action: str, actor: str, role: str) -> dict[str, Any]:
        """Write the valve register (ahead of polls), read it back, then record event and audit together."""
        m = self._meter(meter_id)
        if m.profile is None or m.profile.valve is None:
            raise CommandError("no_valve", f"meter {m.id} (profile {m.cfg.profile}) has no valve register",
                               meter=m.id)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.schedulers[m.cfg.bus].submit(Job("valve", m, action, fut))
        try:
            state = await asyncio.wait_for(fut, self.section.valve_timeout_s)
        except (ModbusError, asyncio.TimeoutError, CommandError) as exc:
            code = exc.code if isinstance(exc, CommandError) else "meter_unreachable"
            await self.ctx.audit.record(actor, role, "meter.valve", m.id, {"action": action, "ok": False, "error": code})
            if isinstance(exc, CommandError):
                raise
            raise CommandError(code, f"meter {m.id}: valve {action} not confirmed ({type(exc).__name__}: {exc})",
                               meter=m.id) from None
        at = format_ts(self.ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Any) -> None:
            conn.execute("INSERT INTO meter_valves(meter, state, at, by) VALUES(?,?,?,?) ON CONFLICT(meter) "
                         "DO UPDATE SET state=excluded.state, at=excluded.at, by=excluded.by", (m.id, state, at, actor))
            emit("meter.valve", {"meter": m.id, "unit": m.cfg.unit, "state": state, "by": actor})
            self.ctx.audit.insert(conn, actor, role, "meter.valve", m.id, {"action": action, "ok": True})

        await self.ctx.events.transact(txn)
        m.valve = state
        return {"meter": m.id, "state": state}

    async def poll_now(self, meter_ids: list[str] | None = None) -> list[str]:
        """Queue an immediate poll (readings follow as events); returns the meters queued."""
        ids = list(self.meters) if not meter_ids else meter_ids
        ms = [self._meter(i) for i in ids]
        queued = []
        for m in ms:
            if m.profile is not None:
                self.schedulers[m.cfg.bus].submit(Job("poll", m))
                queued.append(m.id)
        return queued

    async def _cmd_valve(self, args: ValveArgs) -> dict[str, Any]:
        res = await self.set_valve(args.meter, args.action, "central", "central")
        return {"state": res["state"]}

    async def _cmd_readings_now(self, args: ReadingsNowArgs) -> dict[str, Any]:
        queued = await self.poll_now(args.meters)
        await self.ctx.audit.record("central", "central", "readings.now", ",".join(queued)[:500], {"count": len(queued)})
        return {"queued": queued}

    # ------------------------------------------------------------------ reading pull
    def readings_after(self, after: int, limit: int) -> dict[str, Any]:
        """Cursor pull: items with id > after in id order; ``next`` is the last id returned."""
        rows = self.ctx.store.query(
            "SELECT id, meter, unit, vals, read_at FROM readings WHERE id > ? ORDER BY id LIMIT ?", (after, limit))
        items = [{"meter": r[1], "unit": r[2], "values": json.loads(r[3]), "read_at": r[4]} for r in rows]
        return {"items": items, "next": str(rows[-1][0] if rows else after)}

    # ------------------------------------------------------------------ views
    def meter_states(self) -> list[dict[str, Any]]:
        """Every meter's live state for GET /meters and the console."""
        out = []
        for m in self.meters.values():
            out.append({
                "id": m.id, "unit": m.cfg.unit, "bus": m.cfg.bus, "device_id": m.cfg.device_id,
                "profile": m.cfg.profile, "poll_s": m.cfg.poll_s,
                "online": m.online, "state": ("error" if m.error else "pending" if m.online is None
                                              else "online" if m.online else "offline"),
                "values": m.values, "read_at": m.read_at,
                "anomalies": [{"kind": k, "since": s} for k, s in m.anomalies.items()],
                "valve": m.valve if (m.profile and m.profile.valve) else None,
                "has_valve": bool(m.profile and m.profile.valve),
                "misses": m.misses, "last_error": m.last_error or m.error, "offline_since": m.offline_since,
            })
        return out

    def handover_items(self) -> dict[str, Any]:
        """Meters offline or anomalous, for the shift handover report."""
        items = [s for s in self.meter_states() if s["online"] is False or s["anomalies"] or s["state"] == "error"]
        return {"meters": items}

    # ------------------------------------------------------------------ HTTP
    def routes(self) -> APIRouter:
        r = APIRouter(tags=["metering"])
        readers = require_role("technician", "operator", "central")
        writers = require_role("technician", "central")
        central = require_role("central")

        @r.get("/meters")
        async def get_meters(who: Principal = Depends(readers)) -> dict[str, Any]:
            return {"items": self.meter_states()}

        @r.post("/meters/{meter_id}/valve", responses=error_responses(404, 409))
        async def post_valve(meter_id: str, body: ValveBody, who: Principal = Depends(writers)) -> dict[str, Any]:
            try:
                return await self.set_valve(meter_id, body.action, who.name, who.role)
            except CommandError as exc:
                status = {"not_found": 404, "no_valve": 409}.get(exc.code, 502 if exc.code == "meter_unreachable" else 409)
                if status == 502:
                    status = 409  # the meter did not answer: a state conflict for the caller, not our failure
                raise ApiError(status, exc.code, str(exc)) from None

        @r.get("/readings")
        async def get_readings(after: str = Query(default="0", max_length=20),
                               limit: int = Query(default=500, ge=1, le=5000),
                               who: Principal = Depends(central)) -> dict[str, Any]:
            if not (after.isascii() and after.isdigit()) or int(after) >= 2 ** 63:
                raise ApiError(422, "invalid_cursor", "after must be a cursor returned as next")
            return self.readings_after(int(after), limit)

        return r


def _parse_ts(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _load_for_runtime(cfg: GatewayConfig, profile_id: str) -> tuple[Profile | None, str]:
    path = find_profile(cfg, profile_id)
    if path is None:
        return None, f"no meter profile {profile_id!r}"
    try:
        return load_profile(path), ""
    except ProfileError as exc:
        return None, str(exc)


# ---------------------------------------------------------------------- check-config
def check_profiles(cfg: GatewayConfig) -> list[Problem]:
    """Load every profile the config uses; one Problem per defect (file:line: key: message)."""
    problems: list[Problem] = []
    seen: set[Path] = set()
    for mc in cfg.meters:
        path = find_profile(cfg, mc.profile)
        if path is None or path in seen:
            continue
        seen.add(path)
        try:
            profile = load_profile(path)
        except ProfileError as exc:
            problems += [Problem(str(path), line, key, msg) for line, key, msg in exc.problems]
            continue
        if not any(f.name == "total_m3" for f in profile.fields):
            problems.append(Problem(str(path), 1, "fields", "a hot-water profile needs a total_m3 field (billing)"))
    return problems


if check_profiles not in config_mod.CHECK_HOOKS:
    config_mod.CHECK_HOOKS.append(check_profiles)
