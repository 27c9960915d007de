"""The walk's pure rules: which steps each device needs, what each event proves, when a step is done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.commissioning import rules
from gateway.commissioning.models import Observation, Step
from gateway.errors import Conflict, Invalid

SITE = """
[[readers]]
id = "r1"
driver = "osdp"
port = "socket://127.0.0.1:9"
scbk_file = "key.hex"

[[readers]]
id = "r2"
driver = "serial-ascii"
port = "socket://127.0.0.1:9"

[[doors]]
id = "d1"
name = "B3 entrance"
building = "3"
reader = "r1"

[[doors]]
id = "d2"
name = "B5 gate"
building = "5"
reader = "r2"
held_open_s = 0

[[doors]]
id = "d3"
name = "B3 bike store"
building = "3"
reader = "r1"
held_open_s = 0

[[buses]]
id = "bus1"
transport = "tcp"
port = "127.0.0.1:9"

[[meters]]
id = "m1"
bus = "bus1"
device_id = 1
profile = "generic-hot-water"
unit = "3-1-0101"

[[meters]]
id = "m2"
bus = "bus1"
device_id = 2
profile = "generic-hot-water"
unit = "5-2-0301"

[[alarm_receivers]]
id = "panel"
protocol = "sia-dc09"
listen = "127.0.0.1:9"
accounts = ["1234"]

