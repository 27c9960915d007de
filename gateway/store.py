"""SQLite store: WAL mode, one writer thread with group commit that never dies, per-area migrations.

Why one writer thread: SQLite allows one writer at a time anyway, and a single thread that batches whatever
is queued into one transaction turns N fsyncs into one. ``await store.write(fn)`` returns only after the
transaction holding ``fn`` has committed, so "recorded" always means "on disk" -- at thousands of writes a
second on a small box. Checkpoints: :mod:`gateway.storecheckpoint`.

Why the writer never dies and retries a failed transaction (lock, I/O, full disk)
with backoff, and how ``/health`` learns of it: :mod:`gateway.storewriter`.
Why an HTTP request's audit row rides along with its first write: :data:`ride_along`.

Files and their modes: :mod:`gateway.storefiles`.

Reads use a separate connection per thread (WAL lets readers run beside the writer, never seeing half a transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from drivers.quietlog import QuietLog
from gateway.schema import (  # noqa: F401 - re-exported: the store's public names
    CORE_MIGRATIONS,
    SchemaTooNew,
    apply_migrations,
    pending_migrations,
    schema_versions,
)
from gateway.storecheckpoint import Checkpointer, take_over_checkpoints
from gateway.storefiles import (  # noqa: F401 - re-exported
    StoreCorrupt,
    backup_database,
    create_private,
    flush_file,
    newest_backup,
    secure_dir,
    secure_file,
    sweep_partial_backups,
)
from gateway.storewriter import StoreClosed, StoreUnavailable, Writer, _Item, is_storage_error  # noqa: F401

log = logging.getLogger(__name__)

T = TypeVar("T")

WriteFn = Callable[[sqlite3.Connection], T]

#: rows a big delete (the hourly prunes) removes per transaction: the writer also commits every door
#: decision, so a day of rows goes in slices with the queue served between them, never in one transaction
DELETE_SLICE = 25
#: ...BUSY_SLICE while foreground writes (decisions, alarms) came in the last BUSY_S: a decision arriving
#: mid-slice waits for all of it (90-day site, a decision every 3 ms: p99 5.1 ms with 25 rows, 2.2 with 5)
BUSY_SLICE, BUSY_S = 5, 2.0
#: and pause this long between slices (25 rows and 5 ms: the prune ~4x longer than with 100 rows and 2 ms)
DELETE_PAUSE_S = 0.005

#: ``fn(conn, after, limit)`` deletes at most ``limit`` rows keyed above ``after``; returns (rows, last key)
SliceFn = Callable[[sqlite3.Connection, int, int], tuple[int, int]]


class RideAlong:
    """Work to commit with the owning task's next successful write (an HTTP request's audit row)."""

    def __init__(self, fn: Callable[[sqlite3.Connection], None]) -> None:
        self.fn = fn
        self.committed = False
        self.failed = False
        #: the task that runs the route (see :meth:`claim`); only its writes carry the row
        self.owner: asyncio.Task[Any] | None = None

    def claim(self) -> None:
        """Make the current task the owner (the first to claim wins)."""
        if self.owner is None:
            self.owner = asyncio.current_task()

    def rides_with(self, task: asyncio.Task[Any] | None) -> bool:
        return not (self.committed or self.failed) and task is not None and task is self.owner


#: Set by the HTTP audit middleware for the length of one request. Why a context variable: the audit
#: row must commit in the same transaction as the request's action (or not at all), and the action is
#: written deep inside an area's code that knows nothing of HTTP. Why an owner task too: every task
#: started inside the request inherits the variable, and one that outlives it (a console session's
#: ``last_seen`` update) would commit the row with a status the request never answered. So only the
#: task that runs the route (claimed by the innermost middleware) carries the row: :meth:`Store.write`
#: adds it to the first write of that task; writes of other tasks never carry it.
ride_along: ContextVar[RideAlong | None] = ContextVar("egw_ride_along", default=None)


def release_ride_along() -> None:
    """The write that carried the request's audit row failed, but earlier writes of the request had
    committed: the row is to be written alone after the answer (with its status), not dropped."""
    if (ride := ride_along.get()) is not None and not ride.committed:
        ride.failed = False
        ride.owner = None  # no later write carries it: the audit middleware writes it alone


def connect(path: Path | str, *, readonly: bool = False, synchronous: str = "FULL",
            busy_timeout_s: float = 30.0) -> sqlite3.Connection:
    """Open a connection with the settings every connection of the gateway uses."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=busy_timeout_s)
    else:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=busy_timeout_s, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL (default): a commit survives power loss, not only a process crash.
        # NORMAL: survives kill -9 and crashes, may lose the last commits on power loss; ~10x faster commits.
        conn.execute(f"PRAGMA synchronous={'NORMAL' if synchronous.upper() == 'NORMAL' else 'FULL'}")
        conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Store(Writer):
    """The gateway's database. Create, then :meth:`open` (runs migrations), then use."""

    #: the core schema, owned by the store itself (events, outbox, commands, audit, meta)
    CORE = "core"

    def __init__(self, path: Path | str, *, max_batch: int = 2000, synchronous: str = "full",
                 busy_timeout_s: float = 2.0, fail_after_s: float = 5.0, min_free_mb: float = 16.0) -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self.sync_full = synchronous.upper() != "NORMAL"
        self.max_batch = max_batch
        self.busy_timeout_s = busy_timeout_s
        self.fail_after_s = fail_after_s
        self.min_free_mb = min_free_mb
        self._low_since: str | None = None
        #: monotonic time of the last foreground write submitted (see :meth:`busy`)
        self.foreground_at = float("-inf")
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._writer: sqlite3.Connection | None = None
        self._checkpointer: Checkpointer | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self.commits = 0
        self.writes = 0
        self.failed_attempts = 0
        #: (reason, since as RFC 3339) while commits fail; None when the last one succeeded
        self.trouble: tuple[str, str] | None = None
        self._trouble_t0 = 0.0
        self._quiet = QuietLog(log, level=logging.ERROR)
        #: the WAL file was there when the store opened (the seq mark asks after a crash)
        self.wal_at_open = False
        self.existed_at_open = False
        #: hooks run in the writer thread right after each commit (e.g. wake the uplink)
        self._after_commit: list[Callable[[], None]] = []
        #: hooks given the writer's connection right after each commit, before any caller hears of it
        self._after_commit_conn: list[Callable[[sqlite3.Connection], None]] = []
        #: hooks run in the writer thread after a batch was rolled back (its writes will run again)
        self._after_rollback: list[Callable[[], None]] = []
        #: hooks given the writer's connection after a batch was answered, before the next (a checkpoint's end)
        self._between_batches: list[Callable[[sqlite3.Connection], None]] = []
        #: hooks run by :meth:`close` once the writer has stopped (the seq mark notes a clean stop)
        self._before_close: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ lifecycle
    def open(self, migrations: dict[str, list[tuple[int, str]]] | None = None,
             *, backup_dir: Path | None = None) -> None:
        """Create the file, apply migrations, start the writer thread.

        An existing database that needs migrating is first copied to ``backup_dir`` (an upgrade must never be a
        one-way door). A file that is not a readable gateway database raises :class:`StoreCorrupt` naming the
        newest backup."""
        secure_dir(self.path.parent)
        existed = self.path.exists() and self.path.stat().st_size > 0
        self.wal_at_open = Path(f"{self.path}-wal").exists()
        self.existed_at_open = existed
        if not self.path.exists():
            create_private(self.path)
        for suffix in ("", "-wal", "-shm"):
            secure_file(f"{self.path}{suffix}")
        all_migrations = {self.CORE: CORE_MIGRATIONS, **(migrations or {})}
        try:
            self._writer = connect(self.path, synchronous=self.synchronous, busy_timeout_s=self.busy_timeout_s)
            behind = pending_migrations(self._writer, all_migrations)
        except sqlite3.DatabaseError as exc:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            if is_storage_error(exc):
                raise
            raise StoreCorrupt(self.path, str(exc), newest_backup(backup_dir)) from None
        for suffix in ("-wal", "-shm"):
            secure_file(f"{self.path}{suffix}")
        if existed and behind and backup_dir is not None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            secure_dir(Path(backup_dir))
            dest = self.backup_to(Path(backup_dir) / f"pre-migrate-{stamp}.db", paced=False)  # nothing to let by
            log.info("store: %s need migrating; backup first: %s", ", ".join(behind), dest)
        apply_migrations(self._writer, all_migrations)
        # checkpoints on their own thread, never inside a commit a decision waits on (storecheckpoint)
        take_over_checkpoints(self._writer)
        self._checkpointer = Checkpointer(lambda: connect(self.path, synchronous=self.synchronous,
                                                          busy_timeout_s=self.busy_timeout_s))
        self.on_commit(self._checkpointer.committed)
        self._between_batches.append(self._checkpointer.finish)   # a WAL a pass left long starts again
        self._checkpointer.start()
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
        if self._checkpointer is not None:
            self._checkpointer.stop()
        for hook in self._before_close:
            try:
                hook()
            except Exception:
                log.exception("store: close hook failed")
        with self._readers_lock:
            for conn in self._readers:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._readers.clear()
        if self._writer:
            with contextlib.suppress(sqlite3.Error):
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._writer.close()
            self._writer = None

    def writer_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def condition(self) -> tuple[str, str] | None:
        """Why the store is not fine, and since when (None: fine): a failing commit, or a disk with less
        than ``min_free_mb`` left (small writes may still fit in the WAL while the next big one will not)."""
        if self.trouble is not None:
            return self.trouble
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return None
        free = st.f_bavail * st.f_frsize
        if free >= self.min_free_mb * 1024 * 1024:
            self._low_since = None
            return None
        self._low_since = self._low_since or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (f"disk full: {free // 1024} KB free in {self.path.parent}", self._low_since)

    def on_commit(self, hook: Callable[[], None]) -> None:
        self._after_commit.append(hook)

    def on_commit_conn(self, hook: Callable[[sqlite3.Connection], None]) -> None:
        self._after_commit_conn.append(hook)

    def on_rollback(self, hook: Callable[[], None]) -> None:
        self._after_rollback.append(hook)

    def on_close(self, hook: Callable[[], None]) -> None:
        self._before_close.append(hook)

    # ------------------------------------------------------------------ writes
    def submit(self, fn: WriteFn[T], background: bool = False) -> Future[T]:
        if self._closed:
            raise StoreClosed("store is closed")
        fut: Future[T] = Future()
        if not background:
            self.foreground_at = time.monotonic()
        self._queue.put(_Item(fn, fut, background))
        return fut

    def busy(self) -> bool:
        """Foreground writes (door decisions, alarms) in the last :data:`BUSY_S`: big jobs go in small slices."""
        return time.monotonic() - self.foreground_at < BUSY_S

    async def write(self, fn: WriteFn[T], *, background: bool = False) -> T:
        """Run ``fn(conn)`` in the writer's transaction; return once committed.

        An HTTP request's pending audit row (:data:`ride_along`) commits in the
        same transaction as the first write of the request's own task, or not at all.
        ``background``: a slice of a big job, committed after any foreground write queued beside it.
        """
        ride = ride_along.get()
        if ride is None or not ride.rides_with(asyncio.current_task()):
            return await asyncio.wrap_future(self.submit(fn, background))

        def both(conn: sqlite3.Connection) -> T:
            value = fn(conn)
            ride.fn(conn)
            return value

        try:
            value = await asyncio.wrap_future(self.submit(both))
        except BaseException:
            ride.failed = True
            raise
        ride.committed = True
        return value

    async def delete_in_slices(self, fn: SliceFn) -> tuple[int, int]:
        """Run ``fn`` as one write per slice, resuming after the last key each time, until a slice comes back
        short; whatever was queued meanwhile (door decisions) commits between slices. A slice is
        :data:`DELETE_SLICE` rows -- :data:`BUSY_SLICE` while the store is :meth:`busy`, decided again for every
        slice. Returns (rows deleted, slices)."""
        total = slices = after = 0
        while True:
            limit = BUSY_SLICE if self.busy() else DELETE_SLICE
            n, last = await self.write(_slice(fn, after, limit), background=True)
            total += n
            slices += 1
            if n < limit:
                return total, slices
            after = last
            await self.settle()

    async def settle(self) -> None:
        """Between two slices of a big job: the WAL flushed to disk on a thread (a background commit does not
        fsync; left dirty, its pages would be written by the next door decision's fsync), then the pause that
        lets the queue in."""
        await self.flush_wal()
        await asyncio.sleep(DELETE_PAUSE_S)

    async def flush_wal(self) -> None:
        """fdatasync the WAL on a worker thread (neither the writer nor the loop waits on the disk for it)."""
        await asyncio.to_thread(flush_file, f"{self.path}-wal")

    def write_sync(self, fn: WriteFn[T], timeout: float | None = 60) -> T:
        """Blocking variant for threads and the CLI (never call it on the event loop)."""
        return self.submit(fn).result(timeout)

    # ------------------------------------------------------------------ reads
    @property
    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (autocommit: each query sees the latest commit)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, busy_timeout_s=self.busy_timeout_s)
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
    def backup_to(self, dest: Path | str, *, paced: bool = True) -> Path:
        """Online backup (SQLite's backup API; consistent while writes go on); 0600; no .part left. ``paced=False``:
        no pause between steps (the backup before migrations, when nothing else writes yet)."""
        return backup_database(self.path, Path(dest), self.busy_timeout_s, paced=paced)


def _slice(fn: SliceFn, after: int, limit: int) -> WriteFn[tuple[int, int]]:
    return lambda conn: fn(conn, after, limit)


def _iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_ms() -> float:
    return time.time() * 1000.0


def json_column(rows: Sequence[Sequence[Any]], col: int) -> list[Any]:
    """Column ``col`` (JSON text) of every row, decoded in one parse: a page of 5,000 values is one C call, not
    5,000 Python-level ``json.loads``. Row by row when the texts do not parse as one list of as many values."""
    if not rows:
        return []
    try:
        out = json.loads("[" + ",".join(r[col] for r in rows) + "]")
    except ValueError:
        out = None
    if not isinstance(out, list) or len(out) != len(rows):
        out = [json.loads(r[col]) for r in rows]
    return out
