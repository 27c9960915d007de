"""The metering register: every SQL statement of the area, and its migrations.

Tables: ``readings`` (every reading, AUTOINCREMENT id = the pull cursor, pruned after
``keep_days``), ``billing_readings`` (one per meter and quarter, kept), ``billing_reports``
(a period whose missing meters were reported, so it is reported once) and
``meter_valves`` (last confirmed valve state) and ``meter_conditions`` (active faults and
valve mismatches, so a restart neither repeats nor forgets them). Writes take the connection of a
transaction the caller opened with ``ctx.events.transact`` / ``ctx.store.write``, so a
row and its event are committed together; reads go through the store's reader.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from gateway.store import Store, json_column

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
    (2, """
    CREATE TABLE meter_conditions (
        meter TEXT NOT NULL,
        kind TEXT NOT NULL,
        since TEXT NOT NULL,
        details TEXT NOT NULL,
        PRIMARY KEY (meter, kind)
    );
    CREATE INDEX readings_unit ON readings(unit, id);
    """),
]


def encode_values(values: dict[str, Any]) -> str:
    """A reading's values as stored in ``vals`` (compact JSON)."""
    return json.dumps(values, separators=(",", ":"))


# ---------------------------------------------------------------------- readings
def insert_reading(conn: sqlite3.Connection, meter: str, unit: str, read_at: str, vals: str) -> None:
    conn.execute("INSERT INTO readings(meter, unit, read_at, vals) VALUES(?,?,?,?)", (meter, unit, read_at, vals))


def last_readings(store: Store) -> list[tuple[str, str, dict[str, Any]]]:
    """(meter, read_at, values) of each meter's newest reading. Read at start: it walks the ``(meter, id)`` index
    from one meter to the next (a seek per meter, not a scan of every reading -- a GROUP BY read all 8.6 M index
    entries of a year's site), so the start does not grow with the readings kept."""
    rows = store.query(
        "WITH RECURSIVE m(meter) AS (SELECT MIN(meter) FROM readings UNION ALL "
        "SELECT (SELECT MIN(meter) FROM readings WHERE meter > m.meter) FROM m WHERE m.meter IS NOT NULL) "
        "SELECT r.meter, r.read_at, r.vals FROM m JOIN readings r "
        "ON r.id = (SELECT MAX(id) FROM readings WHERE meter = m.meter)")
    return [(meter, read_at, json.loads(vals)) for meter, read_at, vals in rows]


