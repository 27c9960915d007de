"""The alarm area's tables, as the migrations that made them (applied in order by :mod:`gateway.schema`).

Apart from the queries (:mod:`gateway.alarms.store`) so each reads on its own: what is stored and how it
came to be, and what is asked of it. A migration is never edited once released; a change is a new one.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE alarms (
            id INTEGER PRIMARY KEY,
            receiver TEXT NOT NULL,
            account TEXT NOT NULL,
            zone INTEGER NOT NULL,
            code TEXT NOT NULL,
            kind TEXT NOT NULL,
            building TEXT NOT NULL DEFAULT '',
            name TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL,               -- raised | acknowledged | restored | closed
            raised_at TEXT NOT NULL,
            acked_at TEXT, acked_by TEXT, note TEXT,
            restored_at TEXT, closed_at TEXT,
            repeats INTEGER NOT NULL DEFAULT 0,
            escalations INTEGER NOT NULL DEFAULT 0,
            escalated_at TEXT,
            unlock_doors TEXT NOT NULL DEFAULT '[]',
            hold_released INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX alarms_state ON alarms(state, id);
        CREATE INDEX alarms_match ON alarms(receiver, account, zone, kind, state);
        CREATE INDEX alarms_hold ON alarms(hold_released) WHERE hold_released = 0;
        -- escalation looks only at alarms that are due (cheap however many are open)
        CREATE INDEX alarms_unacked ON alarms(kind, COALESCE(escalated_at, raised_at))
            WHERE acked_at IS NULL AND state != 'closed';
        -- DC-09 blocks already committed: a retry of one is ACKed again, not a second alarm
        CREATE TABLE alarm_dedupe (
            receiver TEXT NOT NULL, account TEXT NOT NULL, seq TEXT NOT NULL,
            digest TEXT NOT NULL, received_at TEXT NOT NULL,
            PRIMARY KEY (receiver, account, seq)
        ) WITHOUT ROWID;
        CREATE INDEX alarm_dedupe_age ON alarm_dedupe(received_at);
        -- the panel log: every signal received (alarms, restores, openings/closings, tests)
        CREATE TABLE alarm_signals (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            receiver TEXT NOT NULL, account TEXT NOT NULL, code TEXT NOT NULL, zone INTEGER NOT NULL,
            kind TEXT NOT NULL, restore INTEGER NOT NULL, alarm INTEGER, raw TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX alarm_signals_ts ON alarm_signals(ts);
        CREATE TABLE shift_handovers (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            shift TEXT NOT NULL,
            from_who TEXT NOT NULL, to_who TEXT NOT NULL,
            notes TEXT NOT NULL DEFAULT '',
            open_alarms TEXT NOT NULL DEFAULT '[]',
            recorded_by TEXT NOT NULL
        );
        """,
    ),
    (
        2,
        """
        -- a shift change whose handover was not recorded in time: raised once per change, cleared by the next
        -- handover (shift.handover_missed / shift.handover_missed_cleared)
        CREATE TABLE handover_missed (
            change_at TEXT PRIMARY KEY,
            shift TEXT NOT NULL,
            due_at TEXT NOT NULL,
            raised_at TEXT NOT NULL,
            cleared_at TEXT,
            handover INTEGER
        ) WITHOUT ROWID;
        """,
    ),
    (
        3,
        """
        -- matching a repeat or a restore looks only at the open alarms: the old index held every alarm ever
        -- raised (a repeat or restore read all of its zone's past alarms to find the one still open)
        DROP INDEX IF EXISTS alarms_match;
        CREATE INDEX alarms_active ON alarms(receiver, account, zone, kind, code)
            WHERE restored_at IS NULL AND state != 'closed';
        """,
    ),
    (
        4,
        """
        -- DC-09 blocks committed, appended in order (no index: the lookup is in memory, gateway/alarms/dedupe.py);
        -- the upsert into alarm_dedupe wrote a leaf per panel at every commit
        CREATE TABLE alarm_blocks (
            id INTEGER PRIMARY KEY,
            receiver TEXT NOT NULL, account TEXT NOT NULL, seq TEXT NOT NULL, digest TEXT NOT NULL,
            received_at TEXT NOT NULL
        );
        INSERT INTO alarm_blocks(receiver, account, seq, digest, received_at)
            SELECT receiver, account, seq, digest, received_at FROM alarm_dedupe ORDER BY received_at;
        DROP TABLE alarm_dedupe;
        """,
    ),
    (
        5,
        """
        -- issue 20: nothing reads the panel log by time, and its time index cost every signal a leaf of its
        -- own at each commit; the log is pruned from the front, in the order received (store.prune_front)
        DROP INDEX IF EXISTS alarm_signals_ts;
        """,
    ),
]
