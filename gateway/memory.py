"""Giving freed heap back to the operating system, so RSS says what the daemon really holds."""

from __future__ import annotations

import ctypes


def release_memory() -> None:
    """Let glibc return freed heap pages: after a big snapshot (a 15 MB JSON parsed and freed).

    No gc.collect(): what is freed at these points is acyclic and already gone by reference counting,
    and a full collection would pause the loop (and the doors) for a noticeable time.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
