"""The benches stay runnable: each one run here at a tiny size (its figures are never asserted; `make bench`
runs them at full size and writes bench/results/)."""

from __future__ import annotations

import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import bench_uplink  # noqa: E402

pytestmark = pytest.mark.timeout(180)


def test_bench_uplink_runs_small_with_any_backlog_and_reports_the_ratio() -> None:
    # a backlog under 100,000 used to record nothing and wait forever
    res = bench_uplink.main(sustained=300, backlog=1_234, cmp_n=200, repeats=1)
    assert res["lost"] == 0
    assert res["backlog_events"] == 1_234
    cmp = res["vs_mosquitto_pub"]
    assert len(cmp["ratios"]) == 1 and cmp["ratio_median"] > 0
