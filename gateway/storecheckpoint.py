"""WAL checkpoints on a thread of their own, never inside the writer's commit.

Why: with SQLite's automatic checkpoint the commit that takes the WAL past 1,000 pages also copies those
pages into the database file and fsyncs it -- on the writer thread, inside the commit that a door decision
may be waiting on. While the hourly prune dirties index pages all over a big table, that landed on a
decision every few slices (the prune's decision p99 was ~10x the quiet one). So the writer turns the
automatic checkpoint off (``PRAGMA wal_autocheckpoint=0``) and this thread, on its own connection, runs
PASSIVE checkpoints: they never take the write lock, so commits go on beside them, and SQLite restarts the
WAL from its start on the first commit after a checkpoint that caught up. It runs when the writer has
committed :data:`CHECKPOINT_COMMITS` times since the last one or :data:`CHECKPOINT_EVERY_S` after a commit,
whichever comes first. :meth:`Store.close` still truncates the WAL with the writer's own connection.
A pass cannot catch up while the writer keeps committing (a panel storm, ten panels back to back, a big
job): it copies the frames it found, the writer has appended more meanwhile, and the WAL never starts again
from its beginning -- it grew to 690 MB in 16 s of ten panels at full speed (a 27 MB database), and every
commit paid for a growing file (ext4 allocates and journals the new blocks at each fsync: 0.65-0.71 ms a
commit instead of 0.44-0.48, measured with a plain script). So when a pass leaves a WAL of
:data:`FINISH_FRAMES` or more behind, the writer finishes it between two of its transactions
(:meth:`Checkpointer.finish`, called by the writer's loop): only the frames written during the pass are left
to copy, and nothing writes meanwhile, so the checkpoint catches up and the next commit starts the WAL
again (SQLite then cuts the file back to ``journal_size_limit``, :data:`WAL_KEEP_BYTES`).
Its connection is closed after :data:`IDLE_CLOSE_S` without a commit (a quiet site's gateway keeps three
connections open, not four: ~0.6 MB of SQLite's page cache and schema) and opened again by the next commit.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger("gateway.store")

#: a checkpoint after this many commits at most (a big WAL makes every reader slower)...
CHECKPOINT_COMMITS = 2000
#: ...or this long after the first commit not checkpointed yet. Each checkpoint writes pages all over the
#: database and fsyncs it, and a door decision's own fsync queues behind that on the disk: on a 90-day site's
#: store, a decision every 3 ms during a 100,000-card snapshot had p99 3.6 ms with 200 commits / 0.5 s
#: (~200 checkpoints), 1.9 ms with 2,000 / 3 s (23), quiet 1.4-1.5. The WAL holds at most ~3 s of writes.
CHECKPOINT_EVERY_S = 3.0
#: the checkpointer's own connection is closed after this long without a commit
IDLE_CLOSE_S = 30.0
#: a WAL this many frames long (16 MiB of 4 KiB pages) that a pass left behind is finished by the writer
FINISH_FRAMES = 4096
#: the WAL file is cut back to this size when it starts again (SQLite's journal_size_limit)
WAL_KEEP_BYTES = 32 << 20


class Checkpointer:
    """Runs PASSIVE checkpoints on its own connection, woken by the writer's commits."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._wake = threading.Event()
        self._stop = False
        self._dirty = 0
        self.checkpoints = 0
        #: the last pass left a long WAL behind: the writer finishes it (:meth:`finish`)
        self.finish_due = False
        #: checkpoints the writer finished
        self.finished = 0
        self._thread = threading.Thread(target=self._run, name="store-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def committed(self) -> None:
        """The writer's after-commit hook (its thread): one more commit to checkpoint."""
        self._dirty += 1
        if self._dirty == 1 or self._dirty >= CHECKPOINT_COMMITS:
            self._wake.set()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop:
                if not self._wake.wait(IDLE_CLOSE_S if conn is not None else None):
                    _close(conn)   # a quiet site: nothing to checkpoint for a while
                    conn = None
                    continue
                self._wake.clear()
                if self._stop:
                    return
                if self._dirty < CHECKPOINT_COMMITS:  # the first commit since the last one: give it a moment
                    self._wake.wait(CHECKPOINT_EVERY_S)
                    self._wake.clear()
                    if self._stop:
                        return
                self._dirty = 0
                try:
                    conn = conn or self._connect()
                    # the WAL's length as this pass found it (all of it copied, unless a reader needs some):
                    # it does not start again while the writer has committed meanwhile
                    frames = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
                    self.checkpoints += 1
                    self.finish_due = frames >= FINISH_FRAMES
                except sqlite3.Error as exc:  # the writer's trouble handling reports a failing store
                    log.debug("store: checkpoint failed (%s); next time", exc)
                    _close(conn)
                    conn = None
        finally:
            _close(conn)

    def finish(self, conn: sqlite3.Connection) -> None:
        """The writer's thread, between two transactions: copy what the last pass left behind, so the next
        commit starts the WAL again. Quick: the pass copied all but the frames committed while it ran (and a
        frame a reader still needs stays, the next pass tries again)."""
        if not self.finish_due:
            return
        self.finish_due = False
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.finished += 1
        except sqlite3.Error as exc:  # the store's trouble shows on the next commit
            log.debug("store: finishing a checkpoint failed (%s)", exc)


def take_over_checkpoints(writer: sqlite3.Connection) -> None:
    """The writer's connection: no automatic checkpoint in its commits; its WAL cut back when it starts again."""
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")


def _close(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
