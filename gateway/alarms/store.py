"""All of the alarm area's SQL but its tables (``schema.py``): the alarm register, the panel log, the DC-09
blocks committed, the shift handovers and missed handovers -- one column list, one place to read what is stored.

Functions taking a ``conn`` run inside the caller's transaction (``ctx.events.transact``), so a
state change and its events commit together; functions taking the ``Store`` read, or write a
single statement through the store's writer thread.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

from gateway.alarms.signals import SILENT_CODE, Signal
from gateway.store import Store

#: an alarm row, in table order (the order of the keys in the JSON)
ALARM_COLUMNS = ("id", "receiver", "account", "zone", "code", "kind", "building", "name", "text", "state",
                 "raised_at", "acked_at", "acked_by", "note", "restored_at", "closed_at", "repeats", "escalations",
                 "escalated_at", "unlock_doors", "hold_released")
_ALARM = ", ".join(ALARM_COLUMNS)
#: what an open (not yet restored) alarm is, for matching a repeat or a restore
_ACTIVE = "restored_at IS NULL AND state != 'closed'"
#: the console's alarm filters (a lifecycle state is ``state = ?``)
LIST_FILTERS = {"open": "state != 'closed'", "unacknowledged": "acked_at IS NULL AND state != 'closed'",
                "all": "1=1"}


def list_filter(state: str, states: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
    """(condition, params) for a console filter or one of ``states``; None when it is neither."""
    if state in LIST_FILTERS:
        return LIST_FILTERS[state], ()
    if state in states:
        return "state = ?", (state,)
    return None


def alarm_dict(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["unlock_doors"] = json.loads(d.get("unlock_doors") or "[]")
    d["doors_held"] = bool(d["unlock_doors"]) and not d.pop("hold_released")
    return d


# ---------------------------------------------------------------------- inside the receive transaction
def log_block(conn: sqlite3.Connection, receiver: str, account: str, seq: str, digest: str, now: str) -> None:
    """A committed DC-09 block, appended (the retry check is :class:`gateway.alarms.dedupe.RecentBlocks`)."""
    conn.execute("INSERT INTO alarm_blocks(receiver, account, seq, digest, received_at) VALUES(?,?,?,?,?)",
                 (receiver, account, seq, digest, now))


def recent_blocks(conn: sqlite3.Connection, cutoff: str, limit: int) -> list[tuple[str, str, str, str]]:
    """(receiver, account, seq, digest) of the newest ``limit`` blocks received since ``cutoff``, oldest first."""
    return [(r[0], r[1], r[2], r[3]) for r in conn.execute(
        "SELECT receiver, account, seq, digest FROM alarm_blocks "
        "WHERE id > (SELECT COALESCE(MAX(id), 0) FROM alarm_blocks) - ? AND received_at >= ? ORDER BY id",
        (limit, cutoff))]


def signal_row(now: str, s: Signal, alarm: int | None) -> tuple[Any, ...]:
    """A panel log row, for :func:`log_signals` (the rows of a batch go in at once, in order)."""
    return (now, s.receiver, s.account, s.code, s.zone, s.kind, int(s.restore), alarm, s.raw)


def log_signals(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """The panel log rows of a transaction, in order: one statement run for each row."""
    conn.executemany("INSERT INTO alarm_signals(ts, receiver, account, code, zone, kind, restore, alarm, raw) "
                     "VALUES(?,?,?,?,?,?,?,?,?)", rows)


#: the still-active alarm a signal repeats (same panel, zone, kind and code), newest first
_MATCH = f"receiver=? AND account=? AND zone=? AND kind=? AND code=? AND {_ACTIVE}"


def count_repeat(conn: sqlite3.Connection, s: Signal) -> int | None:
    """The still-active alarm this signal repeats, its repeats counted; None when there is none."""
    row = conn.execute(f"UPDATE alarms SET repeats = repeats + 1 WHERE id = "
                       f"(SELECT id FROM alarms WHERE {_MATCH} ORDER BY id DESC LIMIT 1) RETURNING id",
                       (s.receiver, s.account, s.zone, s.kind, s.code)).fetchone()
    return None if row is None else int(row[0])


def insert_alarm(conn: sqlite3.Connection, s: Signal, now: str, building: str, name: str,
                 doors: list[str]) -> int | None:
    """A new alarm -- unless the same condition is still active (a repeat: None, nothing written).

    The check and the insert are one statement (it runs for every alarm a panel sends)."""
    key = (s.receiver, s.account, s.zone, s.kind, s.code)
    cur = conn.execute(
        "INSERT INTO alarms(receiver, account, zone, code, kind, building, name, text, state, raised_at, "
        "unlock_doors, hold_released) SELECT ?,?,?,?,?,?,?,?,'raised',?,?,? "
        f"WHERE NOT EXISTS (SELECT 1 FROM alarms WHERE {_MATCH})",
        (s.receiver, s.account, s.zone, s.code, s.kind, building, name, s.text, now, json.dumps(doors),
         0 if doors else 1, *key))
    return int(cur.lastrowid or 0) if cur.rowcount == 1 else None


def restore_alarms(conn: sqlite3.Connection, s: Signal, now: str, *, silence: bool, states: tuple[str, str]
                   ) -> list[tuple[int, bool]]:
    """End the open alarms this restore ends, in one statement; (id, was acknowledged), oldest first.

    ``states`` is the state after the restore of an unacknowledged and of an acknowledged alarm; a
    ``closed`` one gets ``closed_at``. Only the silence alarm for the gateway's own restore, never the
    silence alarm for a panel's."""
    not_acked, acked = states
    code = "code=?" if silence else "code != ?"
    rows = conn.execute(
        "UPDATE alarms SET restored_at=?1, "
        "state = CASE WHEN acked_at IS NULL THEN ?2 ELSE ?3 END, "
        "closed_at = CASE WHEN (CASE WHEN acked_at IS NULL THEN ?2 ELSE ?3 END) = 'closed' THEN ?1 END "
        f"WHERE receiver=?4 AND account=?5 AND zone=?6 AND kind=?7 AND {_ACTIVE} AND {code.replace('?', '?8')} "
        "RETURNING id, acked_at IS NOT NULL",
        (now, not_acked, acked, s.receiver, s.account, s.zone, s.kind, SILENT_CODE)).fetchall()
    return sorted((int(r[0]), bool(r[1])) for r in rows)


