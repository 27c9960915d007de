"""The store's writer thread: group commit, and retries that outlive any failure of the disk or a lock.

Why it retries instead of failing: a lock held by another process past the busy timeout, an I/O error
or a full disk is the *store's* trouble, not the write's. The writer rolls the batch back and tries it
again with backoff (50 ms doubling to 2 s) for as long as it takes. A caller whose write has waited
``fail_after_s`` is refused at the next failed attempt (an attempt against a lock lasts the busy
timeout) with :class:`StoreUnavailable` (an ``sqlite3.OperationalError``: HTTP turns it into
``503 storage_unavailable``, a DC-09 receiver into a NAK the panel retries); its write is dropped from
the retry, so nothing is done behind the back of a caller who was told no. While writes fail,
``trouble`` says why and since when (``/health`` answers 503 ``degraded``); with nothing to write, the
writer probes with a one-row write, so health turns ``ok`` by itself once the disk or lock is back.
How long a caller waits at most: the backoff is cut short when a pending write's ``fail_after_s`` is
up, and a write queued during an attempt joins the next one, so a caller is refused by
``max(fail_after_s, busy_timeout_s) + busy_timeout_s`` (7 s with the defaults, 5 and 2; an I/O error or
a full disk fails an attempt at once: then about ``fail_after_s``). The writer notes when each attempt
began (``attempt_started``): the systemd watchdog pings while no attempt has run longer than the busy
timeout plus a margin, so a lock held outside does not get the gateway killed, a wedged writer does.
Writes submitted as ``background`` (the slices of big jobs) never share a transaction with foreground ones
queued beside them: those commit first (see :meth:`Writer._attempt_foreground_first`).
No exception ends the writer thread: one that escapes is logged and the loop carries on. A write that
raises on its own (not a storage error) is rolled back to its savepoint and fails alone, as before.
That savepoint keeps the first copy of every page its write changes, in a statement journal; SQLite spills
one over 64 KiB to a temporary file. An alarm batch of ten blocks changes ~20 pages (80 KiB), so every
other commit opened, wrote and deleted a file: the writer keeps its temporary storage in memory
(:data:`WRITER_TEMP_STORE`): a journal is at most the pages one write changes, and the writer's biggest
sort is a 100k-card snapshot's index build, a few MB (the migrations at open, which may index a year of
readings, run before the writer thread sets it). Issue 20: 75 -> 39 writes to files a commit, ~8 % of the
daemon's CPU a DC-09 block.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from drivers.quietlog import QuietLog

log = logging.getLogger("gateway.store")

#: the writer connection's ``PRAGMA temp_store``: savepoint journals in memory (see the module docstring)
WRITER_TEMP_STORE = "MEMORY"

#: SQLite result codes that mean the store (disk, lock, file) failed, not the write itself
STORAGE_ERRORS = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN",
                  "SQLITE_PROTOCOL", "SQLITE_NOMEM", "SQLITE_READONLY")


class StoreClosed(RuntimeError):
    pass


class StoreUnavailable(sqlite3.OperationalError):
    """The store could not commit within the caller's bound (locked, I/O error, disk full); it keeps trying."""


def is_storage_error(exc: BaseException) -> bool:
    name = getattr(exc, "sqlite_errorname", None) or ""
    return isinstance(exc, sqlite3.Error) and name.startswith(STORAGE_ERRORS)


class _Item:
    __slots__ = ("fn", "fut", "t0", "background")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], fut: Future[Any], background: bool = False) -> None:
        self.fn, self.fut, self.t0, self.background = fn, fut, time.monotonic(), background


