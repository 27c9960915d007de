"""The store's files: private modes, backups written whole or not at all, and what a corrupt file says.

Why: the database and its backups hold holder names. Outside systemd (umask 022) SQLite would create
them 0644 in a 0755 folder, readable by every account on the box. ``data_dir`` and its backup
folder are therefore made 0700 (never a folder the user names for a backup: it keeps its mode), and
the database, its WAL and SHM and every backup 0600 whatever the umask: files are created with
``os.open(..., 0o600)`` before SQLite opens them (SQLite gives -wal/-shm the mode of the database
file) and chmod-ed in case they predate this. A backup goes to ``*.part`` and is renamed when
complete; a failed one (full disk) removes its part, and the daemon sweeps stale parts at start.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import suppress
from pathlib import Path

DIR_MODE, FILE_MODE = 0o700, 0o600


class StoreCorrupt(RuntimeError):
    """The database file cannot be read as a gateway database."""

    def __init__(self, path: Path, reason: str, newest_backup: Path | None) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason, self.newest_backup = path, reason, newest_backup


def secure_file(path: Path | str) -> None:
    """0600, whatever the umask (missing files are fine)."""
    with suppress(FileNotFoundError):
        os.chmod(path, FILE_MODE)


def secure_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)


def create_private(path: Path | str) -> None:
    """Create the file 0600 before SQLite does (SQLite would use 0644 & ~umask)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    secure_file(path)


#: a backup copies this many pages (4 KiB each) per step, starts their writeback and pauses: a decision's
#: fsync then never queues behind more than a step of the copy. Measured on ext4 (data=ordered: every fsync
#: commits the journal, and that commit waits for the data of blocks allocated meanwhile): a 4 KiB append +
#: fdatasync every 2 ms had p99 0.35 ms alone, 1.4-2.4 ms beside a copy flushed with fsync every 1 MiB,
#: 0.65 ms beside one whose 256 KiB steps are handed to the kernel's writeback (posix_fadvise DONTNEED,
#: which starts it without waiting) -- see docs/hardening.md "Decisions while the big jobs run"
BACKUP_STEP_PAGES = 64
BACKUP_PAUSE_S = 0.002
_fadvise = getattr(os, "posix_fadvise", None)   # Linux; elsewhere the copy is only flushed at its end


def flush_file(path: Path | str) -> None:
    """fdatasync a file another connection writes (the WAL after a background slice); gone = nothing to do."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def backup_database(path: Path, dest: Path, busy_timeout_s: float = 2.0, *, paced: bool = True) -> Path:
    """Online backup with SQLite's backup API (consistent while writes go on).

    Written to ``dest.part`` created 0600, renamed into place when complete; on any failure (a full
    disk) the partial file is removed. The folder is the caller's: a missing one is created 0700, an
    existing one keeps its mode (``backup --to /tmp/x.db`` must not make a shared 1777 /tmp private);
    the gateway's own folders are made 0700 by their owners (:class:`gateway.daemon.Backups`,
    :meth:`gateway.store.Store.open`).

    On its own read-only connection holding one read transaction (a WAL snapshot) for the whole copy:
    the writer (door decisions) goes on committing beside it, and the copy is the database as of its
    start. Without that held snapshot a copy in steps restarts from the first page whenever another
    connection commits between two steps: on a busy site's large database it never finished (a 216 MB
    file with a commit every 50 ms: 900 steps in 30 s, still 92% to go). It goes in steps of
    :data:`BACKUP_STEP_PAGES`, each handed to the kernel's writeback and (``paced``, the default) followed by a
    short pause, so the door decisions' own fsyncs never queue behind the copy's; one fsync at the end."""
    dest.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        tmp.unlink(missing_ok=True)
        create_private(tmp)
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=busy_timeout_s, isolation_level=None)
        try:
            src.execute("BEGIN")
            src.execute("SELECT COUNT(*) FROM sqlite_schema").fetchone()  # the snapshot starts here
            _copy_in_steps(src, tmp, BACKUP_PAUSE_S if paced else 0.0)
            src.execute("COMMIT")
        finally:
            src.close()
        secure_file(tmp)
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _copy_in_steps(src: sqlite3.Connection, tmp: Path, pause_s: float) -> None:
    out = sqlite3.connect(str(tmp))
    fd = os.open(tmp, os.O_RDONLY)
    try:
        out.execute("PRAGMA journal_mode=OFF")  # a failed copy is deleted whole: no rollback journal per step
        out.execute("PRAGMA synchronous=OFF")   # written back step by step below, fsynced once at the end

        def progress(status: int, remaining: int, total: int) -> None:
            # start writing this step's pages now, without waiting (and drop them from the cache: a night's
            # copy of the whole database must not push the live one out); the fsync at the end is then short
            if _fadvise is not None:
                _fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            if pause_s:
                time.sleep(pause_s)

        src.backup(out, pages=BACKUP_STEP_PAGES, progress=progress)
        out.close()
        os.fsync(fd)
    finally:
        os.close(fd)
        out.close()


def newest_backup(backup_dir: Path | None) -> Path | None:
    """The most recent complete backup (any kind), or None."""
    if backup_dir is None or not Path(backup_dir).is_dir():
        return None
    files = [p for p in Path(backup_dir).glob("*.db") if p.is_file()]
    return max(files, key=lambda p: p.stat().st_mtime) if files else None


def sweep_partial_backups(backup_dir: Path) -> int:
    """Remove ``*.part`` files a crash or a full disk left in the backup folder."""
    n = 0
    if backup_dir.is_dir():
        for part in backup_dir.glob("*.part"):
            part.unlink(missing_ok=True)
            n += 1
    return n
