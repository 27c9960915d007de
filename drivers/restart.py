"""Keeping a driver thread alive: a crash is reported and the driver restarted with backoff.

Blocking serial I/O runs in threads, outside the asyncio supervisor; this is their supervisor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from drivers.reasons import DRIVER_CRASHED, Reason


@dataclass
class Backoff:
    """Waits between restarts: ``min_s``, doubling up to ``max_s``; back to ``min_s`` after a run of ``healthy_s``."""

    min_s: float = 1.0
    max_s: float = 60.0
    healthy_s: float = 60.0


def run_with_restarts(serve: Callable[[], None], *, stop: threading.Event, on_crash: Callable[[Reason], None],
                      what: str, log: logging.Logger, stats: dict[str, int],
                      rebuild: Callable[[], None] | None = None, backoff: Backoff | None = None) -> None:
    """Run ``serve()`` until it returns or ``stop`` is set.

    An exception from ``serve`` (or from ``rebuild``, which prepares every restart) is logged with its
    traceback, counted in ``stats["crashes"]`` and handed to ``on_crash(reason)`` (the driver reports its
    devices offline); then the driver waits 1, 2, 4 … ``backoff.max_s`` seconds, back to the minimum once
    a run lasted ``backoff.healthy_s``. ``stop`` interrupts the wait at once.
    """
    limits = backoff or Backoff()
    wait = limits.min_s
    first = True
    while not stop.is_set():
        started = time.monotonic()
        try:
            if not first and rebuild is not None:
                rebuild()
            first = False
            serve()
            return
        except Exception as exc:
            first = False
            if time.monotonic() - started >= limits.healthy_s:
                wait = limits.min_s
            stats["crashes"] = stats.get("crashes", 0) + 1
            reason = DRIVER_CRASHED(error=f"{type(exc).__name__}: {exc}", seconds=wait)
            log.exception("%s: %s", what, reason)
            try:
                on_crash(reason)
            except Exception:  # reporting must not end the thread either
                log.exception("%s: could not report the crash", what)
        if stop.wait(wait):
            return
        wait = min(wait * 2, limits.max_s)