class _BatchFailed(Exception):
    def __init__(self, cause: sqlite3.Error) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Writer:
    """The writer half of :class:`gateway.store.Store` (which sets these attributes up)."""

    max_batch: int
    fail_after_s: float
    _queue: queue.Queue[_Item | None]
    _writer: sqlite3.Connection | None
    _thread: threading.Thread | None
    commits: int
    writes: int
    failed_attempts: int
    trouble: tuple[str, str] | None
    _trouble_t0: float
    _quiet: QuietLog
    _after_commit: list[Callable[[], None]]
    _after_commit_conn: list[Callable[[sqlite3.Connection], None]]
    _after_rollback: list[Callable[[], None]]
    #: run on the writer's connection after a batch was committed and answered, before the next one
    _between_batches: list[Callable[[sqlite3.Connection], None]]
    #: the writer commits with synchronous=FULL (then background-only transactions go without an fsync)
    sync_full: bool = False
    #: time.monotonic() when the attempt under way began; None while the writer waits or backs off
    attempt_started: float | None = None

    def attempt_age(self) -> float:
        """Seconds the attempt under way has run (0 when none is): the watchdog's view of the writer."""
        started = self.attempt_started
        return 0.0 if started is None else time.monotonic() - started

    def _run_writer(self) -> None:
        assert self._writer is not None
        with contextlib.suppress(sqlite3.Error):   # no temp file per savepoint (the default would still work)
            self._writer.execute(f"PRAGMA temp_store={WRITER_TEMP_STORE}")
        pending: list[_Item] = []
        delay = 0.0
        while True:
            try:
                if pending or self.trouble is not None:
                    stop = self._take(pending, 0)  # writes queued during the failed attempt count too
                    if not stop:
                        time.sleep(self._backoff(delay, pending))  # holds however fast new writes arrive
                        stop = self._take(pending, 0)
                else:
                    stop = self._take(pending, None)
                if stop:
                    if pending and self.trouble is None:
                        self._attempt(pending)
                    for item in pending:
                        if not item.fut.done():
                            item.fut.set_exception(StoreClosed("store closed before the write could commit"))
                    return
                if pending or self.trouble is not None:
                    ok = self._attempt_foreground_first(pending)
                    delay = 0.0 if ok else min(max(delay * 2, 0.05), 2.0)
                    if ok:
                        self._between()
            except Exception:  # never end the writer: log, wait a little, carry on
                log.exception("store: writer loop error (carrying on)")
                delay = 1.0

    def _between(self) -> None:
        conn = self._writer
        assert conn is not None
        for hook in self._between_batches:
            try:
                hook(conn)
            except Exception:  # pragma: no cover - hooks are ours and catch their own sqlite errors
                log.exception("store: between-batches hook failed")

    def _backoff(self, delay: float, pending: list[_Item]) -> float:
        """The backoff, cut short when a pending write's ``fail_after_s`` is up (it gets one more attempt)."""
        due = min((item.t0 + self.fail_after_s for item in pending), default=float("inf"))
        return max(0.0, min(delay, due - time.monotonic()))

    def _take(self, pending: list[_Item], wait: float | None) -> bool:
        """Add queued writes to ``pending``: block for the first if ``wait`` is None. True on close."""
        try:
            first = self._queue.get() if wait is None else self._queue.get(timeout=wait) if wait > 0 \
                else self._queue.get_nowait()
        except queue.Empty:
            return False
        nxt: _Item | None = first
        while True:
            if nxt is None:
                return True
            if nxt.fut.set_running_or_notify_cancel():
                pending.append(nxt)
            if len(pending) >= self.max_batch:
                return False
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                return False

    def _attempt_foreground_first(self, pending: list[_Item]) -> bool:
        """Commit ``pending``; background writes (a slice of a prune, of a snapshot's staging) queued with
        foreground ones (a door decision) go in a transaction of their own after them, so a decision never
        waits for a queued slice, only for the one already running."""
        if not any(item.background for item in pending) or all(item.background for item in pending):
            return self._attempt(pending)
        fg = [item for item in pending if not item.background]
        bg = [item for item in pending if item.background]
        ok = self._attempt(fg)
        if ok:
            ok = self._attempt(bg)
        pending[:] = fg + bg  # what is left of either (each attempt clears its own on success)
        return ok

    def _attempt(self, pending: list[_Item]) -> bool:
        """Commit ``pending`` (or a probe, if empty) in one transaction. False if the store failed.

        A transaction of background writes only commits without its own fsync (``synchronous=NORMAL`` for
        it): the next foreground commit's fsync of the WAL makes it durable too, and a door decision never
        waits for a slice's fsync before its own. A big job's slice lost to a power cut is redone (a prune)
        or thrown away (a snapshot's staging table, recreated by the next snapshot)."""
        self.attempt_started = time.monotonic()
        lazy = bool(pending) and self.sync_full and all(item.background for item in pending)
        try:
            if lazy:
                self._set_sync("NORMAL")
            return self._attempt_once(pending)
        finally:
            if lazy:
                self._set_sync("FULL")
            self.attempt_started = None

    def _set_sync(self, level: str) -> None:
        with contextlib.suppress(sqlite3.Error):  # outside a transaction: it cannot fail but on a closed file
            assert self._writer is not None
            self._writer.execute(f"PRAGMA synchronous={level}")

    def _attempt_once(self, pending: list[_Item]) -> bool:
        conn = self._writer
        assert conn is not None
        try:
            results = self._commit_batch(conn, pending or [_Item(self._probe, Future())])
        except (_BatchFailed, sqlite3.Error) as exc:
            cause = exc.cause if isinstance(exc, _BatchFailed) else exc
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._failed(cause, pending)
            return False
        self._recovered()
        for hook in self._after_commit:
            try:
                hook()
            except Exception:  # pragma: no cover - hooks are ours and tiny
                log.exception("store: after-commit hook failed")
        for item, value, err in results:
            if item.fut.done():
                continue
            if err is not None:
                item.fut.set_exception(err)
            else:
                item.fut.set_result(value)
        pending.clear()
        return True

    def _commit_batch(self, conn: sqlite3.Connection,
                      batch: list[_Item]) -> list[tuple[_Item, Any, BaseException | None]]:
        results: list[tuple[_Item, Any, BaseException | None]] = []
        conn.execute("BEGIN IMMEDIATE")
        for item in batch:
            if item.fut.done():
                continue
            conn.execute("SAVEPOINT w")
            try:
                value = item.fn(conn)
            except Exception as exc:  # one bad write must not sink the batch; a failing store does
                if is_storage_error(exc):
                    raise _BatchFailed(exc) from exc  # type: ignore[arg-type]
                try:
                    conn.execute("ROLLBACK TO w")
                    conn.execute("RELEASE w")
                except sqlite3.Error as inner:  # SQLite rolled the whole transaction back itself
                    raise _BatchFailed(inner) from exc
                results.append((item, None, exc))
            else:
                conn.execute("RELEASE w")
                results.append((item, value, None))
        conn.execute("COMMIT")
        self.commits += 1
        self.writes += len(results)
        for hook in self._after_commit_conn:
            try:
                hook(conn)
            except Exception:  # committed is committed: a hook's trouble must not make it run again
                log.exception("store: after-commit hook failed")
        return results

    @staticmethod
    def _probe(conn: sqlite3.Connection) -> None:
        """Nothing queued while in trouble: a one-row write tells whether the store works again."""
        conn.execute("INSERT INTO meta(key, value) VALUES('store.probe', ?) "
                     "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (_iso_now(),))

    def _failed(self, exc: sqlite3.Error, pending: list[_Item]) -> None:
        self.failed_attempts += 1
        reason = str(exc) or type(exc).__name__
        if self.trouble is None:
            self._trouble_t0 = time.monotonic()
            self.trouble = (reason, _iso_now())
            log.error("store: a transaction failed (%s): retrying with backoff until it commits", reason)
        else:
            self.trouble = (reason, self.trouble[1])
            self._quiet.log(reason, "store: writes still failing: %s", reason)
        for hook in self._after_rollback:
            hook()
        now = time.monotonic()
        keep = []
        for item in pending:
            if item.fut.done():
                continue
            if now - item.t0 >= self.fail_after_s:
                item.fut.set_exception(StoreUnavailable(
                    f"the store cannot commit: {reason} (since {self.trouble[1]}); it keeps retrying"))
            else:
                keep.append(item)
        pending[:] = keep

    def _recovered(self) -> None:
        if self.trouble is not None:
            log.warning("store: writes commit again after %.1f s (%s)", time.monotonic() - self._trouble_t0,
                        self.trouble[0])
            self.trouble = None


def _iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
