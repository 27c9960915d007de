"""The duty-room metering rules, pure (no store, no bus): no hot water (DOMAIN.md: a technician on site within
15 minutes of a hot-water fault), valve read-back against the commanded state, the quarter's billing window and
why a billing reading is missing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.profile import parse_profile
from gateway.config import MeterConfig, MeteringSection
from gateway.metering import MeterRuntime
from gateway.metering.rules import (
    HOT_WATER_FAULT_DEADLINE_S,
    NO_HOT_WATER,
    billing_window,
    missing_reason,
    no_hot_water,
    no_hot_water_detect_s,
    parse_quarter,
    supply_floor,
    valve_check,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
PROFILE = parse_profile("p", {"supply_temp_field": "temp_c", "supply_floor_c": 40.0, "fields": {
    "total_m3": {"address": 0}, "flow_m3h": {"address": 2}, "temp_c": {"address": 4}},
    "valve": {"address": 28}})
NOFLOW = parse_profile("q", {"supply_temp_field": "temp_c", "supply_floor_c": 40.0, "fields": {
    "total_m3": {"address": 0}, "temp_c": {"address": 4}}})


def meter(profile=PROFILE, **cfg) -> MeterRuntime:
    return MeterRuntime(cfg=MeterConfig(id="m", bus="b", device_id=1, profile=profile.id, unit="3-1-0201", **cfg),
                        profile=profile, plan=())


def run(m: MeterRuntime, samples: list[tuple[float, float | None, float]], limits: MeteringSection | None = None
        ) -> list[tuple[float, str]]:
    """(seconds since T0, flow, temp) -> [(seconds, raise|clear)]."""
    limits = limits or MeteringSection(no_hot_water_after_s=120, no_hot_water_clear_c=3)
    out = []
    for s, flow, temp in samples:
        values = {"total_m3": 1.0, "temp_c": temp} if flow is None else {"total_m3": 1.0, "flow_m3h": flow, "temp_c": temp}
        got = no_hot_water(m, values, T0 + timedelta(seconds=s), limits)
        if got is not None:
            out.append((s, got[0]))
    return out


def test_no_hot_water_is_raised_well_within_15_minutes_of_going_cold_and_cleared_on_recovery() -> None:
    m = meter()
    # polled every 60 s; the supply goes cold between the samples at 0 and 60 s
    seq = [(0, 0.3, 55.0)] + [(60 * i, 0.3, 31.0) for i in range(1, 10)] + [(600, 0.3, 52.0), (660, 0.3, 53.0)]
    got = run(m, seq)
    assert got == [(180, "raise"), (660, "clear")]
    assert 180 <= no_hot_water_detect_s(60, 120) <= HOT_WATER_FAULT_DEADLINE_S
    assert NO_HOT_WATER not in m.faults


def test_the_raise_carries_when_it_started_and_the_floor() -> None:
    m = meter()
    limits = MeteringSection(no_hot_water_after_s=60)
    assert no_hot_water(m, {"flow_m3h": 0.2, "temp_c": 30.0}, T0, limits) is None
    change, details = no_hot_water(m, {"flow_m3h": 0.2, "temp_c": 29.5}, T0 + timedelta(seconds=60), limits)
    assert change == "raise" and details == {"kind": "no_hot_water", "temp_c": 29.5, "floor_c": 40.0,
                                             "since": "2026-12-01T20:00:00.000Z"}
    assert m.faults == {"no_hot_water": "2026-12-01T20:00:00.000Z"}


def test_one_cold_sample_or_one_warm_sample_never_flaps_it() -> None:
    m = meter()
    warm_cold = [(60 * i, 0.3, 55.0 if i % 2 else 20.0) for i in range(20)]
    assert run(m, warm_cold) == []
    m = meter()
    cold = [(60 * i, 0.3, 30.0) for i in range(5)]
    assert run(m, cold) == [(120, "raise")]
    # recovering: a warm sample between cold ones, and samples inside the hysteresis band, do not clear it
    more = [(300, 0.3, 50.0), (360, 0.3, 30.0), (420, 0.3, 41.0), (480, 0.3, 42.5), (540, 0.3, 41.0)]
    assert run(m, more) == []
    assert run(m, [(600, 0.3, 43.0), (660, 0.3, 44.0)]) == [(660, "clear")]


def test_no_flow_and_a_valve_closed_on_purpose_are_not_judged() -> None:
    m = meter()
    # nobody draws at night: the water standing in the meter cools, no fault
    assert run(m, [(60 * i, 0.0, 18.0) for i in range(30)]) == []
    # a meter without a flow register: every sample counts
    assert run(meter(NOFLOW), [(60 * i, None, 18.0) for i in range(4)]) == [(120, "raise")]
    # the supply was stopped on purpose (arrears): not a fault
    m = meter()
    m.valve = "closed"
    assert run(m, [(60 * i, 0.3, 18.0) for i in range(10)]) == []
    limits = MeteringSection(no_hot_water_needs_flow=False, no_hot_water_after_s=0)
    assert run(meter(), [(0, 0.0, 18.0), (60, 0.0, 18.0)], limits) == [(60, "raise")]


def test_the_floor_comes_from_the_meter_else_the_profile_and_zero_turns_it_off() -> None:
    assert supply_floor(meter()) == 40.0
    assert supply_floor(meter(supply_floor_c=45.0)) == 45.0
    assert supply_floor(meter(supply_floor_c=0)) is None
    assert run(meter(supply_floor_c=0), [(60 * i, 0.3, 5.0) for i in range(5)]) == []
    plain = parse_profile("r", {"fields": {"total_m3": {"address": 0}, "temp_c": {"address": 2}}})
    assert supply_floor(meter(plain, supply_floor_c=45.0)) is None  # no supply field: nothing to watch
    assert run(meter(supply_floor_c=50.0), [(0, 0.3, 45.0), (60, 0.3, 45.0), (120, 0.3, 45.0)]) == [(120, "raise")]


@pytest.mark.parametrize(("poll_s", "after_s", "worst"), [(60, 120, 180), (60, 0, 120), (10, 120, 130),
                                                          (300, 120, 600), (450, 120, 900), (600, 120, 1200)])
def test_worst_case_detection_time(poll_s: float, after_s: float, worst: float) -> None:
    assert no_hot_water_detect_s(poll_s, after_s) == worst


@given(st.lists(st.tuples(st.floats(0, 2), st.floats(-20, 95)), max_size=60), st.floats(0, 600), st.floats(0, 10))
def test_no_hot_water_alternates_raise_and_clear_and_only_after_enough_cold(
        samples: list[tuple[float, float]], after_s: float, clear_c: float) -> None:
    m = meter()
    limits = MeteringSection(no_hot_water_after_s=after_s, no_hot_water_clear_c=clear_c)
    changes = run(m, [(60 * i, flow, temp) for i, (flow, temp) in enumerate(samples)], limits)
    kinds = [c for _, c in changes]
    assert kinds == ["raise", "clear"] * (len(kinds) // 2) + (["raise"] if len(kinds) % 2 else [])
    assert (NO_HOT_WATER in m.faults) == (len(kinds) % 2 == 1)


def test_valve_mismatch_needs_two_reads_and_clears_at_the_first_match() -> None:
    m = meter()
    assert valve_check(m, "open", 1, T0) is None          # never commanded here: nothing to compare
    m.valve = "closed"
    assert valve_check(m, "open", 1, T0) is None          # one read (a valve still moving)
    assert valve_check(m, "closed", 2, T0) is None
    assert valve_check(m, "open", 1, T0) is None
    assert valve_check(m, "open", 1, T0 + timedelta(seconds=60)) == "raise"
    assert m.valve_mismatch == "2026-12-01T20:01:00.000Z" and m.valve_read == "open" and m.valve_raw == 1
    assert valve_check(m, "unknown", 5, T0) is None       # still a mismatch, raised once
    assert valve_check(m, "closed", 2, T0) == "clear"
    assert m.valve_mismatch is None


def test_quarters_windows_and_why_a_billing_reading_is_missing() -> None:
    assert parse_quarter("2026Q4") == "2026Q4" and parse_quarter(" 2027Q1 ") == "2027Q1"
    for bad in ("2026Q5", "2026Q0", "2026q4", "26Q4", "1999Q4", "2026Q4x", "", "2026-Q4", "２０２６Q4"):
        assert parse_quarter(bad) is None, bad
    start, end = billing_window("2026Q4", SHANGHAI)
    assert (start, end) == (datetime(2026, 12, 25, tzinfo=SHANGHAI), datetime(2026, 12, 31, tzinfo=SHANGHAI))
    assert billing_window("2027Q1", SHANGHAI)[0] == datetime(2027, 3, 25, tzinfo=SHANGHAI)
    w = (start, end)
    before, inside, after = datetime(2026, 12, 1, tzinfo=SHANGHAI), datetime(2026, 12, 27, tzinfo=SHANGHAI), \
        datetime(2027, 1, 3, tzinfo=SHANGHAI)
    assert missing_reason(w, after, state="error", ever_read=False) == "profile_error"
    assert missing_reason(w, before, state="online", ever_read=True) == "window_not_started"
    assert missing_reason(w, inside, state="offline", ever_read=True) == "window_open"
    assert missing_reason(w, after, state="pending", ever_read=False) == "never_read"
    assert missing_reason(w, after, state="offline", ever_read=True) == "offline"
    assert missing_reason(w, after, state="online", ever_read=True) == "no_reading_in_window"
