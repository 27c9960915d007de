"""The CJ/T 188 conformance corpus (tests/conformance/cjt188/corpus.toml): frames other people wrote.

Every case is parsed and decoded as the corpus says; every reply is also replayed by the simulator and read
over the real wire (a pyserial ``socket://`` URL, the bus the gateway uses) to the same values.
"""

from __future__ import annotations

import asyncio
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from drivers import cjt188 as c
from drivers.cjt188.link import Cjt188Bus, Cjt188FramingError
from drivers.sim.cjt188 import Cjt188Simulator

CORPUS = Path(__file__).resolve().parents[1] / "conformance" / "cjt188" / "corpus.toml"
CASES: list[dict[str, Any]] = tomllib.loads(CORPUS.read_text(encoding="utf-8"))["case"]


def by_kind(*kinds: str) -> list[Any]:
    return [pytest.param(case, id=case["id"]) for case in CASES if case["kind"] in kinds]


def raw(case: dict[str, Any]) -> bytes:
    return bytes.fromhex(case["hex"])


def check_reading(case: dict[str, Any], data: c.CurrentData) -> None:
    exp = case["expect"]
    assert data.address == exp["address"] and data.meter_type == exp["meter_type"]
    assert data.values == pytest.approx(exp["values"]), data.values
    for name in exp.get("absent", []):
        assert getattr(data, name) is None and name not in data.values
    when = exp.get("meter_time", "")
    assert data.meter_time == (datetime.fromisoformat(when) if when else None)
    assert data.valve == exp["valve"]


def test_corpus_is_well_formed() -> None:
    assert len({case["id"] for case in CASES}) == len(CASES)
    for case in CASES:
        src = case["source"]
        assert ("repo" in src and "path" in src and "commit" in src and "line" in src) or "url" in src \
            or "index" in src, case["id"]
        assert case.get("basis"), case["id"]
    kinds = {case["kind"] for case in CASES}
    assert kinds == {"reply", "valve-reply", "request", "address-reply", "broken", "undecodable"}
    # water and heat meters, from several sources each
    types = {case["id"]: case["expect"].get("meter_type") for case in CASES if case["kind"] == "reply"}
    water = {i for i, t in types.items() if t in c.WATER_TYPES}
    heat = {i for i, t in types.items() if t in c.HEAT_TYPES}
    assert len(water) >= 4 and len(heat) >= 2


@pytest.mark.parametrize("case", by_kind("reply"))
def test_replies_decode(case: dict[str, Any]) -> None:
    frame, used = c.parse_frame(raw(case))
    assert used == len(raw(case))
    assert frame.di == c.DI_CURRENT and frame.di_swapped == case["expect"]["di_swapped"]
    check_reading(case, c.decode_current(frame))


@pytest.mark.parametrize("case", by_kind("request", "address-reply"))
def test_requests_and_address_replies_parse(case: dict[str, Any]) -> None:
    frame, _ = c.parse_frame(raw(case))
    exp = case["expect"]
    assert (frame.address, frame.meter_type, frame.control, frame.di) == (
        exp["address"], exp["meter_type"], exp["control"], exp["di"])
    assert frame.di_swapped == exp["di_swapped"]
    if "ser" in exp:
        assert frame.ser == exp["ser"]
    if "payload" in exp:
        assert frame.payload == bytes.fromhex(exp["payload"])


@pytest.mark.parametrize("case", by_kind("request"))
def test_our_requests_are_byte_identical_where_the_source_used_the_standard_control(case: dict[str, Any]) -> None:
    """What we build for the same meter, DI order and SER is what the other tool sent."""
    frame, _ = c.parse_frame(raw(case))
    if frame.control == c.C_READ and frame.di == c.DI_CURRENT:
        ours = c.read_current_request(frame.address, frame.meter_type, frame.ser, preamble=0,
                                      di_high_first=frame.di_swapped)
    elif frame.control == c.C_WRITE and frame.di == c.DI_VALVE:
        ours = c.valve_request(frame.address, frame.payload == b"\x55", frame.meter_type, frame.ser, preamble=0,
                               di_high_first=frame.di_swapped)
    else:
        return  # read-address and the vendor's 2A valve control: parsed above, never sent by the gateway
    assert ours == raw(case).lstrip(b"\xfe")


@pytest.mark.parametrize("case", by_kind("valve-reply"))
def test_valve_replies(case: dict[str, Any]) -> None:
    frame, _ = c.parse_frame(raw(case))
    assert frame.address == case["expect"]["address"] and frame.di_swapped == case["expect"]["di_swapped"]
    assert c.valve_reply_state(frame) == case["expect"]["valve"]


@pytest.mark.parametrize("case", by_kind("broken"))
def test_broken_frames_are_refused_with_a_reason(case: dict[str, Any]) -> None:
    with pytest.raises(c.FrameError, match=case["expect"]["error"]):
        c.parse_frame(raw(case))
    # and a stream reader reports it and goes on
    items = c.StreamParser().feed(raw(case))
    assert items and all(isinstance(i, c.FrameError) for i in items)


@pytest.mark.parametrize("case", by_kind("undecodable"))
def test_undecodable_replies_are_refused_with_a_reason(case: dict[str, Any]) -> None:
    frame, _ = c.parse_frame(raw(case))
    assert frame.address == case["expect"]["address"]
    with pytest.raises(c.FrameError, match=case["expect"]["error"]):
        c.decode_current(frame)


# ---------------------------------------------------------------------- over the wire
async def _read_over_the_wire(frames: dict[int, bytes], address: str, meter_type: int, di: int,
                              request: bytes) -> c.Frame:
    sim = Cjt188Simulator()
    sim.add(address, meter_type=meter_type, replay=frames)
    port = await sim.start()
    bus = Cjt188Bus(f"socket://127.0.0.1:{port}", timeout_s=1.0, retries=0, wakeup=4)
    try:
        return await bus.exchange(request, address, di)
    finally:
        await bus.close()
        await sim.stop()


@pytest.mark.parametrize("case", by_kind("reply"))
def test_replies_over_the_wire(case: dict[str, Any]) -> None:
    exp = case["expect"]
    req = c.read_current_request(exp["address"], exp["meter_type"], preamble=0)
    frame = asyncio.run(_read_over_the_wire({c.DI_CURRENT: raw(case)}, exp["address"], exp["meter_type"],
                                            c.DI_CURRENT, req))
    check_reading(case, c.decode_current(frame))


@pytest.mark.parametrize("case", by_kind("valve-reply"))
def test_valve_replies_over_the_wire(case: dict[str, Any]) -> None:
    exp = case["expect"]
    req = c.valve_request(exp["address"], exp["valve"] == "open", 0x10, preamble=0)
    frame = asyncio.run(_read_over_the_wire({c.DI_VALVE: raw(case)}, exp["address"], 0x10, c.DI_VALVE, req))
    assert c.valve_reply_state(frame) == exp["valve"]


def test_a_broken_reply_over_the_wire_is_a_framing_error_not_a_reading() -> None:
    case = next(x for x in CASES if x["id"] == "blog-water-reply-bad-checksum")
    req = c.read_current_request("78330011223344", 0x10, preamble=0)
    with pytest.raises(Cjt188FramingError, match="checksum"):
        asyncio.run(_read_over_the_wire({c.DI_CURRENT: raw(case)}, "78330011223344", 0x10, c.DI_CURRENT, req))
