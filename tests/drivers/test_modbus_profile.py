"""Modbus meter profiles: byte/word orders, parsing with file:line problems, read planning (pure, fast)."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.modbus import Field, ProfileError, decode_raw, encode_raw, load_profile, plan_reads
from drivers.modbus.profile import TYPES, parse_profile

ROOT = Path(__file__).resolve().parents[2]


def test_orders_match_the_byte_layouts_meter_manuals_show() -> None:
    # 123.456 as float32 big endian is 42 F6 E9 79 (A B C D)
    a, b, c, d = struct.pack(">f", 123.456)
    assert encode_raw(123.456, "float32", "ABCD") == [a << 8 | b, c << 8 | d]
    assert encode_raw(123.456, "float32", "CDAB") == [c << 8 | d, a << 8 | b]
    assert encode_raw(123.456, "float32", "BADC") == [b << 8 | a, d << 8 | c]
    assert encode_raw(123.456, "float32", "DCBA") == [d << 8 | c, b << 8 | a]
    assert decode_raw([0x1234], "uint16", "BA") == 0x3412
    assert decode_raw([0xFFFF], "int16", "AB") == -1
    assert decode_raw([0, 0, 0, 1], "uint64", "ABCD") == 1
    assert decode_raw([1, 0, 0, 0], "uint64", "CDAB") == 1


@given(st.sampled_from(sorted(TYPES)), st.sampled_from(["ABCD", "CDAB", "BADC", "DCBA"]), st.data())
@settings(max_examples=300, deadline=None)
def test_encode_decode_round_trip(type_: str, order: str, data: st.DataObject) -> None:
    code, n = TYPES[type_]
    if n == 1:
        order = "BA" if order in ("BADC", "DCBA") else "AB"
    if code in "fd":
        value = data.draw(st.floats(allow_nan=False, allow_infinity=False, width=32 if code == "f" else 64))
    else:
        bits = 16 * n
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if code.islower() else (0, (1 << bits) - 1)
        value = data.draw(st.integers(lo, hi))
    regs = encode_raw(value, type_, order)
    assert len(regs) == n and all(0 <= r <= 0xFFFF for r in regs)
    back = decode_raw(regs, type_, order)
    if code == "f":
        assert math.isclose(back, value, rel_tol=1e-6, abs_tol=1e-38)
    else:
        assert back == value


@given(st.lists(st.integers(0, 0xFFFF), min_size=0, max_size=6), st.sampled_from(sorted(TYPES)),
       st.sampled_from(["AB", "BA", "ABCD", "CDAB", "BADC", "DCBA"]))
def test_decode_never_crashes_on_register_garbage(regs: list[int], type_: str, order: str) -> None:
    try:
        decode_raw(regs, type_, order)
    except ValueError:
        assert len(regs) != TYPES[type_][1]


def _fields(*specs: tuple[str, int, str]) -> dict:
    return {"fields": {name: {"address": a, "type": t} for name, a, t in specs}}


def test_plan_merges_near_fields_and_splits_far_ones() -> None:
    p = parse_profile("p", _fields(("total_m3", 0, "float32"), ("flow_m3h", 4, "float32"), ("temp_c", 7, "int16"),
                                   ("far_m3", 100, "float32"), ("farther_m3", 102, "uint32")))
    plan = plan_reads(p, max_gap=8)
    assert [(b.start, b.count, len(b.fields)) for b in plan] == [(0, 8, 3), (100, 4, 2)]
    assert len(plan) < len(p.fields)
    assert [(b.start, b.count) for b in plan_reads(p, max_gap=0)] == [(0, 2), (4, 2), (7, 1), (100, 4)]
    assert [(b.start, b.count) for b in plan_reads(p, max_gap=200)] == [(0, 104)]


def test_plan_respects_the_125_register_limit() -> None:
    p = parse_profile("p", _fields(*[(f"f{i}_m3", i * 2, "float32") for i in range(100)]))
    plan = plan_reads(p, max_gap=8, max_registers=125)
    assert all(b.count <= 125 for b in plan)
    assert sum(len(b.fields) for b in plan) == 100
    assert len(plan) == 2


@given(st.lists(st.tuples(st.integers(0, 2000), st.sampled_from(sorted(TYPES))), min_size=1, max_size=30,
                unique_by=lambda t: t[0]), st.integers(0, 20), st.integers(4, 125))
@settings(max_examples=200, deadline=None)
def test_plan_covers_every_field_exactly_once(specs: list[tuple[int, str]], gap: int, max_regs: int) -> None:
    # drop overlapping fields so the profile is valid
    chosen: list[tuple[int, str]] = []
    for addr, t in sorted(specs):
        if not chosen or addr >= chosen[-1][0] + TYPES[chosen[-1][1]][1]:
            chosen.append((addr, t))
    p = parse_profile("p", _fields(*[(f"f{i}_x", a, t) for i, (a, t) in enumerate(chosen)]))
    plan = plan_reads(p, max_gap=gap, max_registers=max_regs)
    names = [f.name for b in plan for f in b.fields]
    assert sorted(names) == sorted(f.name for f in p.fields)
    for b in plan:
        assert b.count <= max(max_regs, 4)
        assert all(b.start <= f.address and f.end <= b.start + b.count for f in b.fields)


def test_shipped_profiles_load() -> None:
    for path in sorted((ROOT / "config" / "meters").glob("*.toml")):
        p = load_profile(path)
        assert p.description
        assert any(f.name == "total_m3" for f in p.fields), path


def test_profile_problems_name_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('description = "x"\ncolour = "red"\n[fields.total_m3]\naddress = 1\ntype = "float32"\n'
                    '[fields.flow_m3h]\naddress = 2\ntype = "float32"\n[fields.temp_c]\naddress = 9\n'
                    'type = "float16"\n[fields.odd]\naddress = 20\ntype = "uint16"\norder = "CDAB"\n'
                    '[valve]\naddress = 3\nopen = 1\nclose = 1\n')
    with pytest.raises(ProfileError) as exc:
        load_profile(path)
    got = {(key, line) for line, key, _ in exc.value.problems}
    assert ("colour", 2) in got
    assert ("fields.flow_m3h.address", 7) in got            # overlaps total_m3 (1..2)
    assert ("fields.temp_c.type", 11) in got
    assert ("fields.odd.order", 15) in got
    assert ("valve.close", 19) in got
    msgs = " ".join(m for _, _, m in exc.value.problems)
    assert "overlaps field 'total_m3'" in msgs


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_profile_loader_never_crashes_on_garbage(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("p") / "x.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_profile(path)
    except ProfileError:
        pass


def test_field_scale() -> None:
    f = Field("temp_c", 0, "int16", "AB", 0.1)
    assert f.decode(f.encode(-12.3)) == pytest.approx(-12.3)


def test_add_to_folds_parts_and_is_validated() -> None:
    p = parse_profile("p", {"fields": {"total_m3": {"address": 0, "type": "uint32"},
                                       "total_fraction_m3": {"address": 2, "type": "uint32", "scale": 0.001,
                                                             "add_to": "total_m3"}}})
    assert p.fold({"total_m3": 12, "total_fraction_m3": 0.345}) == {"total_m3": 12.345}
    with pytest.raises(ProfileError) as exc:
        parse_profile("p", {"fields": {"total_m3": {"address": 0, "type": "uint32", "add_to": "nope"}}})
    assert exc.value.problems[0][1] == "fields.total_m3.add_to"
