"""Metering rules: plausibility, "no hot water", valve read-back, the billing calendar, poll backoff. Pure.

Every function here decides from its arguments alone (and the meter's in-memory trend,
which :func:`plausibility` updates), so the rules are tested without a store, a bus or
a clock (``tests/metering/test_rules.py``).

Plausibility checks a reading against the meter's previous one, in this order:

1. **reverse** -- the total went down by more than ``reverse_tolerance_m3``, unless it
   is the profile's documented register rollover (high before, low after);
2. **spike** -- the total rose by more than ``spike_m3`` between two readings;
3. **stuck** -- the meter reports flow but the total does not move, once the flow
   should have counted ``STUCK_EXPECTED_M3``;
4. **leak** -- water has flowed continuously for ``leak_hours`` (from the flow register,
   or from a rising total when the meter has none).

Each kind is reported once per episode: only anomalies that *start* with a reading are returned.

**No hot water** (:func:`no_hot_water`; DOMAIN.md: "a hot-water fault must have a technician
on site within 15 minutes"): the supply temperature below the meter's floor in at least
``NO_HOT_WATER_SAMPLES`` consecutive samples spanning ``no_hot_water_after_s`` raises the
fault; it clears after as many samples at least ``no_hot_water_clear_c`` above the floor
(hysteresis: one cold or one warm sample never flaps it). Samples taken while no water
flows (the pipe at the meter cools when nobody draws) or while the valve is closed on
purpose are not judged. :func:`no_hot_water_detect_s` is the worst case from the water
going cold to the fault, which check-config holds within the 15 minutes.

**Valve read-back** (:func:`valve_check`): the valve state read with every poll against the
commanded one; ``VALVE_MISMATCH_READS`` reads in a row that differ (a valve turned by hand,
a meter that closed itself) raise the mismatch, the first matching read clears it.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal

from gateway.config import MeteringSection
from gateway.events import format_ts
from gateway.metering.models import MeterRuntime

QUARTER_END_MONTHS = (3, 6, 9, 12)
BILLING_FIRST_DAY, BILLING_LAST_DAY = 25, 30
QUARTER = re.compile(r"([0-9]{4})Q([1-4])")
#: a frozen total while flowing is "stuck" once this much volume should have been counted
STUCK_EXPECTED_M3 = 0.1
NO_HOT_WATER = "no_hot_water"
#: consecutive samples that raise (cold) or clear (warm) the no-hot-water fault
NO_HOT_WATER_SAMPLES = 2
#: DOMAIN.md: a hot-water fault must have a technician on site within 15 minutes
HOT_WATER_FAULT_DEADLINE_S = 15 * 60
VALVE_MISMATCH_READS = 2

Anomaly = tuple[str, dict[str, Any]]
Change = Literal["raise", "clear"]


# ---------------------------------------------------------------------- billing calendar
def billing_period(local: datetime) -> str | None:
    """``2026Q4`` when ``local`` (site time) is inside a quarter's billing window, else None."""
    if local.month in QUARTER_END_MONTHS and BILLING_FIRST_DAY <= local.day <= BILLING_LAST_DAY:
        return f"{local.year}Q{local.month // 3}"
    return None


