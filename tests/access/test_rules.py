"""The door rules, pure: no store, no reader, no clock (times are passed in). Fast."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.access import Door, Window, decide, door_in_scope, door_serves_unit, in_schedule, normalize_scope
from gateway.access.errors import BadSpec
from gateway.access.models import CardPatch, CardSpec, RevokeIn
from gateway.access.rules import (
    check_spec,
    counts_for_verification,
    fee_reason,
    free_cards,
    outside_working_hours,
    parse_when,
    patched_spec,
    replacement_refusal,
    upsert_result,
    usable,
)
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
    assert fee_reason("resident", 3, 3) is None and fee_reason("family", 4, 3) is not None
    assert fee_reason("worker", 9, 3) is None and fee_reason("staff", 9, 3) is None
    assert fee_reason("tenant", 1, 0) is not None


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
        check_spec(spec(doors=["*"], valid_from="2026-12-31", valid_until="2026-12-01"), DOORS, AccessSection(),
                   NOW, TZ)
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
    own = [{"days": [2], "from": "10:00", "to": "12:00"}]
    assert check_spec(spec(holder_kind="worker", schedule=own), DOORS, rules, NOW, TZ)["schedule"] == own
    # from central: only the form is checked, but a worker still gets working hours by default
    central = check_spec(spec(holder_kind="worker", doors=["b9"]), DOORS, rules, NOW, TZ, central=True)
    assert central["doors"] == ["b9"] and central["schedule"] == [{"days": [1, 2, 3], "from": "09:00", "to": "17:00"}]


def refusal(card: CardSpec, rules: AccessSection | None = None, *, central: bool = False) -> str:
    with pytest.raises(BadSpec) as bad:
        check_spec(card, DOORS, rules or AccessSection(), NOW, TZ, central=central)
    return bad.value.code


# ---------------------------------------------------------------------- a card opens a door (issue 14)
def test_a_card_must_open_at_least_one_door() -> None:
    assert refusal(spec(doors=[])) == "empty_scope"
    assert refusal(spec(doors=["  "])) == "empty_scope"  # blanks are dropped by normalize_scope
    assert refusal(spec(doors=[]), central=True) == "empty_scope"  # from central too
    # a worker's empty scope means "the unit's doors", here and from central
    assert check_spec(spec(holder_kind="worker"), DOORS, AccessSection(), NOW, TZ)["doors"] == ["b3-u1", "b3-main"]
    assert check_spec(spec(holder_kind="worker"), DOORS, AccessSection(), NOW, TZ, central=True)["doors"] == \
        ["b3-u1", "b3-main"]
    assert refusal(spec(holder_kind="worker", unit="7-1-0101"), central=True) == "empty_scope"


def test_a_card_already_expired_is_not_issued() -> None:
    assert refusal(spec(doors=["*"], valid_until="2026-11-01")) == "already_expired"
    assert refusal(spec(doors=["*"], valid_until="2026-11-23T01:59:59Z")) == "already_expired"
    assert check_spec(spec(doors=["*"], valid_until="2026-11-23"), DOORS, AccessSection(), NOW, TZ)  # to the day's end
    # central's register is the authority on its own history: only the form is checked
    assert check_spec(spec(doors=["*"], valid_until="2026-11-01"), DOORS, AccessSection(), NOW, TZ, central=True)


def test_scope_changed_in_place_keeps_the_rest_of_the_card() -> None:
    row = {"unit": "3-1-0201", "holder": "Wang Fang", "holder_kind": "resident", "doors": '["b3-u1"]',
           "valid_from": None, "valid_until": "2027-01-01T00:00:00.000Z",
           "schedule": '[{"days": [1, 2], "from": "08:00", "to": "18:00"}]'}
    patch = CardPatch.model_validate({"doors": ["building 3"]})
    cols = check_spec(patched_spec(row, patch.model_dump(mode="json", by_alias=True, exclude_unset=True)),
                      DOORS, AccessSection(), NOW, TZ)
    assert cols["doors"] == ["building:3"] and cols["valid_until"] == "2027-01-01T00:00:00.000Z"
    assert cols["schedule"] == [{"days": [1, 2], "from": "08:00", "to": "18:00"}]
    cleared = CardPatch.model_validate({"schedule": None})
    assert check_spec(patched_spec(row, cleared.model_dump(mode="json", by_alias=True, exclude_unset=True)),
                      DOORS, AccessSection(), NOW, TZ)["schedule"] is None
    emptied = CardPatch.model_validate({"doors": []})
    with pytest.raises(BadSpec) as bad:
        check_spec(patched_spec(row, emptied.model_dump(exclude_unset=True)), DOORS, AccessSection(), NOW, TZ)
    assert bad.value.code == "empty_scope"
    with pytest.raises(ValidationError, match="nothing to change"):
        CardPatch.model_validate({})
    with pytest.raises(ValidationError, match="at least one door"):
        CardPatch.model_validate({"doors": None})
    with pytest.raises(ValidationError):
        CardPatch.model_validate({"unit": "3-2-0101"})  # a card's household is not edited: issue a new card


# ---------------------------------------------------------------------- worker cards (issue 14)
def test_a_worker_schedule_must_lie_within_working_hours() -> None:
    rules = AccessSection(worker_hours="08:00-18:00", worker_days=[1, 2, 3, 4, 5])
    for windows in ([{"days": [6], "from": "10:00", "to": "12:00"}],       # Saturday
                    [{"days": [1], "from": "00:00", "to": "24:00"}],       # round the clock
                    [{"days": [1], "from": "07:30", "to": "12:00"}],       # starts before 08:00
                    [{"days": [2], "from": "10:00", "to": "18:30"}],       # ends after 18:00
                    [{"days": [1], "from": "09:00", "to": "12:00"}, {"days": [7], "from": "09:00", "to": "12:00"}]):
        assert refusal(spec(holder_kind="worker", schedule=windows), rules) == "worker_hours", windows
    inside = [{"days": [1, 3], "from": "08:00", "to": "12:00"}, {"days": [5], "from": "13:00", "to": "18:00"}]
    assert check_spec(spec(holder_kind="worker", schedule=inside), DOORS, rules, NOW, TZ)["schedule"] == inside
    # the configured hours are the limit: a site with Saturday work allows Saturdays
    weekend = AccessSection(worker_hours="09:00-17:00", worker_days=[1, 2, 3, 4, 5, 6])
    assert check_spec(spec(holder_kind="worker", schedule=[{"days": [6], "from": "09:00", "to": "17:00"}]),
                      DOORS, weekend, NOW, TZ)
    assert refusal(spec(holder_kind="worker", schedule=[{"days": [1], "from": "08:00", "to": "17:00"}]),
                   weekend) == "worker_hours"


def test_a_worker_card_ends_in_the_future_within_the_maximum() -> None:
    rules = AccessSection(worker_max_days=30)
    assert refusal(spec(holder_kind="worker", valid_until="2026-11-01"), rules) == "worker_validity"
    assert refusal(spec(holder_kind="worker", valid_until="2026-11-23T01:00:00Z"), rules) == "worker_validity"
    assert refusal(spec(holder_kind="worker", valid_until="2026-12-24"), rules) == "worker_validity"
    ok = check_spec(spec(holder_kind="worker", valid_until="2026-12-20"), DOORS, rules, NOW, TZ)
    assert ok["valid_until"] == "2026-12-20T15:59:59.999Z"


# ---------------------------------------------------------------------- fees (issue 14, DOMAIN.md "first three free")
def test_only_usable_cards_count() -> None:
    now = "2026-11-23T02:00:00.000Z"
    assert usable({"status": "active", "valid_until": None}, now)
    assert usable({"status": "active", "valid_until": "2026-12-01T00:00:00.000Z"}, now)
    assert not usable({"status": "active", "valid_until": "2026-11-01T00:00:00.000Z"}, now)  # expired
    assert not usable({"status": "revoked", "valid_until": None}, now)


def test_free_cards_are_one_per_occupant_up_to_three() -> None:
    assert [free_cards(n, 3) for n in (0, 1, 2, 3, 4, 9)] == [0, 1, 2, 3, 3, 3]
    assert free_cards(None, 3) == 3  # central has not told us: the usual three
    assert free_cards(5, 2) == 2     # a site that gives fewer
    assert fee_reason("resident", 2, free_cards(1, 3)) == "beyond_free"  # one occupant, second card
    assert fee_reason("resident", 3, free_cards(4, 3)) is None
    assert fee_reason("family", 4, free_cards(None, 3)) == "beyond_free"
    assert fee_reason("worker", 9, 0) is None and fee_reason("staff", 9, 0) is None


def test_a_lost_cards_replacement_is_charged_once() -> None:
    # the lost card's successor takes its place: charged as a replacement, never again against the free ones
    assert fee_reason("resident", 1, 3, replaces_reason="lost") == "replacement_lost"
    assert fee_reason("resident", 4, 3, replaces_reason="stolen") == "replacement_lost"
    # a damaged card (or one handed back) was not lost by the household: its successor is free
    assert fee_reason("resident", 4, 3, replaces_reason="damaged") is None
    assert fee_reason("tenant", 4, 3, replaces_reason="moved_out") is None
    assert fee_reason("worker", 1, 3, replaces_reason="lost") is None


def test_what_a_card_may_replace() -> None:
    old = {"unit": "3-1-0201", "status": "revoked", "revoke_reason": "lost"}
    assert replacement_refusal(old, "3-1-0201", None) is None
    assert replacement_refusal(None, "3-1-0201", None)[0] == "replaces_unknown"
    assert replacement_refusal(old, "3-1-0202", None)[0] == "replaces_other_unit"
    assert replacement_refusal({**old, "status": "active"}, "3-1-0201", None)[0] == "replaces_not_revoked"
    assert replacement_refusal(old, "3-1-0201", "26:00000001")[0] == "replaces_already_replaced"


# ---------------------------------------------------------------------- revocation and central's upserts
def test_revoke_reasons_are_a_fixed_list() -> None:
    for reason in ("lost", "stolen", "moved_out", "damaged"):
        assert RevokeIn.model_validate({"reason": reason}).reason == reason
    assert RevokeIn.model_validate({"reason": "other", "note": "broken in the lift door"}).note
    with pytest.raises(ValidationError, match="needs a note"):
        RevokeIn.model_validate({"reason": "other"})
    with pytest.raises(ValidationError):
        RevokeIn.model_validate({"reason": "because"})
    with pytest.raises(ValidationError):
        RevokeIn.model_validate({})


def test_a_revocation_here_is_never_rewritten_by_central() -> None:
    assert upsert_result(None, "active") == "applied"
    assert upsert_result("active", "active") == "applied"
    assert upsert_result("active", "revoked") == "applied"
    assert upsert_result("revoked", "active") == "kept_revoked"
    assert upsert_result("revoked", "revoked") == "already_revoked"


# ---------------------------------------------------------------------- properties (hypothesis)
HHMM_ = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


@settings(max_examples=300, deadline=None)
@given(days=st.sets(st.integers(1, 7), min_size=1), start=HHMM_, end=HHMM_,
       work_days=st.sets(st.integers(1, 7), min_size=1), hours=st.tuples(HHMM_, HHMM_))
def test_worker_hours_agree_with_a_minute_by_minute_check(days: set[int], start: str, end: str,
                                                          work_days: set[int], hours: tuple[str, str]) -> None:
    """A worker's window is accepted exactly when every minute it opens is a working minute."""
    if start >= end or hours[0] >= hours[1]:
        return
    rules = AccessSection(worker_hours=f"{hours[0]}-{hours[1]}", worker_days=sorted(work_days))
    window = Window.model_validate({"days": sorted(days), "from": start, "to": end})
    minutes = [f"{m // 60:02d}:{m % 60:02d}" for m in range(24 * 60)]
    inside = all(d in work_days and hours[0] <= hm < hours[1]
                 for d in days for hm in minutes if start <= hm < end)
    assert (outside_working_hours([window], rules) is None) == inside


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["resident", "family", "tenant", "worker", "staff"]), cards=st.integers(1, 20),
       occupants=st.none() | st.integers(0, 20), cap=st.integers(0, 5),
       replaces=st.none() | st.sampled_from(["lost", "stolen", "moved_out", "damaged", "other"]))
def test_the_fee_rule_as_a_table(kind: str, cards: int, occupants: int | None, cap: int, replaces: str | None) -> None:
    free = free_cards(occupants, cap)
    assert free == (cap if occupants is None else min(occupants, cap)) and 0 <= free <= cap
    why = fee_reason(kind, cards, free, replaces)
    if kind in ("worker", "staff"):
        assert why is None
    elif replaces is not None:
        assert why == ("replacement_lost" if replaces in ("lost", "stolen") else None)
    else:
        assert (why == "beyond_free") == (cards > free) and why in (None, "beyond_free")
