"""The store's schema machinery: per-area migrations and the core schema.

Why its own module: every area brings its migrations, and the store applies them before its writer
starts; keeping the steps apart from the writer keeps both readable.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

log = logging.getLogger("gateway.store")


class SchemaTooNew(RuntimeError):
    """The database was written by a newer gateway; refuse rather than corrupt it."""


# ---------------------------------------------------------------------- migrations
def apply_migrations(
    conn: sqlite3.Connection, areas: dict[str, list[tuple[int, str]]], *, in_txn: bool = False
) -> None:
    """Bring every area's schema to its newest version; refuse a newer one on disk."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (area TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    for area, steps in areas.items():
        known = max((v for v, _ in steps), default=0)
        row = conn.execute("SELECT version FROM schema_version WHERE area=?", (area,)).fetchone()
        current = row[0] if row else 0
        if current > known:
            raise SchemaTooNew(
                f"database schema for '{area}' is version {current}, this gateway knows up to {known}: "
                "run a newer estate-gateway, or restore a backup taken before the upgrade"
            )
        for version, sql in sorted(steps):
            if version <= current:
                continue
            if not in_txn:
                conn.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _split_sql(sql):
                    conn.execute(stmt)
                conn.execute(
                    "INSERT INTO schema_version(area, version) VALUES(?, ?) "
                    "ON CONFLICT(area) DO UPDATE SET version=excluded.version",
                    (area, version),
                )
                if not in_txn:
                    conn.execute("COMMIT")
            except Exception:
                if not in_txn:
                    conn.execute("ROLLBACK")
                raise
            log.info("store: migrated %s to schema version %d", area, version)


def pending_migrations(conn: sqlite3.Connection, areas: dict[str, list[tuple[int, str]]]) -> list[str]:
    """Areas whose schema on disk is older than the code's (``area vN->vM``)."""
    has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE name='schema_version'").fetchone()
    out = []
    for area, steps in areas.items():
        known = max((v for v, _ in steps), default=0)
        current = 0
        if has_table:
            row = conn.execute("SELECT version FROM schema_version WHERE area=?", (area,)).fetchone()
            current = row[0] if row else 0
        if current < known:
            out.append(f"{area} v{current}->v{known}")
    return out


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (sqlite3.complete_statement aware)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def schema_versions(path: Path | str) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {r[0]: r[1] for r in conn.execute("SELECT area, version FROM schema_version")}
    finally:
        conn.close()


CORE_MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        -- the local event log: every event ever recorded (pruned by age only)
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL,          -- uuid4; not indexed: a random-key index costs more than it serves
            ts TEXT NOT NULL,
            type TEXT NOT NULL,
            historical INTEGER NOT NULL DEFAULT 0,
            data TEXT NOT NULL
        );
        CREATE INDEX events_type ON events(type, seq);
        CREATE INDEX events_ts ON events(ts);
        -- what still has to reach the central system (deleted on PUBACK)
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY,
            type TEXT NOT NULL,
            historical INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX outbox_type ON outbox(type, seq);
        CREATE TABLE commands (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            received_at TEXT NOT NULL,
            result TEXT NOT NULL
        );
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            actor TEXT NOT NULL,
            role TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TRIGGER audit_append_only_u BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
        CREATE TABLE devices (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            online INTEGER NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            since TEXT NOT NULL
        );
        """,
    ),
    (
        2,
        """
        -- the audit trail is append-only: no delete either
        CREATE TRIGGER audit_append_only_d BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
        """,
    ),
    (
        3,
        """
        -- issue 20: the outbox's type index served only shedding, and cost every event (and every delivery)
        -- a leaf of its own at each commit; shedding now reads forward from where it last stopped
        -- (gateway.outbox_bound.OutboxBound)
        DROP INDEX IF EXISTS outbox_type;
        """,
    ),
]