def last_window_end(local: datetime) -> tuple[str, datetime]:
    """The most recent billing window that has ended: (period, end in site time)."""
    year, month = local.year, local.month
    for _ in range(5):
        q_month = ((month - 1) // 3) * 3 + 3
        end = local.replace(year=year, month=q_month, day=BILLING_LAST_DAY, hour=0, minute=0, second=0,
                            microsecond=0) + timedelta(days=1)
        if end <= local:
            return f"{year}Q{q_month // 3}", end
        month = q_month - 3
        if month <= 0:
            month += 12
            year -= 1
    raise AssertionError("unreachable")


def parse_quarter(text: str) -> str | None:
    """``2026Q4`` (years 2000-2999) as given, or None when it is not a quarter."""
    m = QUARTER.fullmatch(text.strip()) if isinstance(text, str) else None
    return m.group(0) if m and 2000 <= int(m.group(1)) <= 2999 else None


def billing_window(period: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """The quarter's billing window in site time: [25th 00:00, 31st 00:00) of its last month."""
    year, q = int(period[:4]), int(period[5])
    start = datetime(year, q * 3, BILLING_FIRST_DAY, tzinfo=tz)
    return start, datetime(year, q * 3, BILLING_LAST_DAY, tzinfo=tz) + timedelta(days=1)


def missing_reason(window: tuple[datetime, datetime], now: datetime, *, state: str, ever_read: bool) -> str:
    """Why a meter has no billing reading for the window: the first that applies, in this order.

    ``profile_error`` (never polled), ``window_not_started``, ``window_open`` (still being
    retried), ``never_read`` (no reading ever), ``offline`` (silent now), ``no_reading_in_window``.
    """
    if state == "error":
        return "profile_error"
    if now < window[0]:
        return "window_not_started"
    if now < window[1]:
        return "window_open"
    if not ever_read:
        return "never_read"
    return "offline" if state == "offline" else "no_reading_in_window"


# ---------------------------------------------------------------------- polling
def poll_backoff(poll_s: float, misses: int, max_backoff_s: float) -> float:
    """Seconds until a meter that missed ``misses`` polls in a row is tried again (doubling, capped)."""
    return float(min(poll_s * (2 ** (misses - 1)), max(poll_s, max_backoff_s)))


def goes_offline(m: MeterRuntime, offline_after: int) -> bool:
    """True once, when a meter's misses reach ``offline_after`` (not again while it stays offline)."""
    return m.misses >= offline_after and m.online is not False


def non_finite(values: dict[str, Any]) -> list[str]:
    """Fields holding NaN/inf (a float register holding garbage): no JSON, no reading."""
    return [k for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)]


# ---------------------------------------------------------------------- plausibility
def plausibility(m: MeterRuntime, values: dict[str, Any], now: datetime,
                 limits: MeteringSection) -> list[Anomaly]:
    """Anomalies that start with this reading (order above); updates the meter's trend for the next one."""
    raw_total = values.get("total_m3")
    flow = values.get("flow_m3h")
    total = float(raw_total) if isinstance(raw_total, (int, float)) else None
    found: dict[str, dict[str, Any]] = {}
    if total is not None and m.prev_total is not None:
        found.update(_register_moves(m, total, flow, now, limits))
    if _leaking(m, total, flow, now, limits.leak_hours):
        assert m.flow_since is not None
        found["leak"] = {"since": format_ts(m.flow_since)}
    if total is not None:
        m.prev_total, m.prev_at = total, now
    started = [(k, d) for k, d in found.items() if k not in m.anomalies]
    stamp = format_ts(now)
    m.anomalies = {k: m.anomalies.get(k, stamp) for k in found}
    return started


def _register_moves(m: MeterRuntime, total: float, flow: Any, now: datetime,
                    limits: MeteringSection) -> dict[str, dict[str, Any]]:
    """reverse, spike and stuck: how the total moved since the previous reading."""
    assert m.prev_total is not None
    prev, found = m.prev_total, {}
    delta = total - prev
    rollover = m.profile.rollover_m3 if m.profile else 0.0
    if delta < -limits.reverse_tolerance_m3:
        if rollover and prev > 0.9 * rollover and total < 0.1 * rollover:
            delta = total + rollover - prev  # documented register rollover: not a reverse
        else:
            found["reverse"] = {"from_m3": prev, "to_m3": total}
    if delta > limits.spike_m3:
        found["spike"] = {"from_m3": prev, "to_m3": total}
    # stuck: the meter says water flows, the register does not move
    hours = max((now - m.prev_at).total_seconds() / 3600.0, 0.0) if m.prev_at else 0.0
    if isinstance(flow, (int, float)) and flow > 0 and abs(delta) < 1e-9:
        m.expected_since_change += float(flow) * hours
        if m.expected_since_change >= STUCK_EXPECTED_M3:
            found["stuck"] = {"expected_m3": round(m.expected_since_change, 3), "total_m3": total}
    else:
        m.expected_since_change = 0.0
    return found


def _leaking(m: MeterRuntime, total: float | None, flow: Any, now: datetime, leak_hours: float) -> bool:
    """Track continuous flow (the flow register, else a rising total); True once it lasted ``leak_hours``."""
    prev, prev_at = m.prev_total, m.prev_at
    flowing = (isinstance(flow, (int, float)) and flow > 0) or (
        flow is None and total is not None and prev is not None and total > prev)
    if not flowing:
        m.flow_since = None
        return False
    m.flow_since = m.flow_since or (prev_at if prev_at and flow is None else now)
    return now - m.flow_since >= timedelta(hours=leak_hours)


# ---------------------------------------------------------------------- no hot water
def supply_floor(m: MeterRuntime) -> float | None:
    """The meter's supply-temperature floor: its own ``supply_floor_c``, else its profile's; 0 = none."""
    if m.profile is None or not m.profile.supply_temp_field:
        return None
    floor = m.cfg.supply_floor_c if m.cfg.supply_floor_c is not None else m.profile.supply_floor_c
    return floor or None


def no_hot_water(m: MeterRuntime, values: dict[str, Any], now: datetime,
                 limits: MeteringSection) -> tuple[Change, dict[str, Any]] | None:
    """Judge one reading's supply temperature; "raise" or "clear" with the event's details, when it changes."""
    floor = supply_floor(m)
    temp = values.get(m.profile.supply_temp_field) if m.profile is not None else None
    if floor is None or not isinstance(temp, (int, float)) or m.valve == "closed":
        return None
    flow = values.get("flow_m3h")
    if limits.no_hot_water_needs_flow and isinstance(flow, (int, float)) and flow <= 0:
        return None  # nobody draws: the water standing at the meter cools, that is no fault
    t, active = m.supply, NO_HOT_WATER in m.faults
    details = {"kind": NO_HOT_WATER, "temp_c": temp, "floor_c": floor}
    if temp < floor:
        t.warm, t.cold = 0, t.cold + 1
        t.cold_since = t.cold_since or now
        if not active and t.cold >= NO_HOT_WATER_SAMPLES and \
                now - t.cold_since >= timedelta(seconds=limits.no_hot_water_after_s):
            m.faults[NO_HOT_WATER] = format_ts(t.cold_since)
            return "raise", {**details, "since": m.faults[NO_HOT_WATER]}
    elif temp >= floor + limits.no_hot_water_clear_c:
        t.cold, t.cold_since = 0, None
        if active:
            t.warm += 1
            if t.warm >= NO_HOT_WATER_SAMPLES:
                t.warm = 0
                return "clear", {**details, "since": m.faults.pop(NO_HOT_WATER)}
    else:  # between the floor and the hysteresis: not cold any more, not yet recovered
        t.warm = 0
        if not active:
            t.cold, t.cold_since = 0, None
    return None


def no_hot_water_detect_s(poll_s: float, after_s: float) -> float:
    """Worst case from the supply going cold to ``meter.fault``: one period to the first cold sample,
    then enough periods for ``NO_HOT_WATER_SAMPLES`` samples spanning ``after_s``."""
    periods = max(NO_HOT_WATER_SAMPLES - 1, math.ceil(after_s / poll_s - 1e-9))
    return poll_s * (1 + periods)


# ---------------------------------------------------------------------- valve read-back
def valve_check(m: MeterRuntime, read: str, raw: int, now: datetime) -> Change | None:
    """The valve as read (open/closed/restricted/unknown) against the commanded state; "raise"/"clear" on change."""
    m.valve_read, m.valve_raw = read, raw
    if m.valve is None or read == m.valve:
        m.valve_misreads = 0
        if m.valve_mismatch is not None:
            m.valve_mismatch = None
            return "clear"
        return None
    m.valve_misreads += 1
    if m.valve_mismatch is None and m.valve_misreads >= VALVE_MISMATCH_READS:
        m.valve_mismatch = format_ts(now)
        return "raise"
    return None
