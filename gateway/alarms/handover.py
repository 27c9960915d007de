"""Shift handover: what the outgoing duty shift hands over, gathered from every area, and its record.

``GET /handover`` reports what is still open (alarms from here, doors, meters and whatever else
each area contributes through ``ctx.handover_sources``), what was raised since the last handover,
and the trouble that is over by now but the incoming shift should hear about (a door forced and
closed again, a reader or meter that went offline and came back) from the event log.
``POST /handover`` records it (audited) and emits ``shift.handover``, which starts the next "since".
The report also summarises the failed swipes since then (``access.denied`` from the event log,
counted by door and reason: DOMAIN.md "failed swipes are looked into, not ignored") and lists
the open supervision faults and missed handovers.

:class:`MissedHandoverWatch` notices a shift change nobody handed over (rules in :mod:`.shifts`):
``shift.handover_missed`` once per change, ``shift.handover_missed_cleared`` when the handover
is recorded (in the same transaction as the handover itself).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from gateway.alarms import rules, shifts
from gateway.alarms import store as db
from gateway.alarms.lifecycle import Lifecycle
from gateway.alarms.models import HandoverIn
from gateway.context import GatewayContext, HandoverSource
from gateway.events import Emit, format_ts

log = logging.getLogger(__name__)

#: events the incoming shift hears about even when the trouble is over (a door forced and closed again, a reader
#: or meter that went offline and came back): ``events_since`` in the handover report, from the local event log
HANDOVER_EVENTS = ("door.forced", "door.held_open", "device.offline", "device.online", "meter.offline",
                   "meter.online", "meter.anomaly", "alarm.escalated")
#: at most this many (the newest) in one report; ``events_since_truncated`` says when more happened
HANDOVER_EVENTS_MAX = 200
#: with no handover ever recorded, the report's "since" parts cover this much: a full day is both shifts (DOMAIN.md:
#: day 08:30-18:30, night 18:30-08:30), and what they read from the event log stays a day's worth at any log size
FIRST_REPORT_WINDOW = timedelta(hours=24)


def alarm_items(lifecycle: Lifecycle) -> dict[str, Any]:
    """The alarm area's part of the report: open and unacknowledged alarms."""
    open_ = lifecycle.list("open")
    return {"open_alarms": open_, "unacknowledged_alarms": [a for a in open_ if not a["acked_at"]]}


def handover_event(seq: int, ts: str, type_: str, data_json: str) -> dict[str, Any]:
    """One line of ``events_since``: {seq, ts, type, door|meter|device|alarm, reason, ...} from a logged event."""
    try:
        data = json.loads(data_json)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    item: dict[str, Any] = {"seq": seq, "ts": ts, "type": type_}
    for key in ("door", "meter", "unit", "device", "alarm"):
        if data.get(key) not in (None, ""):
            item[key] = data[key]
    # device.*: kind reader|bus|receiver; alarm.escalated: the alarm's kind; meter.anomaly: reverse|leak|...
    if type_ == "meter.anomaly":
        item["anomaly"] = data.get("kind", "")
    elif data.get("kind"):
        item["kind"] = data["kind"]
    for key in ("seconds", "count", "unacknowledged_s", "reason_code", "reason_args"):
        if key in data:
            item[key] = data[key]
    item["reason"] = str(data.get("reason") or data.get("error") or "")
    return item


