"""Frames and application data quoted in public GB/T 26875.3 documents and codecs, parsed as their sources say."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from drivers import gb26875 as gb
from gateway.alarms.signals import TRANSMITTER_ZONE, signals_from_gb

pytestmark = pytest.mark.timeout(30)

CORPUS = json.loads((Path(__file__).parent / "frames.json").read_text(encoding="utf-8"))
FRAMES = CORPUS["frames"]
UNITS = CORPUS["units"]


def as_expected(obj: gb.InfoObject) -> dict[str, Any]:
    """An object in the corpus's notation: class name, fields, times as text, bytes as hex."""
    out: dict[str, Any] = {"type": type(obj).__name__}
    for name, value in vars(obj).items():
        if isinstance(value, datetime):
            value = value.isoformat(sep=" ")
        elif isinstance(value, bytes):
            value = value.hex().upper()
        out[name] = value
    return out


def normalised(expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (v.upper() if k == "raw" else v) for k, v in e.items()} for e in expected]


@pytest.mark.parametrize("case", FRAMES, ids=[c["name"] for c in FRAMES])
def test_frames(case: dict[str, Any]) -> None:
    raw, exp = bytes.fromhex(case["hex"]), case["expect"]
    if "bad" in exp:
        with pytest.raises(gb.Gb26875Error, match=exp["bad"]):
            gb.parse_frame(raw)
        reader = gb.FrameReader()
        assert [type(x) for x in reader.feed(raw)] == [gb.BadFrame]
        return
    f = gb.parse_frame(raw)
    assert f.problem is None
    assert (f.serial, f.command, f.source_address) == (exp["serial"], exp["command"], exp["source"])
    for key, value in (("version", tuple(exp.get("version", ()))), ("destination", exp.get("destination")),
                       ("time", exp.get("time"))):
        if value:
            got = {"version": f.version, "destination": f.destination_address,
                   "time": f.time.isoformat(sep=" ") if f.time else None}[key]
            assert got == value, key
    assert [as_expected(o) for o in f.units] == normalised(exp["objects"])
    sigs = signals_from_gb("fp", f)
    want = [[code, TRANSMITTER_ZONE if zone == "transmitter" else zone, kind, restore, info]
            for code, zone, kind, restore, info in exp["signals"]]
    assert [[s.code, s.zone, s.kind, s.restore, s.informational] for s in sigs] == want
    assert all(s.account == exp["source"] for s in sigs)
    if "text" in exp:
        assert all(s.text.startswith(exp["text"]) for s in sigs if not s.informational)
    # the gateway's answer to a transmitter would come back with the same serial, addresses swapped
    confirm = gb.parse_frame(gb.build_confirm(f))
    assert (confirm.serial, confirm.command, confirm.source, confirm.destination) == (
        f.serial, gb.CMD_CONFIRM, f.destination, f.source)


def test_the_quoted_confirm_is_what_the_gateway_builds() -> None:
    """The centre's confirm in the source is byte for byte the gateway's, given the same time tag."""
    fire = gb.parse_frame(bytes.fromhex(FRAMES[0]["hex"]))
    quoted = bytes.fromhex(FRAMES[1]["hex"])
    assert gb.build_confirm(fire, time=datetime(2012, 9, 26, 9, 58, 35)) == quoted
    assert gb.build_deny(fire, time=datetime(2012, 9, 26, 9, 58, 35)) == bytes.fromhex(FRAMES[2]["hex"])


@pytest.mark.parametrize("case", UNITS, ids=[c["name"] for c in UNITS])
def test_units(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    if "problem" in case:
        with pytest.raises(gb.Gb26875Error, match=case["problem"]):
            gb.parse_units(data)
        return
    objs = gb.parse_units(data)
    assert [as_expected(o) for o in objs] == normalised(case["objects"])
    assert gb.encode_unit(list(objs)) == data or case["name"].endswith("configure")   # padding is not kept


def test_descriptions_padded_with_spaces_are_trimmed() -> None:
    [obj] = gb.parse_frame(bytes.fromhex(FRAMES[0]["hex"])).units
    assert isinstance(obj, gb.ComponentStatus) and obj.description == ""
    padded = gb.ComponentStatus(1, 1, 42, 5, 3, "", None).encode()[:9] + "3号楼 烟感".encode("gb18030").ljust(
        31, b" ") + bytes(6)
    [again] = gb.parse_units(bytes([2, 1]) + padded)
    assert isinstance(again, gb.ComponentStatus) and again.description == "3号楼 烟感"


def test_addresses_in_the_standards_order() -> None:
    f = gb.parse_frame(bytes.fromhex(FRAMES[0]["hex"]))
    assert f.source == bytes.fromhex("790300000000")                  # on the wire, low byte first
    assert f.source_address == "000000000379" and int(f.source_address, 16) == 889
    assert f.destination_address == "000000015B38" and int(f.destination_address, 16) == 88888
    assert gb.address_bytes("000000000379") == f.source
