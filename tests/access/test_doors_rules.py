"""Door outputs and egress in the config (check-config problems with file, line and key), and the hold rules
as pure functions: which doors a hold keeps, what a release frees, when a relock needs confirming."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.access.hold_rules import HoldMap, is_fire_active, relock_refusal
from gateway.config import check_config, load_config

pytestmark = pytest.mark.timeout(30)

BASE = """\
[gateway]
id = "gw-b3"
site = "garden-court"
data_dir = "var"

[mqtt]
url = "mqtt://127.0.0.1:1883"

[[readers]]
id = "r1"
driver = "wiegand-serial"
port = "loop://"

[[buses]]
id = "relays"
transport = "tcp"
port = "127.0.0.1:5020"

[[doors]]
id = "d1"
building = "3"
reader = "r1"
output = { bus = "relays", device_id = 3, coil = 2 }
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    return [f"{p.line}: {p.key}: {p.message}" for p in check_config(path)]


def test_relay_output_and_egress_parse(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(BASE + '\n[[doors]]\nid = "d2"\nreader = "r1"\noutput = 1\negress = false\n')
    cfg = load_config(path)
    d1, d2 = cfg.doors
    assert not isinstance(d1.output, int) and (d1.output.bus, d1.output.device_id, d1.output.coil) == ("relays", 3, 2)
    assert d1.egress is True and d2.output == 1 and d2.egress is False


@pytest.mark.parametrize(("extra", "where", "words"), [
    ('\n[[doors]]\nid = "d2"\nreader = "r1"\noutput = { bus = "nope", device_id = 1, coil = 0 }\n',
     "doors[1].output.bus", "no bus"),
    ('\n[[doors]]\nid = "d2"\nreader = "r1"\noutput = { bus = "relays", device_id = 3, coil = 2 }\n',
     "doors[1].output.coil", "already drives door 'd1'"),
    ('\n[[meters]]\nid = "m1"\nbus = "relays"\ndevice_id = 9\nprofile = "generic-hot-water"\nunit = "3-1-0101"\n',
     "doors[0].output.bus", "own bus"),
    ('\n[[doors]]\nid = "d2"\nreader = "r1"\noutput = { bus = "relays", device_id = 0, coil = 1 }\n',
     "doors[1].output", "device_id"),
    ('\n[[doors]]\nid = "d2"\nreader = "r1"\noutput = { bus = "relays", coil = 1, relay = 4 }\n',
     "doors[1].output", ""),
    ('\n[[alarm_receivers]]\nid = "p"\nprotocol = "sia-dc09"\nlisten = "127.0.0.1:1"\nunplaced_fire = "building"\n',
     "alarm_receivers[0]", "needs building"),
    ('\n[[alarm_receivers]]\nid = "p"\nprotocol = "sia-dc09"\nlisten = "127.0.0.1:1"\nunplaced_fire = "building"\n'
     'building = "9"\n', "alarm_receivers[0].building", "no egress door in building '9'"),
    ('\n[[alarm_receivers]]\nid = "p"\nprotocol = "sia-dc09"\nlisten = "127.0.0.1:1"\nunplaced_fire = "zone"\n',
     "alarm_receivers[0].unplaced_fire", "site"),
])
def test_config_problems(tmp_path: Path, extra: str, where: str, words: str) -> None:
    found = problems(tmp_path, BASE + extra)
    assert any(where in p and words in p for p in found), found


def test_good_relay_config_has_no_problems(tmp_path: Path) -> None:
    extra = ('\n[[alarm_receivers]]\nid = "p"\nprotocol = "sia-dc09"\nlisten = "127.0.0.1:1"\n'
             'unplaced_fire = "building"\nbuilding = "3"\n')
    assert problems(tmp_path, BASE + extra) == []


# ---------------------------------------------------------------------- hold rules (pure)
def test_a_reapplied_hold_never_rereleases_a_relocked_door() -> None:
    m = HoldMap({"alarm-1": (["a", "b"], "fire")})
    assert m.doors_to_hold("alarm-1", ["a", "b", "c"]) == ["a", "b"]
    m.put("alarm-1", m.without("b")["alarm-1"][0], "fire")
    assert m.doors_to_hold("alarm-1", ["a", "b"]) == ["a"]         # relocked: stays relocked
    assert m.doors_to_hold("alarm-2", ["b", "b", "c"]) == ["b", "c"]  # a new fire releases it again


def test_release_frees_only_doors_no_other_hold_keeps() -> None:
    m = HoldMap({"alarm-1": (["a", "b"], "fire"), "alarm-2": (["b"], "fire")})
    assert m.held() == {"a": "fire", "b": "fire"} and m.tokens_of("b") == ["alarm-1", "alarm-2"]
    assert m.freed_by_release("alarm-1") == ["a"] and m.freed_by_release("nope") == []
    assert m.without("b") == {"alarm-1": (["a"], "fire"), "alarm-2": ([], "fire")}
    m.remove("alarm-1")
    assert "alarm-1" not in m and m.freed_by_release("alarm-2") == ["b"]


@pytest.mark.parametrize(("causes", "confirm", "refused"), [
    ([{"alarm": 7, "kind": "fire", "active": True}], False, "alarm 7 (fire) still active"),
    ([{"alarm": 7, "kind": "fire", "active": True}], True, None),
    ([{"alarm": 7, "kind": "smoke", "active": False}], False, None),       # restored, not yet acknowledged
    ([None], False, "cause is unknown"),                                  # nobody can say: treated as active
    ([{"alarm": 7, "active": False}, {"alarm": 8, "kind": "smoke", "active": True}], False, "alarm 8 (smoke)"),
    ([], False, None),                                                    # only an operator unlock
])
def test_relock_refusal(causes: list[dict[str, object] | None], confirm: bool, refused: str | None) -> None:
    why = relock_refusal(causes, confirm)
    assert (why is None) == (refused is None) and (refused is None or refused in (why or ""))
    assert is_fire_active(causes) == any(c is None or c.get("active") for c in causes)
