"""Whatever reaches the demo control or sits in the simulators' state file, the answer is a clear line or a
fresh start -- never a crash (hypothesis)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.modbus import load_profile
from drivers.sim import control
from drivers.sim.cjt188 import SimCjtMeter
from drivers.sim.control import SimHub, card_from_text
from drivers.sim.meters import SimMeter
from drivers.sim.panel_demo import ContactIdLink, DemoPanel
from drivers.sim.state import SimState
from drivers.sim.usage import DrawPattern

ROOT = Path(__file__).resolve().parents[2]
WORDS = st.sampled_from(["card", "door", "alarm", "restore", "status", "fire", "panic", "test", "open", "closed",
                         "r-b3u1", "duty-panel", "12", "0", "-1", "99999999999999999999", "26:12:345",
                         "26:0a1b2c40", "H10301:1:1", "37:70000:1", "\x00", "é"])
LINES = st.one_of(st.text(max_size=80), st.lists(st.one_of(WORDS, st.text(max_size=8)), max_size=5).map(" ".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=LINES)
def test_any_request_gets_one_clear_line(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control, "TAKEN_S", 0.001)

    async def ask() -> str:
        hub = SimHub()
        hub.panels["duty-panel"] = DemoPanel("duty-panel", ContactIdLink("127.0.0.1", 9, "1234"),
                                             {12: "B3 stairwell smoke"}, poll_s=3600, mix=())
        return await hub.handle(line)

    reply = asyncio.run(ask())
    assert reply.startswith(("ok ", "error ")) and "\n" not in reply, reply


@given(text=st.text(max_size=40))
def test_card_text_is_a_card_id_or_says_the_forms(text: str) -> None:
    try:
        card = card_from_text(text)
    except ValueError as exc:
        assert str(exc).startswith("card ")
    else:
        bits, _, hexpart = card.partition(":")
        assert bits.isdigit() and all(c in "0123456789abcdef" for c in hexpart)


JSONISH = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
                       lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12),
                                                                                          children, max_size=4),
                       max_leaves=12)
SAVED = st.dictionaries(st.sampled_from(["total_m3", "heat_kwh", "at", "valve_state", "valve_closed", "x"]), JSONISH,
                        max_size=6)


@settings(max_examples=300, deadline=None)
@given(saved=SAVED)
def test_a_saved_state_restores_or_is_refused_and_the_meter_still_answers(saved: dict[str, Any]) -> None:
    profile = load_profile(ROOT / "gateway" / "meters" / "generic-hot-water.toml")
    pattern = DrawPattern("k", rate_m3h=0.3)
    for meter in (SimMeter(1, profile, pattern=pattern), SimCjtMeter("00202307160177", pattern=pattern)):
        try:
            meter.restore(saved)
        except (KeyError, TypeError, ValueError):
            pass
        total = meter.current_total() if isinstance(meter, SimMeter) else meter.current().total_m3
        assert math.isfinite(total) and total >= 0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=200), JSONISH.map(lambda v: json.dumps({"version": 1, "devices": v}).encode())))
def test_a_damaged_state_file_is_a_fresh_start(body: bytes, tmp_path: Path) -> None:
    path = tmp_path / "simulate-state.json"
    path.write_bytes(body)
    state = SimState(path)
    for key in ("modbus/b/1", "x"):
        got = state.get(key)
        assert got is None or isinstance(got, dict)
