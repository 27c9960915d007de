"""Matching a repeat or a restore reads only the open alarms (issue 20): the alarm area's SQL on a real SQLite
file with a zone's long past of restored alarms -- the right alarm is found, and every match seeks the partial
index ``alarms_active`` (a query plan, not a timing)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.alarms import store as db
from gateway.alarms.schema import MIGRATIONS
from gateway.alarms.signals import SILENT_CODE, Signal

ALARM = Signal("duty-panel", "3001", "130", 12, "burglary")
RESTORE = Signal("duty-panel", "3001", "130", 12, "burglary", restore=True)
STATES = ("restored", "closed")


def open_db(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "alarms.db", isolation_level=None)
    for _version, sql in MIGRATIONS:
        conn.executescript(sql)
    return conn


def test_a_zones_past_is_not_matched_and_each_match_seeks_the_open_alarms(tmp_path: Path) -> None:
    conn = open_db(tmp_path)
    for i in range(40):   # a long past: raised and restored, never acknowledged (they stay 'restored')
        alarm = db.insert_alarm(conn, ALARM, f"t{i:03d}", "", "", [])
        assert alarm is not None
        assert db.restore_alarms(conn, RESTORE, f"t{i:03d}r", silence=False, states=STATES) == [(alarm, False)]
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    new = db.insert_alarm(conn, ALARM, "now", "", "", [])
    assert new is not None and db.insert_alarm(conn, ALARM, "now", "", "", []) is None   # a repeat: nothing written
    assert db.count_repeat(conn, ALARM) == new
    conn.execute("UPDATE alarms SET acked_at='ack' WHERE id=?", (new,))
    assert db.restore_alarms(conn, RESTORE, "later", silence=False, states=STATES) == [(new, True)]
    assert db.restore_alarms(conn, RESTORE, "later", silence=False, states=STATES) == []   # nothing open any more
    conn.set_trace_callback(None)
    row = conn.execute("SELECT state, closed_at, restored_at, repeats FROM alarms WHERE id=?", (new,)).fetchone()
    assert row == ("closed", "later", "later", 1)
    assert conn.execute("SELECT COUNT(*) FROM alarms WHERE state='restored'").fetchone()[0] == 40
    matches = [sql for sql in statements if "FROM alarms WHERE" in sql or "UPDATE alarms SET restored_at" in sql]
    assert len(matches) == 5
    for sql in matches:
        plan = " ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "USING INDEX alarms_active" in plan, (sql, plan)


def test_a_restore_ends_every_open_alarm_of_the_zone_oldest_first_but_not_the_silence(tmp_path: Path) -> None:
    conn = open_db(tmp_path)
    other = Signal("duty-panel", "3001", "131", 12, "burglary")
    silence = Signal("duty-panel", "3001", SILENT_CODE, 12, "burglary")
    ids = [db.insert_alarm(conn, s, "t", "", "", []) for s in (ALARM, other, silence)]
    assert None not in ids
    ended = db.restore_alarms(conn, RESTORE, "r", silence=False, states=STATES)
    assert ended == [(ids[0], False), (ids[1], False)]
    assert db.restore_alarms(conn, RESTORE, "r2", silence=True, states=STATES) == [(ids[2], False)]
    states = [r[0] for r in conn.execute("SELECT state FROM alarms ORDER BY id")]
    assert states == ["restored", "restored", "restored"]
