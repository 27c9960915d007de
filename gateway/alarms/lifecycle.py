"""The alarm lifecycle against the store: raise, repeat, restore, acknowledge -- state and event in one transaction.

Nothing missed: every signal from a panel is committed (alarm row + ``alarm.*`` event + the panel
log row, one transaction) *before* the panel gets its ACK or confirm, and a DC-09 block retried
after a crash is recognised by (receiver, account, sequence, content digest) and committed once.
What a signal does is decided by :func:`gateway.alarms.rules.disposition`; what happens after
the commit (doors, liveness) is the caller's, from the returned :class:`Outcome`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from gateway.alarms import rules
from gateway.alarms import store as db
from gateway.alarms.dedupe import RecentBlocks
from gateway.alarms.errors import AlarmAlreadyAcknowledged, AlarmNotFound, UnknownState
from gateway.alarms.linkage import FireLinkage
from gateway.alarms.rules import FIRE_KINDS
from gateway.alarms.signals import KINDS, SYSTEM_ZONE_BASE, Signal
from gateway.config import AlarmZoneConfig
from gateway.context import GatewayContext
from gateway.events import Emit, format_ts
from gateway.gauges import event_age_s

log = logging.getLogger(__name__)

#: how often the unacknowledged-alarm gauges are refreshed (the alert rules wait minutes)
GAUGES_EVERY_S = 5.0
#: one block's signals and its dedupe key, in a batch
BatchSignals = tuple[list[Signal], tuple[str, str, str] | None]
#: an alarm's state after its restore: (not acknowledged, acknowledged)
RESTORED_STATES = (rules.state_after_restore(False), rules.state_after_restore(True))


@dataclass
class Outcome:
    """What a committed batch of signals changed, for the actions taken after the commit."""

    duplicate: bool = False
    raised: list[int] = field(default_factory=list)
    holds: list[tuple[int, list[str]]] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)


class Lifecycle:
    def __init__(self, ctx: GatewayContext, linkage: FireLinkage) -> None:
        self.ctx = ctx
        self.linkage = linkage
        self.zones: dict[tuple[str, int], AlarmZoneConfig] = {(z.receiver, z.zone): z for z in ctx.config.alarm_zones}
        #: DC-09 blocks already committed, by panel (a retry is ACKed again, not raised twice)
        self.blocks = RecentBlocks(lambda: format_ts(ctx.clock.now() - timedelta(hours=ctx.config.alarms.dedupe_keep_h)))
        ctx.store.on_rollback(self.blocks.rolled_back)

    # ------------------------------------------------------------------ signals
    async def record(self, signals: list[Signal], dedupe: tuple[str, str, str] | None = None) -> Outcome:
        """Commit signals (and the dedupe row) in one transaction."""
        return (await self.record_batch([(signals, dedupe)]))[0]

    async def record_batch(self, items: list[BatchSignals]) -> list[Outcome]:
        """Several blocks' signals (each with its dedupe row) in one transaction -- group commit
        across connections: one write, one wake-up for all of them. All or none are committed."""
        now = format_ts(self.ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Emit) -> list[Outcome]:
            logged: list[tuple[Any, ...]] = []   # the panel log's rows, written together at the end, in order
            try:
                outcomes = [self.commit(conn, emit, now, signals, dedupe, logged) for signals, dedupe in items]
                db.log_signals(conn, logged)
            except BaseException:   # rolled back to its savepoint: the blocks it appended are not in the table
                self.blocks.rolled_back()
                raise
            return outcomes

        return await self.ctx.events.transact(txn)

    def commit(self, conn: sqlite3.Connection, emit: Emit, now: str, signals: list[Signal],
               dedupe: tuple[str, str, str] | None, logged: list[tuple[Any, ...]]) -> Outcome:
        """The transaction body: a retried block changes nothing; otherwise each signal in order (its panel
        log rows appended to ``logged``)."""
        out = Outcome()
        log_signal = logged.append
        if dedupe is not None and signals and self.blocks.seen(conn, signals[0].receiver, dedupe, now):
            out.duplicate = True
            return out
        for s in signals:
            what = rules.disposition(s)
            if what == "log":
                log_signal(db.signal_row(now, s, None))
                if rules.walk_test(s):
                    emit("alarm.test_received", {"receiver": s.receiver, "account": s.account, "zone": s.zone,
                                                 "code": s.code})
            elif what == "restore":
                self._restore(conn, emit, now, s, out, logged)
            elif what == "reset":
                self._reset(conn, emit, now, s, out, logged)
            else:
                self._raise(conn, emit, now, s, out, logged)
        return out

    def _raise(self, conn: sqlite3.Connection, emit: Emit, now: str, s: Signal, out: Outcome,
               logged: list[tuple[Any, ...]]) -> None:
        # the same condition reported again while still active is one alarm, not two
        zone = self.zones.get((s.receiver, s.zone))
        if s.kind in FIRE_KINDS:   # its doors are placed (and an unplaced fire warned of) only for a new alarm
            repeated = db.count_repeat(conn, s)
            if repeated is not None:
                logged.append(db.signal_row(now, s, repeated))
                return
            doors = self.linkage.doors_for(s, zone)   # fire linkage places the fire (unplaced: every egress door)
        else:
            doors = []
        building = zone.building if zone else ""
        name = zone.name if zone else ""
        alarm_id = db.insert_alarm(conn, s, now, building, name, doors)   # None: a repeat, nothing inserted
        if alarm_id is None:
            logged.append(db.signal_row(now, s, db.count_repeat(conn, s)))
            return
        logged.append(db.signal_row(now, s, alarm_id))
        emit("alarm.raised", {"alarm": alarm_id, "receiver": s.receiver, "account": s.account, "zone": s.zone,
                              "code": s.code, "kind": s.kind, "building": building, "name": name, "text": s.text})
        out.raised.append(alarm_id)
        if doors:
            out.holds.append((alarm_id, doors))

    def _restore(self, conn: sqlite3.Connection, emit: Emit, now: str, s: Signal, out: Outcome,
                 logged: list[tuple[Any, ...]]) -> None:
        # the matching open alarms are ended by one statement; each is then logged and announced, oldest first
        rows = db.restore_alarms(conn, s, now, silence=rules.restores_silence_only(s), states=RESTORED_STATES)
        if not rows:
            if rules.logs_unmatched_restore(s):
                logged.append(db.signal_row(now, s, None))
            return
        for alarm_id, acknowledged in rows:
            self._ended(emit, now, s, out, alarm_id, acknowledged, logged)

    def _reset(self, conn: sqlite3.Connection, emit: Emit, now: str, s: Signal, out: Outcome,
               logged: list[tuple[Any, ...]]) -> None:
        """A facility system's reset: its transmitter's component alarms end (each with its own zone, kind)."""
        rows = db.alarms_a_reset_ends(conn, s, SYSTEM_ZONE_BASE)
        if not rows:
            logged.append(db.signal_row(now, s, None))
        for r in rows:
            # logged and announced against each alarm's own zone and kind
            acknowledged = r["acked_at"] is not None
            db.mark_restored(conn, r["id"], now, rules.state_after_restore(acknowledged))
            self._ended(emit, now, replace(s, zone=r["zone"], kind=r["kind"]), out, r["id"], acknowledged, logged)

    @staticmethod
    def _ended(emit: Emit, now: str, s: Signal, out: Outcome, alarm_id: int, acknowledged: bool,
               logged: list[tuple[Any, ...]]) -> None:
        """An alarm was marked restored: its panel log row, its events."""
        logged.append(db.signal_row(now, s, alarm_id))
        state = rules.state_after_restore(acknowledged)
        emit("alarm.restored", {"alarm": alarm_id, "receiver": s.receiver, "zone": s.zone, "kind": s.kind,
                                "code": s.code})
        if state == "closed":
            emit("alarm.closed", {"alarm": alarm_id})
            out.closed.append(alarm_id)

    # ------------------------------------------------------------------ acknowledgement
    async def acknowledge(self, alarm_id: int, by: str, role: str, note: str) -> dict[str, Any]:
        """An operator acknowledges (audited); closes the alarm if the panel already restored it."""
        ctx = self.ctx
        now = format_ts(ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Emit) -> bool:
            row = db.ack_target(conn, alarm_id)
            if row is None:
                raise AlarmNotFound(alarm_id)
            if row["acked_at"] is not None:
                raise AlarmAlreadyAcknowledged(alarm_id)
            closes = rules.closes_on_ack(row["state"], row["kind"], row["code"])
            db.mark_acknowledged(conn, alarm_id, now, by, note, closes)
            emit("alarm.acknowledged", {"alarm": alarm_id, "by": by, "note": note})
            if closes:
                emit("alarm.closed", {"alarm": alarm_id})
            ctx.audit.insert(conn, by, role, "alarm.ack", str(alarm_id), {"note": note})
            return closes

        if await ctx.events.transact(txn):
            await self.linkage.release(alarm_id)
        alarm = self.get(alarm_id)
        if alarm is None:   # cannot happen (alarms are never deleted); keeps the answer's type honest
            raise AlarmNotFound(alarm_id)
        return alarm

    async def close_acknowledged_once(self) -> list[int]:
        """At start: close acknowledged alarms no panel will ever restore (raised before their code was known
        as ``once``), so neither the console nor the handover carries them forever."""
        now = format_ts(self.ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Emit) -> list[int]:
            done = []
            for r in db.acknowledged_unrestored(conn):
                if rules.closes_on_ack("acknowledged", "", r["code"]):
                    db.close_acknowledged(conn, r["id"], now)
                    emit("alarm.closed", {"alarm": r["id"]})
                    done.append(r["id"])
            return done

        closed = await self.ctx.events.transact(txn)
        for alarm_id in closed:
            await self.linkage.release(alarm_id)
        if closed:
            log.info("closed %d acknowledged alarm(s) no panel will ever restore", len(closed))
        return closed

    # ------------------------------------------------------------------ queries
    def get(self, alarm_id: int) -> dict[str, Any] | None:
        return db.get_alarm(self.ctx.store, alarm_id)

    def list(self, state: str | None = "open", limit: int = 500) -> list[dict[str, Any]]:
        """Alarms for the console: ``open`` (not closed), ``unacknowledged``, a lifecycle state, or ``all``."""
        state = state or "open"
        where = db.list_filter(state, rules.STATES)
        if where is None:
            raise UnknownState(state)
        return db.list_alarms(self.ctx.store, *where, max(1, min(limit, 5000)))

    # ------------------------------------------------------------------ gauges for alerting
    def publish_gauges(self) -> None:
        """``alarms_unacknowledged{kind}`` and ``alarm_oldest_unacknowledged_age_seconds{kind}`` for every kind
        (0 when none), so an alert rule and a dashboard always find the series."""
        now = self.ctx.clock.now()
        found = {kind: (n, oldest) for kind, n, oldest in db.unacknowledged_by_kind(self.ctx.store)}
        for kind in KINDS:
            n, oldest = found.get(kind, (0, None))
            self.ctx.metrics.set("alarms_unacknowledged", n, {"kind": kind})
            self.ctx.metrics.set("alarm_oldest_unacknowledged_age_seconds", event_age_s(oldest, now), {"kind": kind})

    async def watch_gauges(self) -> None:
        while True:
            self.publish_gauges()
            await asyncio.sleep(GAUGES_EVERY_S)
