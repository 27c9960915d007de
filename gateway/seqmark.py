"""The seq high-water mark, kept outside the database so a lost WAL or a restore cannot rewind seq unnoticed.

Why: ``seq`` is ``MAX(seq)+1`` in the database. If the database loses its newest rows -- a WAL deleted
or truncated after a crash, an older backup restored -- the next events would get seq values central
already holds under other ids, and the loss would be silent. Two small files beside the database
remember what seq has reached:

* ``<db>.seq-used``: the highest committed seq, rewritten in place after every commit batch (one
  ``pwrite`` of 64 bytes, no fsync: it survives kill -9 because the page cache does, at ~2 us a batch).
  Written before any caller or the uplink hears of the commit, so every seq central can have is in it.
* ``<db>.seq-reserved``: a ceiling reserved ahead in blocks of :data:`BLOCK`, written to a temporary
  file, fsynced and renamed, the folder fsynced, *before* a seq above the old ceiling is used -- one
  fsync per 1,000 events, none per event, done ahead on a thread of its own (the writer waits only if
  it catches up with it). It covers what page-cache-only writes cannot: a power cut
  under ``[store] synchronous = "normal"`` (the boot id changed and the last stop was not clean) --
  then seq continues above the reserved ceiling.

At start the event log compares these with the database; if the database is behind, it continues
above the mark and records ``store.rewound {from_seq, to_seq, cause}`` (see :mod:`gateway.events`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

#: seq values reserved ahead per fsync
BLOCK = 1000
_RECORD = 64


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()[:36]
    except OSError:
        return "unknown"


class SeqMark:
    def __init__(self, db_path: Path, *, synchronous: str = "full") -> None:
        self.reserved_path = db_path.with_name(db_path.name + ".seq-reserved")
        self.used_path = db_path.with_name(db_path.name + ".seq-used")
        self.restored_path = db_path.with_name(db_path.name + ".restored")
        self.synchronous = synchronous.lower()
        self.boot = boot_id()
        self.reserved = _read_int(self.reserved_path)
        used, self._last_boot, self._last_clean = self._read_used()
        self.used_on_disk = used
        self.used = used
        self._fd: int | None = None
        self._ahead: threading.Thread | None = None

    def _read_used(self) -> tuple[int, str, bool]:
        try:
            parts = self.used_path.read_text(encoding="ascii").split()
            return int(parts[0]), parts[1], parts[2] == "1"
        except (OSError, ValueError, IndexError):
            return 0, "", True

    def highest_used(self) -> int:
        """The highest seq that may have left the gateway before this start."""
        high = self.used_on_disk
        power_cut = self._last_boot not in ("", self.boot) and not self._last_clean
        if power_cut and self.synchronous == "normal":
            high = max(high, self.reserved)
        return high

    def take_restored(self) -> str | None:
        """The backup ``estate-gateway restore`` put in place since the last start (once)."""
        try:
            text = self.restored_path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        self.restored_path.unlink(missing_ok=True)
        return text or "a backup"

    # ------------------------------------------------------------------ writer thread
    def reserve(self, seq: int) -> None:
        """Make sure ``seq`` is under the fsynced ceiling before it is used.

        The next block is reserved ahead, on a thread of its own, once half of this one is used: its
        fsyncs (milliseconds each on a busy disk) no longer stop the writer in the middle of a batch.
        The writer waits for them only when it reaches the ceiling first."""
        if seq > self.reserved:
            self._wait_ahead()
            if seq > self.reserved:
                self._write_ceiling(seq + BLOCK)
        if seq > self.reserved - BLOCK // 2 and (self._ahead is None or not self._ahead.is_alive()):
            self._ahead = threading.Thread(target=self._reserve_ahead, args=(self.reserved + BLOCK,),
                                           name="seq-reserve", daemon=True)
            self._ahead.start()

    def _reserve_ahead(self, ceiling: int) -> None:
        with contextlib.suppress(OSError):   # then the writer reserves itself when it gets there (and fails there)
            self._write_ceiling(ceiling)

    def _wait_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead.join()

    def _write_ceiling(self, ceiling: int) -> None:
        """One writer of the file at a time: the thread ahead, or the caller after waiting for it."""
        tmp = self.reserved_path.with_name(self.reserved_path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"{ceiling}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.reserved_path)
        _fsync_dir(self.reserved_path.parent)
        self.reserved = max(self.reserved, ceiling)   # only once it is on disk

    def note_used(self, seq: int, *, clean: bool = False) -> None:
        """Remember ``seq`` as committed (after each commit batch; ``clean`` with an fsync at close)."""
        if seq < self.used and not clean:
            return
        self.used = max(seq, self.used)
        if self._fd is None:
            self._fd = os.open(self.used_path, os.O_RDWR | os.O_CREAT, 0o600)
        record = f"{self.used} {self.boot} {1 if clean else 0}".ljust(_RECORD - 1) + "\n"
        os.pwrite(self._fd, record.encode("ascii"), 0)
        if clean:
            os.fsync(self._fd)

    def close(self) -> None:
        self._wait_ahead()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
