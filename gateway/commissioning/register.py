"""The commissioning register: every SQL statement of the area, and its migrations.

Tables: ``commissioning_runs`` (one walk: its scope, who started and finished it, the summary and the
printed report, frozen at finish) and ``commissioning_steps`` (one row per device and step: status,
when, by whom, the reason of a mark, and what the gateway saw, as JSON). Writes take the connection of
a transaction the caller opened (``ctx.store.write`` / ``ctx.events.transact``), so a finish, its
``site.commissioned`` event and its audit row commit together; reads go through the store's reader.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from gateway.commissioning.models import Step
from gateway.store import Store

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
    CREATE TABLE commissioning_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        scope TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at TEXT NOT NULL,
        started_by TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        finished_at TEXT,
        finished_by TEXT,
        finish_note TEXT NOT NULL DEFAULT '',
        summary TEXT,
        report_zh TEXT,
        report_en TEXT
    );
    CREATE TABLE commissioning_steps (
        run INTEGER NOT NULL REFERENCES commissioning_runs(id),
        pos INTEGER NOT NULL,
        device TEXT NOT NULL,
        kind TEXT NOT NULL,
        building TEXT NOT NULL,
        name TEXT NOT NULL,
        step TEXT NOT NULL,
        status TEXT NOT NULL,
        at TEXT,
        by TEXT,
        reason TEXT NOT NULL DEFAULT '',
        seen TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (run, device, step)
    );
    CREATE INDEX commissioning_runs_state ON commissioning_runs(state, id);
    """),
]

_RUN_COLS = "id, scope, state, started_at, started_by, note, finished_at, finished_by, finish_note, summary"
_STEP_COLS = "device, kind, building, name, step, status, at, by, reason, seen"


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def insert_run(conn: sqlite3.Connection, scope: dict[str, Any], at: str, by: str, note: str,
               steps: list[Step]) -> int:
    cur = conn.execute("INSERT INTO commissioning_runs(scope, state, started_at, started_by, note) "
                       "VALUES(?, 'open', ?, ?, ?)", (_dump(scope), at, by, note))
    run = cur.lastrowid
    assert run is not None
    conn.executemany(
        f"INSERT INTO commissioning_steps(run, pos, {_STEP_COLS}) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
        [(run, i, s.device, s.kind, s.building, s.name, s.step, s.status, s.at, s.by, s.reason, _dump(s.seen))
         for i, s in enumerate(steps)])
    return run


def save_steps(conn: sqlite3.Connection, run: int, steps: list[Step]) -> None:
    """Store steps of an open run (a finished run's steps are frozen with its report: late writes change nothing)."""
    conn.executemany("UPDATE commissioning_steps SET status=?, at=?, by=?, reason=?, seen=? "
                     "WHERE run=? AND device=? AND step=? "
                     "AND (SELECT state FROM commissioning_runs WHERE id=run) = 'open'",
                     [(s.status, s.at, s.by, s.reason, _dump(s.seen), run, s.device, s.step) for s in steps])


def finish_run(conn: sqlite3.Connection, run: int, at: str, by: str, note: str, summary: dict[str, Any],
               reports: dict[str, str]) -> bool:
    """Close an open run with its summary and printed reports; False if it was not open any more."""
    cur = conn.execute("UPDATE commissioning_runs SET state='finished', finished_at=?, finished_by=?, finish_note=?, "
                       "summary=?, report_zh=?, report_en=? WHERE id=? AND state='open'",
                       (at, by, note, _dump(summary), reports.get("zh"), reports.get("en"), run))
    return cur.rowcount == 1


def _run_dict(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    (id_, scope, state, started_at, started_by, note, finished_at, finished_by, finish_note, summary) = tuple(row)
    return {"id": id_, "scope": json.loads(scope), "state": state, "started_at": started_at,
            "started_by": started_by, "note": note, "finished_at": finished_at, "finished_by": finished_by,
            "finish_note": finish_note, "summary": json.loads(summary) if summary else None}


def get_run(store: Store, run: int) -> dict[str, Any] | None:
    row = store.query_one(f"SELECT {_RUN_COLS} FROM commissioning_runs WHERE id=?", (run,))
    return _run_dict(row) if row else None


def list_runs(store: Store, limit: int) -> list[dict[str, Any]]:
    rows = store.query(f"SELECT {_RUN_COLS} FROM commissioning_runs ORDER BY id DESC LIMIT ?", (limit,))
    return [_run_dict(r) for r in rows]


def open_runs(store: Store) -> list[int]:
    return [int(r[0]) for r in store.query("SELECT id FROM commissioning_runs WHERE state='open' ORDER BY id")]


def steps_of(store: Store, run: int) -> list[Step]:
    rows = store.query(f"SELECT {_STEP_COLS} FROM commissioning_steps WHERE run=? ORDER BY pos", (run,))
    return [Step(device=r[0], kind=r[1], building=r[2], name=r[3], step=r[4], status=r[5], at=r[6], by=r[7],
                 reason=r[8], seen=json.loads(r[9])) for r in rows]


def report(store: Store, run: int, lang: str) -> str | None:
    """The report printed at finish, in ``lang`` (None while the run is open)."""
    column = "report_zh" if lang == "zh" else "report_en"
    row = store.query_one(f"SELECT {column} FROM commissioning_runs WHERE id=?", (run,))
    return row[0] if row else None
