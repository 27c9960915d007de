"""The audit trail: one append-only row for every state-changing action by a person or system."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from gateway.clock import Clock
from gateway.events import format_ts
from gateway.store import Store


class AuditLog:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def insert(self, conn: sqlite3.Connection, actor: str, role: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
        """Write the row inside a caller's transaction (so action and audit commit together)."""
        conn.execute(
            "INSERT INTO audit(ts, actor, role, action, target, detail) VALUES(?,?,?,?,?,?)",
            (format_ts(self.clock.now()), actor, role, action, target,
             json.dumps(detail or {}, ensure_ascii=False, default=str)),
        )

    async def record(self, actor: str, role: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
        await self.store.write(lambda c: self.insert(c, actor, role, action, target, detail))

    def query(self, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT id, ts, actor, role, action, target, detail FROM audit WHERE id > ? ORDER BY id LIMIT ?",
            (after, max(1, min(limit, 1000))),
        )
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]
