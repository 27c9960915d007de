"""The pure metering rules: plausibility (reverse with documented rollover, spike, stuck, leak), the billing
calendar, poll backoff. No store, no bus, no clock: fast."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from drivers.modbus.profile import parse_profile
from gateway.config import MeterConfig, MeteringSection
from gateway.metering import MeterRuntime, billing_period, last_window_end
from gateway.metering.rules import goes_offline, non_finite, plausibility, poll_backoff

PROFILE = parse_profile("p", {"rollover_m3": 99999.0, "fields": {
    "total_m3": {"address": 0, "type": "float32"}, "flow_m3h": {"address": 2, "type": "float32"}}})
NOFLOW = parse_profile("q", {"fields": {"total_m3": {"address": 0, "type": "float32"}}})
T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


SHANGHAI = ZoneInfo("Asia/Shanghai")


def setup(profile=PROFILE) -> tuple[MeteringSection, MeterRuntime]:
    limits = MeteringSection(leak_hours=6, spike_m3=5)
    m = MeterRuntime(cfg=MeterConfig(id="m", bus="b", device_id=1, profile="p", unit="1-1"), profile=profile, plan=())
    return limits, m


def feed(limits: MeteringSection, m: MeterRuntime, seq: list[tuple[float, float | None, float]]) -> list[list[str]]:
    """(total, flow, hours since T0) -> anomalies started at each reading."""
    out = []
    for total, flow, h in seq:
        values = {"total_m3": total} if flow is None else {"total_m3": total, "flow_m3h": flow}
        out.append([k for k, _ in plausibility(m, values, T0 + timedelta(hours=h), limits)])
    return out


def test_normal_consumption_is_quiet() -> None:
    limits, m = setup()
    assert feed(limits, m, [(10.0, 0.0, 0), (10.2, 0.3, 1), (10.5, 0.0, 2), (10.5, 0.0, 3)]) == [[], [], [], []]


def test_reverse_is_reported_once_and_rollover_is_not_reverse() -> None:
    limits, m = setup()
    assert feed(limits, m, [(100.0, 0, 0), (99.0, 0, 1), (98.5, 0, 2), (98.6, 0, 3)]) == [[], ["reverse"], [], []]
    limits, m = setup()
    assert feed(limits, m, [(99998.5, 0, 0), (0.7, 0, 1)]) == [[], []]


def test_spike() -> None:
    limits, m = setup()
    assert feed(limits, m, [(100.0, 0, 0), (180.0, 0, 1), (180.1, 0, 2)]) == [[], ["spike"], []]
    assert m.anomalies == {}


def test_leak_after_continuous_flow_for_hours() -> None:
    limits, m = setup()
    seq = [(100.0 + 0.05 * h, 0.05, h) for h in range(0, 8)]
    got = feed(limits, m, seq)
    assert got[6] == ["leak"] and sum(got, []) == ["leak"]
    assert "leak" in m.anomalies
    feed(limits, m, [(100.5, 0.0, 9)])
    assert "leak" not in m.anomalies


def test_leak_without_a_flow_register_uses_the_total() -> None:
    limits, m = setup(NOFLOW)
    got = feed(limits, m, [(100.0 + 0.01 * h, None, h) for h in range(0, 9)])
    assert ["leak"] in got


def test_stuck_register_while_flow_is_reported() -> None:
    limits, m = setup()
    got = feed(limits, m, [(100.0, 0.2, 0), (100.0, 0.2, 0.25), (100.0, 0.2, 0.5), (100.0, 0.2, 0.75)])
    assert got == [[], [], ["stuck"], []]
    feed(limits, m, [(100.3, 0.2, 1.0)])
    assert "stuck" not in m.anomalies


def test_anomaly_details_and_the_order_they_are_checked_in() -> None:
    limits, m = setup()
    feed(limits, m, [(100.0, 0.2, 0)])
    # down by 90 while flowing: reverse, then stuck is not (the register moved), leak not yet
    got = plausibility(m, {"total_m3": 10.0, "flow_m3h": 0.2}, T0 + timedelta(hours=1), limits)
    assert got == [("reverse", {"from_m3": 100.0, "to_m3": 10.0})]
    got = plausibility(m, {"total_m3": 20.0, "flow_m3h": 0.0}, T0 + timedelta(hours=2), limits)
    assert got == [("spike", {"from_m3": 10.0, "to_m3": 20.0})]
    assert m.anomalies == {"spike": "2026-11-23T02:00:00.000Z"}


def test_a_reading_without_a_total_keeps_the_previous_one() -> None:
    limits, m = setup()
    feed(limits, m, [(100.0, 0.0, 0)])
    assert plausibility(m, {"flow_m3h": 0.0}, T0 + timedelta(hours=1), limits) == []
    assert m.prev_total == 100.0 and m.prev_at == T0


def test_billing_window_calendar() -> None:
    assert billing_period(datetime(2026, 12, 25, 0, 0, tzinfo=SHANGHAI)) == "2026Q4"
    assert billing_period(datetime(2026, 12, 30, 23, 59, tzinfo=SHANGHAI)) == "2026Q4"
    assert billing_period(datetime(2026, 12, 31, 0, 0, tzinfo=SHANGHAI)) is None
    assert billing_period(datetime(2026, 12, 24, 23, 59, tzinfo=SHANGHAI)) is None
    assert billing_period(datetime(2026, 6, 27, tzinfo=SHANGHAI)) == "2026Q2"
    assert billing_period(datetime(2026, 5, 27, tzinfo=SHANGHAI)) is None
    assert last_window_end(datetime(2027, 1, 2, tzinfo=SHANGHAI)) == ("2026Q4", datetime(2026, 12, 31, tzinfo=SHANGHAI))
    assert last_window_end(datetime(2026, 7, 1, 0, 0, 1, tzinfo=SHANGHAI))[0] == "2026Q2"
    assert last_window_end(datetime(2026, 2, 1, tzinfo=SHANGHAI))[0] == "2025Q4"


def test_poll_backoff_doubles_up_to_the_cap_but_never_below_the_period() -> None:
    assert [poll_backoff(10, n, 300) for n in (1, 2, 3, 6, 20)] == [10, 20, 40, 300, 300]
    assert poll_backoff(600, 3, 300) == 600


def test_offline_is_reported_once_when_misses_reach_the_limit() -> None:
    _, m = setup()
    m.misses = 2
    assert not goes_offline(m, 3)
    m.misses = 3
    assert goes_offline(m, 3)
    m.online = False
    m.misses = 4
    assert not goes_offline(m, 3)


def test_non_finite_values_are_named() -> None:
    assert non_finite({"total_m3": 1.5, "flow_m3h": float("nan"), "temp_c": float("inf"), "n": 3}) == [
        "flow_m3h", "temp_c"]
