"""drivers.restart: a crashed driver waits before it restarts, and ``stop`` ends that wait at once.

The wait here is an hour: the thread ending (within a generous bound) shows the stop interrupted it,
without timing anything."""

from __future__ import annotations

import logging
import threading

from drivers.restart import Backoff, run_with_restarts


def test_stop_interrupts_the_wait_before_a_restart() -> None:
    stop, crashed = threading.Event(), threading.Event()
    reasons: list[str] = []
    stats: dict[str, int] = {}

    def serve() -> None:
        raise RuntimeError("broken")

    def on_crash(reason: str) -> None:
        reasons.append(reason)
        crashed.set()

    worker = threading.Thread(target=run_with_restarts, daemon=True, kwargs={
        "serve": serve, "stop": stop, "on_crash": on_crash, "what": "test", "log": logging.getLogger("test.restart"),
        "stats": stats, "backoff": Backoff(min_s=3600, max_s=3600)})
    worker.start()
    assert crashed.wait(30)
    stop.set()
    worker.join(30)
    assert not worker.is_alive(), "stop did not end the hour's wait"
    assert stats["crashes"] == 1 and reasons == ["driver crashed: RuntimeError: broken; restarting in 3600 s"]
