"""The duty page's and the pulls' SQL at a year's size, for bench_year: each query's plan and time on the built database.

The HTTP figures say how long a page takes; they do not say why, nor whether a query will grow with the next
month of data. Here every read the duty page, the handover, the console's meter history and latest events, the
start (a meter's newest reading) and the cursor pulls make is issued through the code that makes it (the area's
store functions, called with a recording stand-in for the Store), then run again on a read-only connection with
``EXPLAIN QUERY PLAN`` and timed (best of 3). ``full_scan`` marks a plan that reads the whole ``events`` or
``readings`` table or index (a ``SCAN`` of it without a ``LIMIT`` to stop it): there should be none.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.alarms import handover as handover_mod
from gateway.alarms import store as alarms_db
from gateway.console.history import meter_history
from gateway.console.recent import recent_events
from gateway.events import format_ts
from gateway.events import page as event_page
from gateway.metering import register

BIG = ("events", "readings")


class Recorder:
    """Stands in for :class:`gateway.store.Store` (``query``/``query_one``): runs each statement on a read-only
    connection and remembers it under the name of the read being made."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.name = ""
        self.seen: list[tuple[str, str, tuple[Any, ...]]] = []

    def query(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        self.seen.append((self.name, sql, tuple(args)))
        return self.conn.execute(sql, tuple(args)).fetchall()

    def query_one(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, args)
        return rows[0] if rows else None


def reads(st: Any, days: int) -> None:
    """Every read, named, with the arguments the daemon would pass on a site of ``days`` days."""
    now = datetime.now(UTC)
    day_ago, start = format_ts(now - timedelta(hours=24)), format_ts(now - timedelta(days=days + 3))

    def named(name: str, fn: Any, *args: Any, **kw: Any) -> Any:
        st.name = name
        return fn(*args, **kw)

    named("alarms_open", alarms_db.list_alarms, st, alarms_db.LIST_FILTERS["open"], (), 500)
    named("alarms_unacknowledged", alarms_db.list_alarms, st, alarms_db.LIST_FILTERS["unacknowledged"], (), 500)
    named("handover_supervision_faults", alarms_db.active_silences, st)
    named("handover_last", alarms_db.last_handover, st)
    named("handover_last_seq", alarms_db.last_handover_seq, st)
    named("handover_missed_open", alarms_db.open_missed, st)
    first = named("handover_first_window_seq", alarms_db.first_seq_after, st, day_ago) - 1
    named("handover_failed_swipes_24h", alarms_db.failed_swipes, st, first, day_ago)
    named("handover_events_since_24h", alarms_db.events_after, st, handover_mod.HANDOVER_EVENTS, first, day_ago,
          handover_mod.HANDOVER_EVENTS_MAX + 1)
    named("handover_alarms_since_24h", alarms_db.alarms_raised_since, st, day_ago)
    named("console_latest_events", recent_events, st, "operator", 40)
    named("console_meter_history_500", meter_history, st, "m7", 500)
    named("start_meters_newest_reading", register.last_readings, st)
    named("readings_pull", register.readings_after, st, 0, 5000)
    named("readings_pull_one_meter", register.readings_after, st, 0, 5000, meters=["m7"], start=start,
          end=format_ts(now))
    named("events_pull", event_page, st, 0, 1000)
    named("events_pull_by_type", event_page, st, 0, 1000, ["door.forced"])
    named("billing_quarter", register.billing_readings, st, f"{now.year - 1}Q4")


def full_scan(plan: list[str], sql: str) -> bool:
    """A plan line that walks a whole big table or index, with nothing (no LIMIT) to stop it early."""
    scans = [p for p in plan if any(p.startswith(f"SCAN {t}") or p.startswith(f"SCAN {t[0]} ") for t in BIG)]
    return bool(scans) and " LIMIT " not in sql.upper()


def query_plans(db: Path, days: int) -> dict[str, Any]:
    """{read: {plan, ms (best of 3), full_scan}} for every statement the reads above issue; ``full_scans``
    lists the reads with one."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        rec = Recorder(conn)
        reads(rec, days)
        out: dict[str, Any] = {}
        for name, sql, args in rec.seen:
            plan = [str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args)]
            best = min(_timed(conn, sql, args) for _ in range(3))
            n = sum(1 for k in out if k == name or k.startswith(f"{name}."))
            key = f"{name}.{n + 1}" if n else name  # a read's second statement: readings_pull.2
            out[key] = {"plan": plan, "ms": round(best * 1000, 2), "full_scan": full_scan(plan, sql)}
        out["full_scans"] = [k for k, v in out.items() if v["full_scan"]]
        return out
    finally:
        conn.close()


def _timed(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> float:
    t0 = time.perf_counter()
    conn.execute(sql, args).fetchall()
    return time.perf_counter() - t0
