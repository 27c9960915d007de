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
    assert res["backlog_drain_events_per_s"] > 0 and "backlog_reconnect_s" in res


def test_bench_uplink_runs_with_no_backlog() -> None:
    res = bench_uplink.main(sustained=0, backlog=0, cmp_n=100, repeats=1)
    assert res["lost"] == 0 and res["backlog_events"] == 0 and "backlog_drain_s" not in res
    assert res["vs_mosquitto_pub"]["ratio_median"] > 0


def test_bench_year_runs_tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    import bench_year

    for name, value in (("DAYS", 3), ("METERS", 20), ("EVENTS", 300), ("CARDS", 2000), ("BILLING_YEARS", 1),
                        ("AUDIT", 24), ("SWIPES", 40), ("HTTP_N", 2), ("PAGES", 2)):
        monkeypatch.setattr(bench_year, name, value)
    res = bench_year.main()
    dec = res["decision"]
    assert dec["quiet"]["n"] == 40 and dec["quiet_after"]["n"] == 40
    assert dec["prune"]["job"]["readings"] == 20 * 96 and dec["prune"]["job"]["events"] > 0  # the first day
    assert dec["snapshot"]["job"]["ok"] is True
    assert res["at_3_days"]["rows"]["readings"] == 3 * 20 * 96
    assert res["daemon"]["events_paging"]["rows"] > 0 and res["daemon"]["readings_paging"]["rows"] > 0
    assert res["daemon"]["restart_to_ready_s"] > 0 and res["daemon"]["query_plans"]["full_scans"] == []


def test_bench_alarms_runs_tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """The alarm bench at a tiny size: every block ACKed, and part 3's CPU split (daemon by thread, panels) there."""
    import bench_alarms

    for name, value in (("RATE", 40.0), ("DURATION", 0.5), ("LAT_PANELS", 2), ("PANELS", 3), ("BLOCKS", 30),
                        ("PANELS10", 3), ("BLOCKS10", 60)):
        monkeypatch.setattr(bench_alarms, name, value)
    res = bench_alarms.main()
    ten = res["ten_panels_full_speed"]
    assert ten["answers"] == {"ACK": 60} and res["throughput"]["answers"] == {"ACK": 30}
    assert set(ten["daemon_threads_cpu_ms_per_block"]) >= {"main", "system_all_threads"}
    assert ten["daemon_cpu_ms_per_block"] > 0 and ten["panels_cpu_ms_per_block"] >= 0
    # the VM's speed beside it, bare: the fsync of a round's frames and the store's hand-off, before and after
    ref = ten["machine_reference"]
    assert ref["before"]["fsync_17_frames"]["n"] == 300 and ref["after"]["wakeup_round_trip"]["n"] == 2000
    assert ref["fsync_ceiling_blocks_per_s"] > 0 and 0 < ref["of_fsync_ceiling"]


def test_bench_memory_runs_tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    import bench_memory

    for name, value in (("IDLE_S", 0.2), ("SAMPLES", 1), ("RUNS", 1)):
        monkeypatch.setattr(bench_memory, name, value)
    res = bench_memory.main()
    daemon = res["daemon"]
    assert daemon["devices"] >= 8  # the readers, meters and alarm receivers configured are known devices
    assert set(daemon["console_visit_status"].values()) <= {200, 303} and daemon["openapi_status"] == 200
    assert daemon["sqlite_connections"] >= 1 and daemon["threads"] >= 2
    assert res["imports"]["all_imports_mb"] > res["imports"]["interpreter_mb"] > 0
    assert "pydantic.v1" in " ".join(res["imports"]["skipped_mb"])  # what the stand-ins save is measured