class Handover:
    def __init__(self, ctx: GatewayContext, lifecycle: Lifecycle, own: HandoverSource) -> None:
        self.ctx = ctx
        self.lifecycle = lifecycle
        self.own = own

    def current_shift(self) -> str:
        cfg = self.ctx.config.alarms
        return rules.shift_at(self.ctx.clock.local().strftime("%H:%M"), cfg.day_shift_starts, cfg.night_shift_starts)

    def last(self) -> dict[str, Any] | None:
        return db.last_handover(self.ctx.store)

    def sources(self) -> list[HandoverSource]:
        """The other areas that report (in the order they started)."""
        return [s for s in self.ctx.handover_sources if s is not self.own]

    def report(self) -> dict[str, Any]:
        """What the outgoing shift hands over: still-open alarms, door/meter/device trouble, news since last time."""
        ctx = self.ctx
        last = self.last()
        since = last["ts"] if last else None
        covers = since or self.first_window_start()
        report: dict[str, Any] = {"now": format_ts(ctx.clock.now()), "shift": self.current_shift(),
                                  "since": since, "covers_from": covers, "last_handover": last,
                                  **self.own.handover_items()}
        report["alarms_since"] = db.alarms_raised_since(ctx.store, covers)
        report["events_since"], report["events_since_truncated"] = self.events_since(covers)
        report["failed_swipes"] = self.failed_swipes(covers)
        report["failed_swipes_total"] = sum(f["count"] for f in report["failed_swipes"])
        report["handover_missed"] = self.missed()
        for src in self.sources():
            try:
                items = src.handover_items() or {}
            except Exception:
                log.exception("handover: %s failed", src.name)
                items = {"error": f"{src.name} could not report"}
            for key, value in items.items():
                report.setdefault(key if key not in report else f"{src.name}_{key}", value)
        report.setdefault("doors", [])
        report.setdefault("meters", [])
        report["devices_offline"] = ctx.devices.offline()
        return report

    def first_window_start(self) -> str:
        """Where the report starts when no handover was ever recorded: :data:`FIRST_REPORT_WINDOW` ago."""
        return format_ts(self.ctx.clock.now() - FIRST_REPORT_WINDOW)

    def _after(self, since: str | None) -> tuple[int, str]:
        """(seq, ts) bounding "since the last handover" in the event log: the last ``shift.handover`` event's seq
        (exact, whatever the clock did); if that event was already pruned from the log (or none was recorded:
        ``since`` is then the first report's window), the time, with the first seq logged after it so the
        queries read the ``(type, seq)`` index from there instead of every event of the type."""
        if since is None:
            since = self.first_window_start()
        seq = db.last_handover_seq(self.ctx.store)
        if seq is not None:
            return seq, ""
        return db.first_seq_after(self.ctx.store, since) - 1, since

    def events_since(self, since: str | None, limit: int = HANDOVER_EVENTS_MAX) -> tuple[list[dict[str, Any]], bool]:
        """Door, device, meter and escalation events since the last handover (oldest first), and whether more
        than ``limit`` happened (then only the newest ``limit`` are given)."""
        after, ts_after = self._after(since)
        rows = db.events_after(self.ctx.store, HANDOVER_EVENTS, after, ts_after, limit + 1)
        items = [handover_event(r[0], r[1], r[2], r[3]) for r in rows[:limit]]
        items.reverse()
        return items, len(rows) > limit

    def failed_swipes(self, since: str | None) -> list[dict[str, Any]]:
        """Failed swipes (``access.denied``) since the last handover, counted by door and reason, most first.
        Card ids and holders are left out: the summary says where to look, the event log says who."""
        after, ts_after = self._after(since)
        return [{"door": r["door"] or "", "reason": r["reason"] or "", "count": int(r["n"])}
                for r in db.failed_swipes(self.ctx.store, after, ts_after)]

    def missed(self) -> list[dict[str, Any]]:
        """Missed handovers not yet cleared, oldest first, each with a line for the console."""
        return [{**m, "text": f"no handover recorded for the {m['shift']} shift change"}
                for m in db.open_missed(self.ctx.store)]

    async def record(self, body: HandoverIn, actor: str, role: str) -> dict[str, Any]:
        """Record a handover (audited) and emit ``shift.handover`` in the same transaction."""
        ctx = self.ctx
        now = format_ts(ctx.clock.now())
        shift = self.current_shift()
        open_ids = [a["id"] for a in self.lifecycle.list("open")]
        unacked = [a["id"] for a in self.lifecycle.list("unacknowledged")]

        def txn(conn: sqlite3.Connection, emit: Emit) -> int:
            hid = db.insert_handover(conn, now, shift, body.from_, body.to, body.notes, open_ids, actor)
            emit("shift.handover", {"from": body.from_, "to": body.to, "shift": shift, "open_alarms": open_ids,
                                    "unacknowledged_alarms": unacked, "notes": body.notes})
            for row in db.clear_missed(conn, now, hid):
                emit("shift.handover_missed_cleared", {"shift": row["shift"], "change_at": row["change_at"],
                                                       "handover": hid})
            ctx.audit.insert(conn, actor, role, "shift.handover", f"{body.from_}->{body.to}",
                             {"open_alarms": open_ids, "notes": body.notes})
            return hid

        hid = await ctx.events.transact(txn)
        return {"id": hid, "ts": now, "shift": shift, "from": body.from_, "to": body.to, "notes": body.notes,
                "open_alarms": open_ids, "unacknowledged_alarms": unacked}


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class MissedHandoverWatch:
    """``shift.handover_missed`` once per shift change whose handover was not recorded in time.

    Each tick costs a clock reading until a deadline passes; the store is read only then. Once per
    change is kept in the store (``handover_missed``), so a restart does not raise it again.
    """

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.started = ctx.clock.now()
        #: the change already settled (raised, or its handover recorded): nothing to look up until the next one
        self._settled: str | None = None

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.config.alarms.tick_s)
            await self.check()

    async def check(self) -> bool:
        """Raise the missed handover of the latest shift change if it is due; True if raised now."""
        ctx, cfg = self.ctx, self.ctx.config.alarms
        grace = timedelta(seconds=cfg.handover_grace_s)
        if grace <= timedelta(0):
            return False
        change = shifts.last_change(ctx.clock.local(), cfg.day_shift_starts, cfg.night_shift_starts)
        key = format_ts(change.at)
        now = ctx.clock.now()
        due = shifts.due_at(change, grace, self.started)
        if key == self._settled or now < due:
            return False
        last = db.last_handover(ctx.store)
        if not shifts.missed(now, change, grace, self.started, _parse_ts(last["ts"]) if last else None):
            self._settled = key
            return False
        if db.missed_known(ctx.store, key):
            self._settled = key
            return False
        since = format_ts(shifts.window_start(change, grace))

        def txn(conn: sqlite3.Connection, emit: Emit) -> bool:
            # re-checked in the transaction: a handover recorded meanwhile wins
            if db.handover_recorded_since(conn, since) or not db.insert_missed(conn, key, change.shift,
                                                                                format_ts(due), format_ts(now)):
                return False
            emit("shift.handover_missed", {"shift": change.shift, "change_at": key, "due_at": format_ts(due),
                                           "last_handover": last["ts"] if last else None})
            return True

        raised = await ctx.events.transact(txn)
        self._settled = key
        if raised:
            log.warning("shift change at %s (%s shift): no handover recorded", key, change.shift)
        return bool(raised)
