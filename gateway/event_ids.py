"""Event ids: random (version 4) UUID strings, cheaper than ``uuid.uuid4()`` on the recording path.

Why a pool: every event gets an id in the store's writer thread, and ``os.urandom(16)`` per id is a
system call per event -- under load an eighth of the writer's time when events arrive by the
thousand (``bench/bench_uplink.py``). The bytes are the OS's all the same, drawn 4 KiB at a time.
"""

from __future__ import annotations

import os
import threading


class _Randomness:
    """The OS's random bytes drawn 4 KiB at a time: one system call per 256 event ids, not one per id
    (under load it was an eighth of the writer thread's time). Dropped in a forked child."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._pos = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool, self._pos = b"", 0

    def take16(self) -> bytes:
        with self._lock:
            if self._pos + 16 > len(self._pool):
                self._pool, self._pos = os.urandom(4096), 0
            pos, pool = self._pos, self._pool
            self._pos = pos + 16
        return pool[pos:pos + 16]


_random = _Randomness()


def new_event_id() -> str:
    """A random (version 4) UUID string; cheaper than uuid.uuid4() on the hot path."""
    b = bytearray(_random.take16())
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


__all__ = ["new_event_id"]
