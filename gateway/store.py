"""SQLite store: WAL mode, one writer thread with group commit, per-area migrations.

Why one writer thread: SQLite allows one writer at a time anyway, and a single
thread that batches whatever is queued into one transaction turns N fsyncs into
one. ``await store.write(fn)`` returns only after the transaction holding ``fn``
has committed, so "recorded" always means "on disk" -- at thousands of writes a
second on a small box.

Reads use a separate connection per thread (WAL lets readers run beside the
writer and never see a half-written transaction).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

WriteFn = Callable[[sqlite3.Connection], T]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer gateway; refuse rather than corrupt it."""


class StoreClosed(RuntimeError):
    pass


def connect(path: Path | str, *, readonly: bool = False, synchronous: str = "FULL") -> sqlite3.Connection:
    """Open a connection with the settings every connection of the gateway uses."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30)
    else:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=30000")
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL (default): a commit survives power loss, not only a process crash.
        # NORMAL: survives kill -9 and crashes, may lose the last commits on power loss; ~10x faster commits.
        conn.execute(f"PRAGMA synchronous={'NORMAL' if synchronous.upper() == 'NORMAL' else 'FULL'}")
        conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Store:
    """The gateway's database. Create, then :meth:`open` (runs migrations), then use."""

    #: the core schema, owned by the store itself (events, outbox, commands, audit, meta)
    CORE = "core"

    def __init__(self, path: Path | str, *, max_batch: int = 2000, synchronous: str = "full") -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[WriteFn[Any], Future[Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._writer: sqlite3.Connection | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self.commits = 0
        self.writes = 0
        #: hooks run in the writer thread right after each commit (e.g. wake the uplink)
        self._after_commit: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ lifecycle
    def open(self, migrations: dict[str, list[tuple[int, str]]] | None = None,
             *, backup_dir: Path | None = None) -> None:
        """Create the file, apply migrations, start the writer thread.

        An existing database that needs migrating is first copied to ``backup_dir``
        (an upgrade must never be a one-way door).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.exists() and self.path.stat().st_size > 0
        self._writer = connect(self.path, synchronous=self.synchronous)
        all_migrations = {self.CORE: CORE_MIGRATIONS, **(migrations or {})}
        behind = pending_migrations(self._writer, all_migrations)
        if existed and behind and backup_dir is not None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            dest = self.backup_to(Path(backup_dir) / f"pre-migrate-{stamp}.db")
            log.info("store: %s need migrating; backup first: %s", ", ".join(behind), dest)
        apply_migrations(self._writer, all_migrations)
        self._thread = threading.Thread(target=self._run_writer, name="store-writer", daemon=True)
        self._thread.start()

    def add_migrations(self, area: str, migrations: list[tuple[int, str]]) -> None:
        """Apply one more area's migrations on an open store (through the writer)."""
        self.write_sync(lambda conn: apply_migrations(conn, {area: migrations}, in_txn=True))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread:
            self._queue.put(None)
            self._thread.join(timeout=30)
        with self._readers_lock:
            for conn in self._readers:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._readers.clear()
        if self._writer:
            try:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._writer.close()
            self._writer = None

    def on_commit(self, hook: Callable[[], None]) -> None:
        self._after_commit.append(hook)

    # ------------------------------------------------------------------ writes
    def submit(self, fn: WriteFn[T]) -> Future[T]:
        if self._closed:
            raise StoreClosed("store is closed")
        fut: Future[T] = Future()
        self._queue.put((fn, fut))
        return fut

    async def write(self, fn: WriteFn[T]) -> T:
        """Run ``fn(conn)`` in the writer's transaction; return once committed."""
        return await asyncio.wrap_future(self.submit(fn))

    def write_sync(self, fn: WriteFn[T], timeout: float | None = 60) -> T:
        """Blocking variant for threads and the CLI (never call it on the event loop)."""
        return self.submit(fn).result(timeout)

    def _run_writer(self) -> None:
        conn = self._writer
        assert conn is not None
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._commit_batch(conn, batch)
            if stop:
                return

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[tuple[WriteFn[Any], Future[Any]]]) -> None:
        results: list[tuple[Future[Any], Any, BaseException | None]] = []
        conn.execute("BEGIN IMMEDIATE")
        for fn, fut in batch:
            if not fut.set_running_or_notify_cancel():
                continue
            conn.execute("SAVEPOINT w")
            try:
                value = fn(conn)
            except BaseException as exc:  # one bad write must not sink the batch
                conn.execute("ROLLBACK TO w")
                conn.execute("RELEASE w")
                results.append((fut, None, exc))
            else:
                conn.execute("RELEASE w")
                results.append((fut, value, None))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("store: commit failed: %s", exc)
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            for fut, _value, _err in results:
                fut.set_exception(exc)
            return
        self.commits += 1
        self.writes += len(results)
        for hook in self._after_commit:
            try:
                hook()
            except Exception:  # pragma: no cover - hooks are ours and tiny
                log.exception("store: after-commit hook failed")
        for fut, value, err in results:
            if err is not None:
                fut.set_exception(err)
            else:
                fut.set_result(value)

    # ------------------------------------------------------------------ reads
    @property
    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (autocommit: each query sees the latest commit)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return self.reader.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        return self.reader.execute(sql, params).fetchone()

    # ------------------------------------------------------------------ backup
    def backup_to(self, dest: Path | str) -> Path:
        """Online backup with SQLite's backup API (consistent while writes go on)."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".part")
        src = connect(self.path)
        try:
            out = sqlite3.connect(str(tmp))
            try:
                src.backup(out, pages=4096)
            finally:
                out.close()
        finally:
            src.close()
        tmp.replace(dest)
        return dest


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
    conn = connect(path, readonly=True)
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
]


def now_ms() -> float:
    return time.time() * 1000.0
