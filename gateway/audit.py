"""The audit trail: one append-only row for every state-changing action by a person or system.

Each row is also exported to central as an ``audit.recorded`` event in the same transaction,
so the trail leaves the building as it is written: whoever later gets hold of the gateway
cannot quietly rewrite what central already has (and the local table refuses updates anyway).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from gateway.clock import Clock
from gateway.events import Event, EventLog, format_ts
from gateway.store import Store

#: never exported, whatever a caller puts in ``detail`` (personal data stays in the register)
PRIVATE_KEYS = frozenset({"holder", "name", "token", "password"})


class AuditLog:
    def __init__(self, store: Store, clock: Clock, events: EventLog) -> None:
        self.store = store
        self.clock = clock
        self.events = events

    def insert(self, conn: sqlite3.Connection, actor: str, role: str, action: str, target: str,
               detail: dict[str, Any] | None = None) -> Event:
        """Write the row inside a caller's transaction (so action and audit commit together); return its
        ``audit.recorded`` event (for :meth:`EventLog.dispatch` after the commit)."""
        detail = {k: v for k, v in (detail or {}).items() if k not in PRIVATE_KEYS}
        ts = format_ts(self.clock.now())
        cur = conn.execute(
            "INSERT INTO audit(ts, actor, role, action, target, detail) VALUES(?,?,?,?,?,?)",
            (ts, actor, role, action, target, json.dumps(detail, ensure_ascii=False, default=str)),
        )
        return self.events.insert(conn, "audit.recorded", {"audit_id": cur.lastrowid, "at": ts, "actor": actor,
                                                    "role": role, "action": action, "target": target,
                                                    "detail": detail})

    async def record(self, actor: str, role: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
        # through the event log, so the uplink is woken for the exported row
        await self.events.transact(lambda c, emit: self.insert(c, actor, role, action, target, detail))

    def query(self, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT id, ts, actor, role, action, target, detail FROM audit WHERE id > ? ORDER BY id LIMIT ?",
            (after, max(1, min(limit, 1000))),
        )
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]