[[alarm_zones]]
receiver = "panel"
zone = 12
building = "3"
name = "B3 stairwell"
"""


@pytest.fixture
def index(tmp_path: Path) -> rules.SiteIndex:
    (tmp_path / "key.hex").write_text("00" * 16)
    return rules.site_index(make_config(tmp_path, SITE), {"m1": True, "m2": False})


def steps_of(index: rules.SiteIndex, device: str) -> tuple[str, ...]:
    return index.devices[device].steps


def test_each_device_gets_the_steps_it_can_prove(index: rules.SiteIndex) -> None:
    assert steps_of(index, "d1") == ("grant", "contact", "refuse", "held_open")
    assert steps_of(index, "d2") == ("granted", "refuse")    # a serial reader reports no door contact
    assert steps_of(index, "d3") == ("grant", "contact", "refuse")          # held_open_s = 0: no alarm to try
    assert steps_of(index, "r1") == ("online", "secure")                    # OSDP with a key
    assert steps_of(index, "r2") == ("online",)
    assert steps_of(index, "m1") == ("reading", "valve")
    assert steps_of(index, "m2") == ("reading",)                            # no valve
    assert steps_of(index, "panel/12") == ("signal",)
    assert {d: p.building for d, p in index.devices.items()} == {
        "d1": "3", "d2": "5", "d3": "3", "r1": "3", "r2": "5", "m1": "3", "m2": "5", "panel/12": "3"}


def test_scopes(index: rules.SiteIndex) -> None:
    assert len(rules.plan(index, "site")) == 8
    assert {p.device for p in rules.plan(index, "building", ["5"])} == {"d2", "r2", "m2"}
    assert [p.device for p in rules.plan(index, "devices", devices=["m1", "d1", "m1"])] == ["m1", "d1"]
    for scope, kw, code in (("building", {"buildings": ["9"]}, "unknown_building"),
                            ("devices", {"devices": ["nope"]}, "unknown_device"),
                            ("building", {}, "empty_scope"), ("devices", {}, "empty_scope")):
        with pytest.raises(Invalid) as exc:
            rules.plan(index, scope, **kw)
        assert exc.value.code == code


def at(second: float) -> str:
    """An event time, ``second`` s after a fixed minute (the grant's window is checked on these)."""
    t = datetime(2026, 12, 5, 2, 0, tzinfo=UTC) + timedelta(seconds=second)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def walk(index: rules.SiteIndex, step: Step, events: list[tuple[str, dict[str, Any]]],
         seconds: list[float] | None = None) -> Step:
    """Feed ``events`` one by one (seq 1, 2...; one second apart unless ``seconds`` says when each happened)."""
    for seq, (type_, data) in enumerate(events, start=1):
        ts = at(seconds[seq - 1] if seconds else seq)
        for obs in rules.settle(rules.observe(index, type_, data, seq, ts)):
            if (obs.device, obs.step) == step.key:
                rules.apply(step, obs)
    return step


def step(device: str, name: str, kind: str = "door") -> Step:
    return Step(device, kind, "3", device, name)


def test_door_steps_from_events(index: rules.SiteIndex) -> None:
    granted = walk(index, step("d1", "grant"), [("access.granted", {"door": "d1", "card": "26:01"}),
                                                ("door.opened", {"door": "d1", "authorized": True})])
    assert granted.status == "done" and granted.by == "gateway" and granted.at == at(2)
    assert granted.seen["parts"]["granted"]["card"] == "26:01"
    # opened before the grant, or forced open after it: the lock was not shown to release on the card
    assert walk(index, step("d1", "grant"), [("door.opened", {"door": "d1", "authorized": True}),
                                             ("access.granted", {"door": "d1", "card": "26:01"})]).status == "pending"
    assert walk(index, step("d1", "grant"), [("access.granted", {"door": "d1", "card": "26:01"}),
                                             ("door.opened", {"door": "d1", "authorized": False})]).status == "pending"
    assert walk(index, step("d1", "grant"), [("door.unlocked", {"door": "d1", "reason": "card"})]).status == "done"
    # an operator's unlock is not a card's
    assert walk(index, step("d1", "grant"), [("door.unlocked", {"door": "d1", "reason": "operator"})]).status == "pending"
    # contact: open then close; a close first proves nothing
    assert walk(index, step("d1", "contact"), [("door.closed", {"door": "d1"}),
                                               ("door.opened", {"door": "d1"})]).status == "pending"
    assert walk(index, step("d1", "contact"), [("door.opened", {"door": "d1"}),
                                               ("door.closed", {"door": "d1"})]).status == "done"
    assert walk(index, step("d1", "refuse"), [("access.denied", {"door": "d1", "reason": "unknown"})]).status == "done"
    assert walk(index, step("d1", "held_open"), [("door.held_open", {"door": "d1"})]).status == "done"
    # another door's events do nothing here
    assert walk(index, step("d1", "refuse"), [("access.denied", {"door": "d2", "reason": "unknown"})]).status == "pending"
    # a door without a contact to see: the grant itself
    assert walk(index, step("d2", "granted"), [("access.granted", {"door": "d2", "card": "26:02"})]).status == "done"


def test_grant_counts_only_within_the_unlock_window(index: rules.SiteIndex) -> None:
    """The door opening on the grant: within ``unlock_s`` (5 s, the default) + 1 s. ``authorized`` alone is not
    enough: a door held open by a schedule (day mode) or an operator opens "authorized" too."""
    grant, opened = ("access.granted", {"door": "d1", "card": "26:01"}), ("door.opened", {"door": "d1", "authorized": True})
    assert index.unlock_s["d1"] == 5
    assert walk(index, step("d1", "grant"), [grant, opened], [10, 15.9]).status == "done"     # 5.9 s: in the window
    # an old grant, then the door opened in day mode minutes later: no proof of the card
    old = walk(index, step("d1", "grant"), [grant, ("door.unlocked", {"door": "d1", "reason": "schedule"}), opened],
               [10, 300, 301])
    assert old.status == "pending" and "opened" in old.seen["parts"]
    assert walk(index, step("d1", "grant"), [grant, opened], [10, 16.5]).status == "pending"  # 6.5 s: just past
    # a new grant and the door opened on it: done
    assert walk(index, step("d1", "grant"), [grant, opened, grant, opened], [10, 300, 400, 402]).status == "done"


def test_reader_steps(index: rules.SiteIndex) -> None:
    assert walk(index, step("r1", "online", "reader"), [("access.denied", {"door": "d1"})]).status == "done"
    assert walk(index, step("r1", "online", "reader"),
                [("device.online", {"device": "r1", "kind": "reader"})]).status == "done"
    obs = rules.device_observations(index, [{"id": "r1", "online": True, "secure_channel": True},
                                            {"id": "r2", "online": False}], "t")
    assert {(o.device, o.step) for o in obs} == {("r1", "online"), ("r1", "secure")}
    obs = rules.device_observations(index, [{"id": "r1", "online": True, "secure_channel": False}], "t")
    assert {(o.device, o.step) for o in obs} == {("r1", "online")}


def test_meter_reading_in_range_and_valve(index: rules.SiteIndex) -> None:
    reading = ("meter.reading", {"meter": "m1", "values": {"total_m3": 1.5, "junk": 1}})
    assert walk(index, step("m1", "reading", "meter"), [reading]).seen["parts"]["reading"]["values"] == {"total_m3": 1.5}
    # a reading committed with an anomaly (one commit = one settle) is not in range
    s = step("m1", "reading", "meter")
    batch = rules.observe(index, *reading, 1, "t1") + rules.observe(index, "meter.anomaly", {"meter": "m1", "kind": "spike"}, 2, "t1")
    for o in rules.settle(batch):
        rules.apply(s, o)
    assert s.status == "pending" and s.seen["parts"]["anomaly"]["kind"] == "spike"
    assert walk(index, step("m1", "valve", "meter"), [("meter.valve", {"meter": "m1", "state": "closed"})]).status == "done"


def test_zone_signal_needs_its_own_restore(index: rules.SiteIndex) -> None:
    raised = ("alarm.raised", {"alarm": 7, "receiver": "panel", "zone": 12, "kind": "burglary", "code": "130"})
    other = ("alarm.restored", {"alarm": 6, "receiver": "panel", "zone": 12})
    restored = ("alarm.restored", {"alarm": 7, "receiver": "panel", "zone": 12})
    assert walk(index, step("panel/12", "signal", "zone"), [raised, other]).status == "pending"
    assert walk(index, step("panel/12", "signal", "zone"), [raised, other, restored]).status == "done"
    assert walk(index, step("panel/12", "signal", "zone"),
                [("alarm.raised", {"alarm": 8, "receiver": "panel", "zone": 5})]).seen == {}


def test_zone_test_proves_the_zone_on_its_own(index: rules.SiteIndex) -> None:
    """A walk-test report (Contact ID 611/613-615, SIA TP) has no alarm and no restore; a test alarm (601, 607)
    closes on acknowledgement and is never restored: either, from the zone, proves its signal step."""
    walk_test = ("alarm.test_received", {"receiver": "panel", "account": "1234", "zone": 12, "code": "613"})
    done = walk(index, step("panel/12", "signal", "zone"), [walk_test])
    assert done.status == "done" and done.seen["parts"]["test"]["code"] == "613"
    test_alarm = ("alarm.raised", {"alarm": 9, "receiver": "panel", "zone": 12, "kind": "test", "code": "601"})
    assert walk(index, step("panel/12", "signal", "zone"), [test_alarm]).status == "done"
    # another zone's (or an unknown receiver's) walk test proves nothing here
    for data in ({"receiver": "panel", "zone": 13, "code": "613"}, {"receiver": "other", "zone": 12, "code": "613"}):
        assert walk(index, step("panel/12", "signal", "zone"), [("alarm.test_received", data)]).seen == {}


def test_marks_never_claim_done(index: rules.SiteIndex) -> None:
    s = step("d1", "held_open")
    with pytest.raises(Invalid) as exc:
        rules.check_mark(s, "done", "it works, trust me")
    assert exc.value.code == "done_not_by_hand"
    with pytest.raises(Invalid) as exc:
        rules.check_mark(s, "failed", "  ")
    assert exc.value.code == "reason_required"
    rules.check_mark(s, "failed", "door closer too strong")
    s.status, s.reason, s.by = "failed", "door closer too strong", "tech"
    # fixed and tried again: the gateway sees it, the earlier mark stays on record
    rules.apply(s, Observation("d1", "held_open", "held_open", {"type": "door.held_open", "seq": 3, "at": "t3"}))
    assert s.status == "done" and s.seen["marked"]["reason"] == "door closer too strong"
    with pytest.raises(Conflict) as conflict:
        rules.check_mark(s, "na", "no closer")
    assert conflict.value.code == "step_done"


def test_summary(index: rules.SiteIndex) -> None:
    steps = [Step("d1", "door", "3", "d1", "grant", status="done"), Step("d2", "door", "5", "d2", "grant", status="na"),
             Step("m1", "meter", "3", "m1", "reading")]
    assert rules.summarize(steps)["result"] == "incomplete"
    steps[2].status = "failed"
    got = rules.summarize(steps)
    assert got["result"] == "failed" and got["devices"] == 3 and got["buildings"]["3"]["failed"] == 1
    steps[2].status = "done"
    assert rules.summarize(steps)["result"] == "accepted"


EVENT_TYPES = st.sampled_from(["door.unlocked", "access.granted", "access.denied", "door.opened", "door.closed",
                               "door.held_open", "device.online", "meter.reading", "meter.anomaly", "meter.valve",
                               "alarm.raised", "alarm.restored", "alarm.test_received", "card.issued"])
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                       lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                       max_leaves=8)


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])  # index is read-only
@given(type_=EVENT_TYPES, data=st.dictionaries(st.sampled_from(["door", "card", "reason", "meter", "values", "kind",
                                                                 "device", "zone", "receiver", "alarm", "state"]),
                                               JSONISH, max_size=6))
def test_observe_never_raises_on_odd_event_data(index: rules.SiteIndex, type_: str, data: dict[str, Any]) -> None:
    """Event data is the gateway's own, but a rule must not crash the tracker whatever it holds."""
    for obs in rules.settle(rules.observe(index, type_, data, 1, "t")):
        s = Step(obs.device, "door", "", obs.device, obs.step)
        rules.apply(s, obs)
        assert s.status in ("pending", "done")
