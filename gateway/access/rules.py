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
from gateway.access.models import FEE_KINDS, LOST_REASONS, CardSpec, Door, Window
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


# ---------------------------------------------------------------------- fees
def usable(row: Any, now_ts: str) -> bool:
    """A card the holder can use: active and not expired (a card not yet valid will be: it counts)."""
    return row["status"] == "active" and not (row["valid_until"] and row["valid_until"] <= now_ts)


def free_cards(occupants: int | None, cap: int) -> int:
    """One free card per registered occupant, at most ``cap`` (3); ``cap`` where central has not said."""
    return cap if occupants is None else min(occupants, cap)


def fee_reason(holder_kind: str, household_cards: int, free: int, replaces_reason: str | None = None) -> str | None:
    """Why issuing this card costs a fee, or None.

    ``household_cards``: the unit's usable household cards including the new one; ``free``: see
    :func:`free_cards`; ``replaces_reason``: the revoke reason of the card it replaces (None = not a
    replacement). A replacement takes its predecessor's place in the household (it never counts
    against the free ones again); it is charged, as ``replacement_lost``, when the predecessor was lost
    or stolen, and is free otherwise (damaged, moved out: the household did not lose a card).
    """
    if holder_kind not in FEE_KINDS:
        return None
    if replaces_reason is not None:
        return "replacement_lost" if replaces_reason in LOST_REASONS else None
    return "beyond_free" if household_cards > free else None


def replacement_refusal(old: Any, unit: str, replaced_by: str | None) -> tuple[str, str] | None:
    """Why a card may not be issued as the replacement of ``old`` (its register row; None = no such card)."""
    if old is None:
        return "replaces_unknown", "the card it replaces is not in the register"
    if old["unit"] != unit:
        return "replaces_other_unit", f"the card it replaces belongs to unit {old['unit']}, not {unit}"
    if old["status"] != "revoked":
        return "replaces_not_revoked", "revoke the lost card first (POST /cards/{card}/revoke), then replace it"
    if replaced_by is not None:
        return "replaces_already_replaced", f"that card was already replaced by {replaced_by}"
    return None


# ---------------------------------------------------------------------- central's upserts
def upsert_result(existing_status: str | None, incoming_status: str) -> str:
    """What an upsert from central does to the register's card: ``applied``, or the revocation made here stays.

    A revoked card is never revived nor rewritten (its doors, holder and reason are what the duty room
    left): ``kept_revoked`` when central sends it active, ``already_revoked`` when central agrees.
    """
    if existing_status == "revoked":
        return "kept_revoked" if incoming_status != "revoked" else "already_revoked"
    return "applied"


# ---------------------------------------------------------------------- card specs
def check_spec(spec: CardSpec, doors: Mapping[str, Door], rules: AccessSection, now: datetime, tz: tzinfo, *,
               central: bool = False) -> dict[str, Any]:
    """Validate a card spec against the site; returns the normalized columns (raises BadSpec).

    ``central``: the estate-wide register may name doors of other gateways and is the authority on
    its own rules (validity, worker limits), so only the form is checked -- but a card must open a door.
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
    elif spec.holder_kind == "worker":
        scope = scope or unit_doors(spec.unit, doors)
        schedule = schedule or "working-hours"
    if not scope:
        raise BadSpec("empty_scope", "a card must open at least one door: give doors, 'building:N', 'unit:B-U' "
                                     "or '*'")
    if valid_until is not None and valid_until <= format_ts(now) and not central:
        raise BadSpec("already_expired", f"valid_until {spec.valid_until} has passed: the card would open nothing")
    if valid_from and valid_until and valid_until < valid_from:
        raise BadSpec("invalid_time", "valid_until is before valid_from")
    if schedule == "working-hours":
        schedule = working_hours(rules)
    windows = None
    if schedule:
        windows = [{"days": w.days, "from": w.start, "to": w.end} if isinstance(w, Window) else w
                   for w in schedule]
    return {"unit": spec.unit, "holder": spec.holder, "holder_kind": spec.holder_kind,
            "doors": scope, "valid_from": valid_from, "valid_until": valid_until, "schedule": windows}


def working_hours(rules: AccessSection) -> list[Window]:
    start, end = rules.worker_hours.split("-")
    return [Window.model_validate({"days": rules.worker_days, "from": start, "to": end})]


def unit_doors(unit: str, doors: Mapping[str, Door]) -> list[str]:
    return [d.id for d in doors.values() if door_serves_unit(d, unit)]


def outside_working_hours(schedule: Any, rules: AccessSection) -> str | None:
    """The first window of a worker's own schedule that leaves ``worker_hours`` on ``worker_days``, in words."""
    if not schedule or schedule == "working-hours":
        return None
    start, end = rules.worker_hours.split("-")
    for w in schedule:
        if not isinstance(w, Window):
            w = Window.model_validate(w)
        extra_days = sorted(set(w.days) - set(rules.worker_days))
        if extra_days:
            return f"days {extra_days} are not working days {sorted(rules.worker_days)}"
        if w.start < start or w.end > end:
            return f"{w.start}-{w.end} is not within working hours {rules.worker_hours}"
    return None


def worker_rules(spec: CardSpec, scope: list[str], schedule: Any, valid_until: str | None,
                 doors: Mapping[str, Door], rules: AccessSection,
                 now: datetime) -> tuple[list[str], Any, str | None]:
    """Renovation workers: their unit's doors only, within working hours, valid from now for a bounded time.

    Each refusal is named after its rule: ``worker_scope``, ``worker_hours``, ``worker_validity``.
    """
    own = unit_doors(spec.unit, doors)
    if not scope:
        scope = own
    bad = [s for s in scope if s not in own]
    if bad:
        raise BadSpec("worker_scope", f"a worker's card may open only the unit's doors "
                                      f"({', '.join(own) or 'none configured'}), not {', '.join(bad)}")
    if not scope:
        raise BadSpec("worker_scope", f"no door serves unit {spec.unit}")
    hours = outside_working_hours(schedule, rules)
    if hours is not None:
        raise BadSpec("worker_hours", f"a worker's card works only within working hours: {hours}")
    limit = format_ts(now + timedelta(days=rules.worker_max_days))
    if valid_until is None:
        valid_until = limit
    elif valid_until > limit:
        raise BadSpec("worker_validity", f"a worker's card may be valid for at most {rules.worker_max_days} days")
    elif valid_until <= format_ts(now):
        raise BadSpec("worker_validity", f"a worker's card must end in the future, not {spec.valid_until}")
    return scope, schedule or "working-hours", valid_until


def patched_spec(row: Any, changes: Mapping[str, Any]) -> CardSpec:
    """An issued card's spec (its register row) with ``changes`` (scope, validity, schedule) applied."""
    spec: dict[str, Any] = {
        "unit": row["unit"], "holder": row["holder"], "holder_kind": row["holder_kind"],
        "doors": json.loads(row["doors"]), "valid_from": row["valid_from"], "valid_until": row["valid_until"],
        "schedule": json.loads(row["schedule"]) if row["schedule"] else None,
    }
    spec.update(changes)
    return CardSpec.model_validate(spec)
