"""The estate's door rules, pure: no I/O, no SQL, no clock of their own (times are passed in).

Who may pass which door when (:func:`decide`), what a card's scope and schedule mean, what a
renovation worker's card may be (:func:`check_spec`) and when a household card costs a fee.
Everything here is a function of its arguments, so it is tested without a store
(``tests/access/test_rules.py``) and the component only feeds it what the register holds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as dtime
from typing import Any

from gateway.access.errors import BadSpec
from gateway.access.models import FEE_KINDS, CardSpec, Door, Window
from gateway.config import AccessSection
from gateway.events import format_ts


def parse_when(value: str | None, tz: tzinfo, *, end_of_day: bool = False) -> str | None:
    """A time or date from a person or central, as the stored UTC string (a bare date = site day)."""
    if value is None or value == "":
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            local = datetime.combine(d, dtime.max if end_of_day else dtime.min, tzinfo=tz)
            return format_ts(local)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadSpec("invalid_time", f"not a date or time: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return format_ts(dt)


# ---------------------------------------------------------------------- scope and schedule
def normalize_scope(items: list[str]) -> list[str]:
    """``"building 3"`` / ``"building:3"`` -> ``"building:3"``; ``"all"`` -> ``"*"``; door ids as they are."""
    out: list[str] = []
    for raw in items:
        item = raw.strip()
        low = item.lower()
        if low in ("*", "all"):
            item = "*"
        elif low.startswith("building"):
            rest = item[len("building"):].lstrip(" :")
            item = f"building:{rest}"
        elif low.startswith("unit:") or low.startswith("unit "):
            item = f"unit:{item[5:].strip()}"
        if item and item not in out:
            out.append(item)
    return out


def door_in_scope(door: Door, scope: list[str]) -> bool:
    return (door.id in scope or "*" in scope or (bool(door.building) and f"building:{door.building}" in scope)
            or (bool(door.unit) and f"unit:{door.unit}" in scope))


def door_serves_unit(door: Door, unit: str) -> bool:
    """A unit's own doors: its unit entrance, and its building's common entrance."""
    if door.unit:
        return unit == door.unit or unit.startswith(door.unit + "-")
    return bool(door.building) and unit.split("-", 1)[0] == door.building


def in_schedule(windows: list[dict[str, Any]], local: datetime, holidays: set[str]) -> bool:
    """Inside one of the windows (site time); scheduled cards are never let in on holidays."""
    if local.date().isoformat() in holidays:
        return False
    hm = local.strftime("%H:%M")
    day = local.isoweekday()
    return any(day in w["days"] and w["from"] <= hm < w["to"] for w in windows)


# ---------------------------------------------------------------------- the decision
def decide(row: Any, door: Door, now_ts: str, local: datetime, holidays: set[str], *,
           side: str | None = None, last_side: str | None = None) -> str | None:
    """Why ``row`` (the card's register row, None = unknown) may not pass ``door`` now, or None to grant.

    The order is the contract's, deny on any doubt: ``unknown`` -> ``revoked`` -> ``not_yet_valid`` /
    ``expired`` -> ``outside_schedule`` -> ``not_permitted`` -> ``anti_passback`` -> grant.
    Anti-passback applies when the door is one side of a pair (``side``: "entry" or "exit") and the
    card last passed that same side (``last_side``).
    """
    if row is None:
        return "unknown"
    if row["status"] != "active":
        return "revoked"
    reason = outside_validity(row, now_ts) or outside_schedule(row, local, holidays)
    if reason is not None:
        return reason
    if not in_card_scope(row, door):
        return "not_permitted"
    if side is not None and last_side == side:
        return "anti_passback"
    return None


def outside_validity(row: Any, now_ts: str) -> str | None:
    if row["valid_from"] and now_ts < row["valid_from"]:
        return "not_yet_valid"
    if row["valid_until"] and now_ts > row["valid_until"]:
        return "expired"
    return None


def outside_schedule(row: Any, local: datetime, holidays: set[str]) -> str | None:
    """``outside_schedule`` when the card has windows and ``local`` is in none of them (or they are unreadable)."""
    if not row["schedule"]:
        return None
    try:
        windows = json.loads(row["schedule"])
    except ValueError:
        return "outside_schedule"
    return None if in_schedule(windows, local, holidays) else "outside_schedule"


def in_card_scope(row: Any, door: Door) -> bool:
    """The door is in the card's scope (an unreadable scope is not)."""
    try:
        scope = json.loads(row["doors"])
    except ValueError:
        return False
    return door_in_scope(door, scope)


def counts_for_verification(row: Any, door: Door) -> bool:
    """A swipe of an active card at a door of its scope verifies (or fails to verify) that door."""
    return row is not None and row["status"] == "active" and in_card_scope(row, door)


def fee_due(holder_kind: str, household_cards: int, free_per_unit: int) -> bool:
    """A household card beyond the unit's free ones costs a fee (``household_cards`` includes the new one)."""
    return holder_kind in FEE_KINDS and household_cards > free_per_unit


# ---------------------------------------------------------------------- card specs
def check_spec(spec: CardSpec, doors: Mapping[str, Door], rules: AccessSection, now: datetime, tz: tzinfo, *,
               central: bool = False) -> dict[str, Any]:
    """Validate a card spec against the site; returns the normalized columns (raises BadSpec).

    ``central``: the estate-wide register may name doors of other gateways and is
    the authority on its own rules, so only the form is checked.
    """
    scope = normalize_scope(spec.doors)
    for item in scope:
        if central or item == "*" or item.startswith(("building:", "unit:")):
            continue
        if item not in doors:
            raise BadSpec("unknown_door", f"no door {item!r} (doors, 'building:N', 'unit:B-U' or '*')")
    schedule: Any = spec.schedule
    valid_from = parse_when(spec.valid_from, tz)
    valid_until = parse_when(spec.valid_until, tz, end_of_day=True)
    if spec.holder_kind == "worker" and not central:
        scope, schedule, valid_until = worker_rules(spec, scope, schedule, valid_until, doors, rules, now)
    elif spec.holder_kind == "worker" and schedule is None:
        schedule = "working-hours"
    if schedule == "working-hours":
        schedule = working_hours(rules)
    windows = None
    if schedule:
        windows = [{"days": w.days, "from": w.start, "to": w.end} if isinstance(w, Window) else w
                   for w in schedule]
    if valid_from and valid_until and valid_until < valid_from:
        raise BadSpec("invalid_time", "valid_until is before valid_from")
    return {"unit": spec.unit, "holder": spec.holder, "holder_kind": spec.holder_kind,
            "doors": scope, "valid_from": valid_from, "valid_until": valid_until, "schedule": windows}


def working_hours(rules: AccessSection) -> list[Window]:
    start, end = rules.worker_hours.split("-")
    return [Window.model_validate({"days": rules.worker_days, "from": start, "to": end})]


def worker_rules(spec: CardSpec, scope: list[str], schedule: Any, valid_until: str | None,
                 doors: Mapping[str, Door], rules: AccessSection,
                 now: datetime) -> tuple[list[str], Any, str | None]:
    """Renovation workers: their unit's doors only, working hours, a bounded validity."""
    unit_doors = [d.id for d in doors.values() if door_serves_unit(d, spec.unit)]
    if not scope:
        scope = unit_doors
    bad = [s for s in scope if s not in unit_doors]
    if bad:
        raise BadSpec("worker_scope", f"a worker's card may open only the unit's doors "
                                      f"({', '.join(unit_doors) or 'none configured'}), not {', '.join(bad)}")
    if not scope:
        raise BadSpec("worker_scope", f"no door serves unit {spec.unit}")
    limit = format_ts(now + timedelta(days=rules.worker_max_days))
    if valid_until is None:
        valid_until = limit
    elif valid_until > limit:
        raise BadSpec("worker_validity", f"a worker's card may be valid for at most {rules.worker_max_days} days")
    return scope, schedule or "working-hours", valid_until