def readings_after(store: Store, after: int, limit: int, *, meters: list[str] | None = None,
                   units: list[str] | None = None, start: str | None = None,
                   end: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """Readings with id > ``after`` in id order (filtered), and the cursor to go on from.

    The cursor is the last id returned when the page is full; otherwise the highest id that
    existed when the page was read (every row up to it was committed and looked at), so a
    filtered pull does not scan the same non-matching rows again.
    """
    row = store.query_one("SELECT COALESCE(MAX(id), 0) FROM readings")
    top = int(row[0]) if row is not None else 0
    sql = "SELECT id, meter, unit, vals, read_at FROM readings WHERE id > ? AND id <= ?"
    args: list[Any] = [after, top]
    for column, wanted in (("meter", meters), ("unit", units)):
        if wanted:
            sql += f" AND {column} IN ({','.join('?' * len(wanted))})"
            args += wanted
    if start:
        sql, args = sql + " AND read_at >= ?", args + [start]
    if end:
        sql, args = sql + " AND read_at < ?", args + [end]
    rows = store.query(sql + " ORDER BY id LIMIT ?", (*args, limit))
    items = [{"meter": r[1], "unit": r[2], "values": v, "read_at": r[4]} for r, v in
             zip(rows, json_column(rows, 3), strict=True)]
    if len(rows) == limit:
        return items, rows[-1][0]
    return items, max(after, top)


def last_reading_before(store: Store, cutoff: str) -> int:
    """The highest id of a reading taken before ``cutoff`` (0: none): the bound of a prune. A full scan
    (no index on read_at: it would cost every reading ~30 bytes), so run it off the event loop; it reads
    through a reader connection, never holding the writer."""
    row = store.query_one("SELECT MAX(id) FROM readings WHERE read_at < ?", (cutoff,))
    return int(row[0]) if row and row[0] is not None else 0


def prune_readings(conn: sqlite3.Connection, cutoff: str, after: int, hi: int, limit: int) -> tuple[int, int]:
    """Delete at most ``limit`` readings taken before ``cutoff`` with ``after < id <= hi``; (rows, last id).
    Billing readings are another table and stay."""
    ids = [r[0] for r in conn.execute("SELECT id FROM readings WHERE id > ? AND id <= ? AND read_at < ? "
                                      "ORDER BY id LIMIT ?", (after, hi, cutoff, limit))]
    if ids:
        conn.execute(f"DELETE FROM readings WHERE id IN ({','.join('?' * len(ids))})", ids)
    return len(ids), ids[-1] if ids else after


# ---------------------------------------------------------------------- billing
def insert_billing_reading(conn: sqlite3.Connection, meter: str, period: str, unit: str, read_at: str,
                           vals: str) -> bool:
    """Store the period's billing reading unless the meter has one already; True when this one was stored."""
    cur = conn.execute("INSERT OR IGNORE INTO billing_readings(meter, period, unit, read_at, vals) "
                       "VALUES(?,?,?,?,?)", (meter, period, unit, read_at, vals))
    return bool(cur.rowcount)


def billed(store: Store) -> set[tuple[str, str]]:
    """(meter, period) of every billing reading taken."""
    return {(meter, period) for meter, period in store.query("SELECT meter, period FROM billing_readings")}


def billed_meters(store: Store, period: str) -> set[str]:
    return {r[0] for r in store.query("SELECT meter FROM billing_readings WHERE period=?", (period,))}


def billing_readings(store: Store, period: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """meter -> (unit, read_at, values) of the period's billing readings."""
    rows = store.query("SELECT meter, unit, read_at, vals FROM billing_readings WHERE period=?", (period,))
    return {meter: (unit, read_at, json.loads(vals)) for meter, unit, read_at, vals in rows}


def billing_reported(store: Store, period: str) -> bool:
    return bool(store.query("SELECT 1 FROM billing_reports WHERE period=?", (period,)))


def insert_billing_report(conn: sqlite3.Connection, period: str, at: str, missing: Iterable[str]) -> None:
    conn.execute("INSERT OR IGNORE INTO billing_reports(period, reported_at, missing) VALUES(?,?,?)",
                 (period, at, json.dumps(list(missing))))


# ---------------------------------------------------------------------- valves
def save_valve(conn: sqlite3.Connection, meter: str, state: str, at: str, by: str) -> None:
    conn.execute("INSERT INTO meter_valves(meter, state, at, by) VALUES(?,?,?,?) ON CONFLICT(meter) "
                 "DO UPDATE SET state=excluded.state, at=excluded.at, by=excluded.by", (meter, state, at, by))


def valve_states(store: Store) -> dict[str, str]:
    return {meter: state for meter, state in store.query("SELECT meter, state FROM meter_valves")}


# ---------------------------------------------------------------------- conditions (faults, valve mismatch)
def set_condition(conn: sqlite3.Connection, meter: str, kind: str, since: str, details: dict[str, Any]) -> None:
    conn.execute("INSERT INTO meter_conditions(meter, kind, since, details) VALUES(?,?,?,?) ON CONFLICT(meter, kind) "
                 "DO UPDATE SET since=excluded.since, details=excluded.details",
                 (meter, kind, since, encode_values(details)))


def clear_condition(conn: sqlite3.Connection, meter: str, kind: str) -> None:
    conn.execute("DELETE FROM meter_conditions WHERE meter=? AND kind=?", (meter, kind))


def conditions(store: Store) -> list[tuple[str, str, str]]:
    """(meter, kind, since) of every active condition."""
    return [(m, k, s) for m, k, s in store.query("SELECT meter, kind, since FROM meter_conditions ORDER BY meter")]
