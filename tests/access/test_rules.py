"""The door rules, pure: no store, no reader, no clock (times are passed in). Fast."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from gateway.access import Door, Window, decide, door_in_scope, door_serves_unit, in_schedule, normalize_scope
from gateway.access.errors import BadSpec
from gateway.access.models import CardSpec
from gateway.access.rules import check_spec, counts_for_verification, fee_due, parse_when
from gateway.config import AccessSection

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 site time


def door(id_: str = "b3-u1", building: str = "3", unit: str = "3-1") -> Door:
    return Door(id_, "", building, unit, "r", 0, 0, 5, 60)


DOORS = {d.id: d for d in (door(), door("b3-u2", unit="3-2"), door("b3-main", unit=""), door("b4-main", "4", ""))}


def spec(**kw: object) -> CardSpec:
    return CardSpec.model_validate({"unit": "3-1-0201", "holder_kind": "resident", **kw})


# ---------------------------------------------------------------------- scope and schedule
def test_scope_forms() -> None:
    assert normalize_scope(["building 3", "Building:4", "all", "b3-u1", "unit 3-1"]) == \
        ["building:3", "building:4", "*", "b3-u1", "unit:3-1"]
    assert door_in_scope(door(), ["building:3"]) and door_in_scope(door(), ["unit:3-1"])
    assert not door_in_scope(door(), ["building:4", "b3-u2"])
    assert door_serves_unit(door(), "3-1-0201") and not door_serves_unit(door(), "3-2-0201")
    assert door_serves_unit(door("b3-main", unit=""), "3-2-0201")


def test_a_window_that_never_opens_is_refused() -> None:
    with pytest.raises(ValidationError, match="never opens"):
        Window.model_validate({"days": [1], "from": "22:00", "to": "06:00"})
    with pytest.raises(ValidationError, match="never opens"):
        Window.model_validate({"days": [1], "from": "08:00", "to": "08:00"})
    assert Window.model_validate({"days": [1], "from": "22:00", "to": "24:00"}).end == "24:00"


def test_schedule_and_holidays() -> None:
    windows = [{"days": [1, 2, 3, 4, 5], "from": "08:00", "to": "18:00"}]
    monday_10 = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)
    assert in_schedule(windows, monday_10, set())
    assert not in_schedule(windows, monday_10, {"2026-11-23"})
    assert not in_schedule(windows, datetime(2026, 11, 23, 18, 0, tzinfo=TZ), set())
    assert not in_schedule(windows, datetime(2026, 11, 22, 10, 0, tzinfo=TZ), set())  # Sunday


def test_a_window_to_midnight_covers_the_last_minute() -> None:
    windows = [{"days": [1], "from": "22:00", "to": "24:00"}]
    assert in_schedule(windows, datetime(2026, 11, 23, 23, 59, tzinfo=TZ), set())
    assert not in_schedule(windows, datetime(2026, 11, 23, 21, 59, tzinfo=TZ), set())


# ---------------------------------------------------------------------- decide()
def test_decision_order() -> None:
    row = {"status": "revoked", "valid_from": "2030-01-01T00:00:00.000Z", "valid_until": None,
           "schedule": None, "doors": "[]"}
    now, local = "2026-11-23T02:00:00.000Z", datetime(2026, 11, 23, 10, 0, tzinfo=TZ)
    assert decide(None, door(), now, local, set()) == "unknown"
    assert decide(row, door(), now, local, set()) == "revoked"
    row["status"] = "active"
    assert decide(row, door(), now, local, set()) == "not_yet_valid"
    row["valid_from"], row["valid_until"] = None, "2026-01-01T00:00:00.000Z"
    assert decide(row, door(), now, local, set()) == "expired"
    row["valid_until"] = None
    row["schedule"] = '[{"days":[6,7],"from":"08:00","to":"18:00"}]'
    assert decide(row, door(), now, local, set()) == "outside_schedule"
    row["schedule"] = None
    assert decide(row, door(), now, local, set()) == "not_permitted"
    row["doors"] = '["building:3"]'
    assert decide(row, door(), now, local, set()) is None
    row["doors"] = "not json"
    assert decide(row, door(), now, local, set()) == "not_permitted"  # deny on doubt


def test_anti_passback_comes_last() -> None:
    now, local = "2026-11-23T02:00:00.000Z", datetime(2026, 11, 23, 10, 0, tzinfo=TZ)
    row = {"status": "active", "valid_from": None, "valid_until": None, "schedule": None, "doors": '["*"]'}
    assert decide(row, door(), now, local, set(), side="entry", last_side="entry") == "anti_passback"
    assert decide(row, door(), now, local, set(), side="entry", last_side="exit") is None
    assert decide(row, door(), now, local, set(), side="entry", last_side=None) is None
    assert decide(row, door(), now, local, set(), side=None, last_side="entry") is None  # not a paired door
    # any earlier reason wins over anti-passback
    row["doors"] = '["b9"]'
    assert decide(row, door(), now, local, set(), side="entry", last_side="entry") == "not_permitted"
    row["doors"], row["schedule"] = '["*"]', "{broken"
    assert decide(row, door(), now, local, set(), side="entry", last_side="entry") == "outside_schedule"


def test_which_swipes_count_for_verification() -> None:
    row = {"status": "active", "doors": '["building:3"]'}
    assert counts_for_verification(row, door())
    assert not counts_for_verification(row, door("b4-main", "4", ""))
    assert not counts_for_verification({**row, "status": "revoked"}, door())
    assert not counts_for_verification(None, door())


def test_a_household_card_beyond_the_free_ones_costs_a_fee() -> None:
    assert not fee_due("resident", 3, 3) and fee_due("family", 4, 3)
    assert not fee_due("worker", 9, 3) and not fee_due("staff", 9, 3)
    assert fee_due("tenant", 1, 0)


# ---------------------------------------------------------------------- card specs
def test_times_as_dates_or_rfc3339() -> None:
    assert parse_when("2026-12-31", TZ, end_of_day=True) == "2026-12-31T15:59:59.999Z"
    assert parse_when("2026-12-31", TZ) == "2026-12-30T16:00:00.000Z"
    assert parse_when("2026-12-31T08:00:00Z", TZ) == "2026-12-31T08:00:00.000Z"
    assert parse_when(None, TZ) is None and parse_when("", TZ) is None
    with pytest.raises(BadSpec) as bad:
        parse_when("tomorrow", TZ)
    assert bad.value.code == "invalid_time"


def test_spec_scope_must_name_doors_of_this_site() -> None:
    cols = check_spec(spec(doors=["b3-u1", "building 4", "all"]), DOORS, AccessSection(), NOW, TZ)
    assert cols["doors"] == ["b3-u1", "building:4", "*"] and cols["schedule"] is None
    with pytest.raises(BadSpec) as bad:
        check_spec(spec(doors=["b9-nowhere"]), DOORS, AccessSection(), NOW, TZ)
    assert bad.value.code == "unknown_door"
    # central's register may name doors of other gateways
    assert check_spec(spec(doors=["b9-nowhere"]), DOORS, AccessSection(), NOW, TZ, central=True)["doors"] == \
        ["b9-nowhere"]
    with pytest.raises(BadSpec) as bad:
        check_spec(spec(valid_from="2026-12-31", valid_until="2026-12-01"), DOORS, AccessSection(), NOW, TZ)
    assert bad.value.code == "invalid_time"


def test_worker_rules() -> None:
    rules = AccessSection(worker_hours="09:00-17:00", worker_days=[1, 2, 3], worker_max_days=30)
    cols = check_spec(spec(holder_kind="worker"), DOORS, rules, NOW, TZ)
    assert cols["doors"] == ["b3-u1", "b3-main"]  # the unit's doors by default
    assert cols["schedule"] == [{"days": [1, 2, 3], "from": "09:00", "to": "17:00"}]
    assert cols["valid_until"] == "2026-12-23T02:00:00.000Z"  # at most worker_max_days from now
    with pytest.raises(BadSpec) as bad:
        check_spec(spec(holder_kind="worker", doors=["b3-u2"]), DOORS, rules, NOW, TZ)
    assert bad.value.code == "worker_scope"
    with pytest.raises(BadSpec) as bad:
        check_spec(spec(holder_kind="worker", unit="7-1-0101"), DOORS, rules, NOW, TZ)
    assert bad.value.code == "worker_scope"
    with pytest.raises(BadSpec) as bad:
        check_spec(spec(holder_kind="worker", valid_until="2027-06-01"), DOORS, rules, NOW, TZ)
    assert bad.value.code == "worker_validity"
    own = [{"days": [6], "from": "10:00", "to": "12:00"}]
    assert check_spec(spec(holder_kind="worker", schedule=own), DOORS, rules, NOW, TZ)["schedule"] == own
    # from central: only the form is checked, but a worker still gets working hours by default
    central = check_spec(spec(holder_kind="worker", doors=["b9"]), DOORS, rules, NOW, TZ, central=True)
    assert central["doors"] == ["b9"] and central["schedule"] == [{"days": [1, 2, 3], "from": "09:00", "to": "17:00"}]