def alarms_a_reset_ends(conn: sqlite3.Connection, s: Signal, zone_below: int) -> list[sqlite3.Row]:
    """Open GB/T 26875.3 component alarms of the resetting transmitter (zones below ``zone_below``), oldest first."""
    return conn.execute(f"SELECT id, acked_at, kind, zone, code FROM alarms WHERE receiver=? AND account=? "
                        f"AND zone < ? AND code LIKE 'GB-%' AND {_ACTIVE} ORDER BY id",
                        (s.receiver, s.account, zone_below)).fetchall()


def mark_restored(conn: sqlite3.Connection, alarm_id: int, now: str, state: str) -> None:
    conn.execute("UPDATE alarms SET restored_at=?, state=?, closed_at=? WHERE id=?",
                 (now, state, now if state == "closed" else None, alarm_id))


# ---------------------------------------------------------------------- acknowledgement
def ack_target(conn: sqlite3.Connection, alarm_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute("SELECT state, acked_at, kind, code FROM alarms WHERE id=?",
                                           (alarm_id,)).fetchone()
    return row


def acknowledged_unrestored(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Alarms acknowledged and still waiting for a restore, as (id, code)."""
    return conn.execute("SELECT id, code FROM alarms WHERE state = 'acknowledged' AND restored_at IS NULL "
                        "ORDER BY id").fetchall()


def close_acknowledged(conn: sqlite3.Connection, alarm_id: int, now: str) -> None:
    conn.execute("UPDATE alarms SET state='closed', closed_at=? WHERE id=? AND state='acknowledged'", (now, alarm_id))


def mark_acknowledged(conn: sqlite3.Connection, alarm_id: int, now: str, by: str, note: str, closes: bool) -> None:
    conn.execute("UPDATE alarms SET acked_at=?, acked_by=?, note=?, state=?, closed_at=? WHERE id=?",
                 (now, by, note, "closed" if closes else "acknowledged", now if closes else None, alarm_id))


# ---------------------------------------------------------------------- escalation, supervision, upkeep
def due_for_escalation(store: Store, kind: str, cutoff: str) -> list[sqlite3.Row]:
    """Unacknowledged open alarms of a kind last escalated (or raised) before ``cutoff``."""
    return store.query("SELECT id, raised_at, escalations FROM alarms WHERE acked_at IS NULL "
                       "AND state != 'closed' AND kind = ? AND COALESCE(escalated_at, raised_at) <= ? "
                       "LIMIT 1000", (kind, cutoff))


def mark_escalated(conn: sqlite3.Connection, alarm_id: int, count: int, stamp: str, cutoff: str) -> bool:
    """Re-checked inside the transaction: False if acknowledged meanwhile, or escalated by a concurrent check."""
    cur = conn.execute("UPDATE alarms SET escalations=?, escalated_at=? WHERE id=? AND acked_at IS NULL "
                       "AND state != 'closed' AND COALESCE(escalated_at, raised_at) <= ?",
                       (count, stamp, alarm_id, cutoff))
    return cur.rowcount == 1


def unacknowledged_by_kind(store: Store) -> list[tuple[str, int, str]]:
    """(kind, how many, oldest raised_at) of the open alarms nobody acknowledged yet (the partial index)."""
    return [(r[0], r[1], r[2]) for r in store.query(
        "SELECT kind, COUNT(*), MIN(raised_at) FROM alarms WHERE acked_at IS NULL AND state != 'closed' "
        "GROUP BY kind")]


def silent_panels(store: Store) -> set[tuple[str, str]]:
    """(receiver, account) whose silence alarm is still open (it survives a restart)."""
    return {(r["receiver"], r["account"]) for r in store.query(
        f"SELECT DISTINCT receiver, account FROM alarms WHERE code=? AND {_ACTIVE}", (SILENT_CODE,))}


def active_silences(store: Store) -> list[dict[str, Any]]:
    """Silence alarms of panels not heard again yet (oldest first): the open supervision faults."""
    rows = store.query(f"SELECT {_ALARM} FROM alarms WHERE code=? AND {_ACTIVE} ORDER BY id", (SILENT_CODE,))
    return [alarm_dict(r) for r in rows]


#: tables kept in the order their rows came in, pruned from the front: (table, its time column)
_PRUNED_FRONT = {"alarm_blocks": "received_at", "alarm_signals": "ts"}


async def prune_dedupe(store: Store, cutoff: str) -> int:
    """Drop DC-09 blocks received before ``cutoff`` (see :func:`prune_front`)."""
    return await prune_front(store, "alarm_blocks", cutoff)


async def prune_panel_log(store: Store, cutoff: str) -> int:
    """Drop panel log rows (every signal received) logged before ``cutoff`` (see :func:`prune_front`)."""
    return await prune_front(store, "alarm_signals", cutoff)


async def prune_front(store: Store, table: str, cutoff: str) -> int:
    """Drop a table's rows older than ``cutoff``: the rows in front of the first newer one (they are in the
    order received, so no index on the time is needed), in slices that let door decisions through."""
    column = _PRUNED_FRONT[table]
    row = await asyncio.to_thread(store.query_one, f"SELECT COALESCE((SELECT id FROM {table} WHERE {column} >= ? "
                                  f"ORDER BY id LIMIT 1), (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}))", (cutoff,))
    end = row[0] if row is not None else 1

    def run(conn: sqlite3.Connection, after: int, limit: int) -> tuple[int, int]:
        row = conn.execute(f"SELECT id FROM {table} WHERE id > ? AND id < ? ORDER BY id LIMIT 1 OFFSET ?",
                           (after, end, limit - 1)).fetchone()
        top = row[0] if row is not None else end - 1
        return conn.execute(f"DELETE FROM {table} WHERE id > ? AND id <= ?", (after, top)).rowcount, top

    n, _slices = await store.delete_in_slices(run)
    return n


# ---------------------------------------------------------------------- fire holds
def holds_owed(store: Store) -> list[tuple[int, str, list[str]]]:
    """(id, state, doors) of every alarm whose door hold was not yet released."""
    return [(int(r["id"]), r["state"], json.loads(r["unlock_doors"]))
            for r in store.query("SELECT id, state, unlock_doors FROM alarms WHERE hold_released=0")]


def hold_pending(store: Store, alarm_id: int) -> bool:
    row = store.query_one("SELECT hold_released FROM alarms WHERE id=?", (alarm_id,))
    return row is not None and not row[0]


async def mark_hold_released(store: Store, alarm_id: int) -> None:
    await store.write(lambda c: c.execute("UPDATE alarms SET hold_released=1 WHERE id=?", (alarm_id,)))


# ---------------------------------------------------------------------- queries
def get_alarm(store: Store, alarm_id: int) -> dict[str, Any] | None:
    row = store.query_one(f"SELECT {_ALARM} FROM alarms WHERE id=?", (alarm_id,))
    return alarm_dict(row) if row else None


def list_alarms(store: Store, where: str, params: tuple[Any, ...], limit: int) -> list[dict[str, Any]]:
    rows = store.query(f"SELECT {_ALARM} FROM alarms WHERE {where} ORDER BY id DESC LIMIT ?", (*params, limit))
    return [alarm_dict(r) for r in rows]


def alarms_raised_since(store: Store, since: str | None, limit: int = 500) -> list[dict[str, Any]]:
    """Alarms raised after ``since`` (all when None), oldest first, at most the newest ``limit``."""
    rows = store.query(f"SELECT {_ALARM} FROM alarms WHERE raised_at > ? ORDER BY id DESC LIMIT ?",
                       (since or "", limit))
    return [alarm_dict(r) for r in reversed(rows)]


# ---------------------------------------------------------------------- shift handovers
def last_handover(store: Store) -> dict[str, Any] | None:
    row = store.query_one("SELECT id, ts, shift, from_who, to_who, notes, open_alarms, recorded_by "
                          "FROM shift_handovers ORDER BY id DESC LIMIT 1")
    if row is None:
        return None
    return {"id": row["id"], "ts": row["ts"], "shift": row["shift"], "from": row["from_who"], "to": row["to_who"],
            "notes": row["notes"], "open_alarms": json.loads(row["open_alarms"]), "recorded_by": row["recorded_by"]}


def insert_handover(conn: sqlite3.Connection, now: str, shift: str, from_who: str, to_who: str, notes: str,
                    open_ids: list[int], actor: str) -> int:
    cur = conn.execute("INSERT INTO shift_handovers(ts, shift, from_who, to_who, notes, open_alarms, "
                       "recorded_by) VALUES(?,?,?,?,?,?,?)",
                       (now, shift, from_who, to_who, notes, json.dumps(open_ids), actor))
    return int(cur.lastrowid or 0)


def last_handover_seq(store: Store) -> int | None:
    """The event-log seq of the newest ``shift.handover`` event (None once pruned from the log)."""
    row = store.query_one("SELECT MAX(seq) FROM events WHERE type = 'shift.handover'")
    return None if row is None or row[0] is None else int(row[0])


def first_seq_after(store: Store, ts: str) -> int:
    """The seq after the newest event stamped at or before ``ts`` (1 when none is): turns a time bound into a seq
    bound the ``(type, seq)`` index can start from. One seek in the ``events_ts`` index. Events logged earlier but
    stamped later (a clock stepped back) are not looked for: the bound is the log's order. Seeking from below, not
    "the first stamped after ``ts``": one early event stamped in the future (a first boot before the clock was
    set) would be that, and every report would read the whole log from it (measured: 154 ms at 1.8 M events)."""
    row = store.query_one("SELECT COALESCE((SELECT seq FROM events INDEXED BY events_ts WHERE ts <= ? "
                          "ORDER BY ts DESC LIMIT 1) + 1, 1)", (ts,))
    return int(row[0]) if row is not None else 1


def events_after(store: Store, types: tuple[str, ...], after_seq: int, after_ts: str,
                 limit: int) -> list[sqlite3.Row]:
    """Logged events of these types after a seq and a time, newest first, at most ``limit``."""
    marks = ",".join("?" * len(types))
    return store.query(f"SELECT seq, ts, type, data FROM events WHERE type IN ({marks}) AND seq > ? AND ts > ? "
                       "ORDER BY seq DESC LIMIT ?", (*types, after_seq, after_ts, limit))


def failed_swipes(store: Store, after_seq: int, after_ts: str) -> list[sqlite3.Row]:
    """``access.denied`` events after a seq and a time, counted by door and reason (most first). Read-only on
    the event log, like :func:`events_after`; the access area's own tables are not touched."""
    return store.query("SELECT json_extract(data, '$.door') AS door, json_extract(data, '$.reason') AS reason, "
                       "COUNT(*) AS n FROM events WHERE type = 'access.denied' AND seq > ? AND ts > ? "
                       "GROUP BY 1, 2 ORDER BY n DESC, door, reason", (after_seq, after_ts))


# ---------------------------------------------------------------------- missed handovers
def missed_known(store: Store, change_at: str) -> bool:
    """Was the missed handover of this shift change already raised (it is raised once)?"""
    return store.query_one("SELECT 1 FROM handover_missed WHERE change_at=?", (change_at,)) is not None


def insert_missed(conn: sqlite3.Connection, change_at: str, shift: str, due_at: str, now: str) -> bool:
    """Remember a missed handover; False if this change's was already raised (by a concurrent check)."""
    cur = conn.execute("INSERT OR IGNORE INTO handover_missed(change_at, shift, due_at, raised_at) VALUES(?,?,?,?)",
                       (change_at, shift, due_at, now))
    return cur.rowcount == 1


def open_missed(store: Store) -> list[dict[str, Any]]:
    """Missed handovers not yet cleared by a handover, oldest first."""
    rows = store.query("SELECT change_at, shift, due_at, raised_at FROM handover_missed WHERE cleared_at IS NULL "
                       "ORDER BY change_at")
    return [dict(r) for r in rows]


def clear_missed(conn: sqlite3.Connection, now: str, handover_id: int) -> list[sqlite3.Row]:
    """A handover was recorded: every missed one still open is cleared by it (returned, oldest first)."""
    rows: list[sqlite3.Row] = conn.execute("SELECT change_at, shift FROM handover_missed WHERE cleared_at IS NULL "
                                           "ORDER BY change_at").fetchall()
    conn.execute("UPDATE handover_missed SET cleared_at=?, handover=? WHERE cleared_at IS NULL", (now, handover_id))
    return rows


def handover_recorded_since(conn: sqlite3.Connection, since: str) -> bool:
    """Inside a transaction: was a handover recorded at or after ``since``?"""
    return conn.execute("SELECT 1 FROM shift_handovers WHERE ts >= ? LIMIT 1", (since,)).fetchone() is not None
