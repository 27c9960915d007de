"""What every benchmark shares: latency percentiles (ms from samples in seconds) and the results file."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import statistics
import threading
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile of ``values`` (seconds), in ms, nearest-rank (no interpolation: a real sample)."""
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * p / 100))] * 1000, 3)


def summary(values: list[float]) -> dict[str, float]:
    """n, p50/p95/p99/max/mean in ms: what every benchmark table reports."""
    return {"n": len(values), "p50_ms": pct(values, 50), "p95_ms": pct(values, 95), "p99_ms": pct(values, 99),
            "max_ms": round(max(values) * 1000, 3), "mean_ms": round(statistics.mean(values) * 1000, 3)}


def write_results(name: str, results: dict[str, Any]) -> Path:
    """``bench/results/<name>.json`` (what `make bench` collects); returns its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    return out


def fsync_round(directory: Path, frames: int = 17, rounds: int = 300) -> dict[str, float]:
    """The disk's part of a commit, bare: ``frames`` WAL-sized frames (24 + 4,096 bytes) written with a ``pwrite``
    each and one ``fdatasync``, ``rounds`` times, in ``directory``. An alarm round's COMMIT writes ~17 frames."""
    path = directory / ".fsync-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        frame = os.urandom(4120)
        os.pwrite(fd, frame * 256, 0)
        os.fsync(fd)
        times = []
        for i in range(rounds):
            t = time.perf_counter()
            for k in range(frames):
                os.pwrite(fd, frame, ((i * frames + k) % 256) * 4120)
            os.fdatasync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        path.unlink()
    return summary(times)


def wakeup_round_trip(rounds: int = 2000) -> dict[str, float]:
    """The store's hand-off, bare: the event loop queues a job for a thread blocked on a queue, the thread answers
    with ``call_soon_threadsafe`` (two cross-thread wake-ups, as in every write the gateway commits)."""

    async def run() -> list[float]:
        loop = asyncio.get_running_loop()
        jobs: queue.SimpleQueue[asyncio.Future[None] | None] = queue.SimpleQueue()

        def worker() -> None:
            while (fut := jobs.get()) is not None:
                loop.call_soon_threadsafe(fut.set_result, None)

        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            fut = loop.create_future()
            jobs.put(fut)
            await fut
            times.append(time.perf_counter() - t)
        jobs.put(None)
        thread.join()
        return times

    return summary(asyncio.run(run()))
