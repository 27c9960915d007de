"""Metering rules: plausibility of a reading, the billing calendar, poll backoff. Pure: no I/O, no SQL.

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
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from gateway.config import MeteringSection
from gateway.events import format_ts
from gateway.metering.models import MeterRuntime

QUARTER_END_MONTHS = (3, 6, 9, 12)
BILLING_FIRST_DAY, BILLING_LAST_DAY = 25, 30
#: a frozen total while flowing is "stuck" once this much volume should have been counted
STUCK_EXPECTED_M3 = 0.1

Anomaly = tuple[str, dict[str, Any]]


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
