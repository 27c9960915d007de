"""Giving freed heap back to the operating system, so RSS says what the daemon really holds.

ctypes is imported when memory is first released, not at start: an idle daemon that never applied a card
snapshot does not hold it (docs/hardening.md, "Idle memory: what the 60 MB are").
"""

from __future__ import annotations


def release_memory() -> None:
    """Let glibc return freed heap pages: after a big snapshot (a 15 MB JSON parsed and freed).

    No gc.collect(): what is freed at these points is acyclic and already gone by reference counting,
    and a full collection would pause the loop (and the doors) for a noticeable time.
    """
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
