"""What every benchmark shares: latency percentiles (ms from samples in seconds) and the results file."""

from __future__ import annotations

import json
import statistics
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
