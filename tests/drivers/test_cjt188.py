"""CJ/T 188 framing and 901F / A017 decoding: the layout rules, units, FF fields, both DI orders; fuzzed."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import cjt188 as c


def test_read_request_bytes_match_the_standard_layout() -> None:
    frame = c.read_current_request("00000012345678", 0x20, ser=1)
    # FE FE 68 20 | 78 56 34 12 00 00 00 | 01 03 | 1F 90 01 | CS 16
    assert frame[:2] == b"\xfe\xfe"
    assert frame[2:11] == bytes.fromhex("682078563412000000")
    assert frame[11:16] == bytes.fromhex("01031f9001")
    assert frame[-2] == sum(frame[2:-2]) & 0xFF and frame[-1] == 0x16
    swapped = c.read_current_request("00000012345678", 0x20, ser=1, di_high_first=True)
    assert swapped[13:15] == b"\x90\x1f"


def test_heat_meter_current_data_round_trip() -> None:
    raw = c.current_reply(c.CurrentData(0x20, "00000012345678", total_m3=1234.56, flow_m3h=0.4321,
                                        heat_kwh=98765.43, settlement_heat_kwh=98000.0, power_kw=12.5, supply_c=55.3,
                                        return_c=41.25, hours=8760, meter_time=datetime(2026, 12, 26, 10, 30, 5),
                                        valve="closed"))
    frame, used = c.parse_frame(raw)
    assert used == len(raw) and frame.is_reply and not frame.is_error and not frame.di_swapped
    assert frame.address == "00000012345678" and frame.di == c.DI_CURRENT
    d = c.decode_current(frame)
    assert (d.total_m3, d.flow_m3h, d.heat_kwh, d.power_kw) == (1234.56, 0.4321, 98765.43, 12.5)
    assert (d.supply_c, d.return_c, d.hours) == (55.3, 41.25, 8760)
    assert d.meter_time == datetime(2026, 12, 26, 10, 30, 5) and d.valve == "closed"
    assert len(frame.payload) == 43 and raw[12] == 0x2E
    assert d.values["settlement_heat_kwh"] == 98000.0 and d.values["hours_h"] == 8760


def test_hot_water_meter_type_0x11() -> None:
    raw = c.current_reply(c.CurrentData(0x11, "12345678901234", total_m3=87.65, settlement_m3=80.0, battery_low=True))
    d = c.decode_current(c.parse_frame(raw)[0])
    assert d.total_m3 == 87.65 and d.battery_low and d.valve == "open"
    assert d.values == {"total_m3": 87.65, "settlement_m3": 80.0, "status": 4, "battery_low": True}


def test_both_di_orders_are_read_and_reported() -> None:
    for high_first in (False, True):
        raw = c.current_reply(c.CurrentData(0x10, "00000000000001", total_m3=1.0), di_high_first=high_first)
        frame, _ = c.parse_frame(raw)
        assert frame.di == c.DI_CURRENT and frame.di_swapped is high_first
        assert c.decode_current(frame).total_m3 == 1.0
    assert c.normalise_di(0xA017) == (0xA017, False) and c.normalise_di(0x17A0) == (0xA017, True)
    assert c.normalise_di(0x1234) == (0x1234, False)  # unknown either way: as sent


def test_ff_fields_are_missing_not_a_lost_reading() -> None:
    raw = c.current_reply(c.CurrentData(0x20, "00000000000002", total_m3=10.5, heat_kwh=None, power_kw=None,
                                        supply_c=None, return_c=40.0, hours=None, meter_time=None))
    d = c.decode_current(c.parse_frame(raw)[0])
    assert d.total_m3 == 10.5 and d.return_c == 40.0
    assert d.heat_kwh is None and d.power_kw is None and d.supply_c is None and d.hours is None and d.meter_time is None
    assert not {"heat_kwh", "power_kw", "supply_c", "hours_h"} & set(d.values)


def _water(total: bytes, settle: bytes = b"\x00\x00\x00\x00\x2c") -> c.Frame:
    payload = total + settle + b"\x00" * 7 + b"\x00\x00"
    return c.parse_frame(c.build_frame(0x10, "00000000000001", c.C_READ_REPLY, c.DI_CURRENT, 0, payload))[0]


def test_units_are_converted_exactly() -> None:
    assert c.decode_current(_water(bytes.fromhex("5634120029"))).total_m3 == 1.23456  # 1234.56 L
    assert c.decode_current(_water(bytes.fromhex("0100000029"))).total_m3 == 0.00001   # 0.01 L
    heat = c.CurrentData(0x20, "00000000000003", heat_gj=12.34, settlement_heat_gj=10.0, total_m3=1.0)
    d = c.decode_current(c.parse_frame(c.current_reply(heat))[0])
    assert d.heat_gj == 12.34 and d.heat_kwh is None and d.values["heat_gj"] == 12.34
    assert d.values["settlement_heat_gj"] == 10.0 and "heat_kwh" not in d.values


@pytest.mark.parametrize("total, words", [
    (bytes.fromhex("0000000005"), "is energy, expected volume"),  # kWh where the volume belongs
    (bytes.fromhex("0000000000"), "unknown unit code 00"),
    (bytes.fromhex("00aa00002c"), "not BCD"),
])
def test_a_wrong_number_is_an_error_not_a_reading(total: bytes, words: str) -> None:
    with pytest.raises(c.FrameError, match=words):
        c.decode_current(_water(total))


def test_meter_time_that_is_not_a_date_is_just_missing() -> None:
    payload = bytes.fromhex("000100002c000100002c") + bytes.fromhex("99999999999999") + b"\x00\x00"
    frame = c.parse_frame(c.build_frame(0x10, "00000000000001", c.C_READ_REPLY, c.DI_CURRENT, 0, payload))[0]
    d = c.decode_current(frame)
    assert d.meter_time is None and d.total_m3 == 1.0


def test_not_a_reading() -> None:
    req, _ = c.parse_frame(c.read_current_request("00000000000001"))
    with pytest.raises(c.FrameError, match="not a 901F reply"):
        c.decode_current(req)
    gas = c.parse_frame(c.build_frame(0x30, "00000000000001", c.C_READ_REPLY, c.DI_CURRENT, 0, b"\x00" * 19))[0]
    with pytest.raises(c.FrameError, match="not a water"):
        c.decode_current(gas)


def test_valve_request_and_reply() -> None:
    req, _ = c.parse_frame(c.valve_request("00000012345678", open_=False))
    assert req.control == c.C_WRITE and req.di == c.DI_VALVE and req.payload == bytes([c.VALVE_CLOSE])
    rep, _ = c.parse_frame(c.valve_reply("00000012345678", 0x20, closed=True, di_high_first=True))
    assert c.valve_reply_state(rep) == "closed" and rep.di_swapped


def test_checksum_and_end_byte_are_checked() -> None:
    raw = bytearray(c.current_reply(c.CurrentData(0x20, "00000012345678", total_m3=1.0)))
    raw[-2] ^= 1
    with pytest.raises(c.FrameError, match="checksum"):
        c.parse_frame(bytes(raw))
    raw = bytearray(c.current_reply(c.CurrentData(0x20, "00000012345678", total_m3=1.0)))
    raw[-1] = 0x17
    with pytest.raises(c.FrameError, match="16"):
        c.parse_frame(bytes(raw))
    with pytest.raises(c.IncompleteFrame):
        c.parse_frame(raw[:10])


def test_stream_parser_resynchronises_after_noise() -> None:
    good = c.current_reply(c.CurrentData(0x20, "00000012345678", total_m3=5.0))
    p = c.StreamParser()
    out = p.feed(b"\x00\x68\x99" + good[:7])
    out += p.feed(good[7:] + good)
    frames = [x for x in out if isinstance(x, c.Frame)]
    assert len(frames) == 2 and all(c.decode_current(f).total_m3 == 5.0 for f in frames)
    assert any(isinstance(x, c.FrameError) for x in out)


def test_address_byte_order() -> None:
    assert c.address_bytes("78330011223344") == bytes.fromhex("44332211003378")
    with pytest.raises(ValueError, match="14 digits"):
        c.address_bytes("1234")


# ---------------------------------------------------------------------- fuzz
def _decode_or_clear_error(frame: c.Frame) -> None:
    """Never anything but a FrameError; a decoded reading holds only finite numbers."""
    try:
        d = c.decode_current(frame)
    except c.FrameError:
        return
    for v in d.values.values():
        assert isinstance(v, (bool, int)) or math.isfinite(v)


@given(st.binary(max_size=140))
@settings(max_examples=500, deadline=None)
def test_parser_never_crashes_on_random_bytes(data: bytes) -> None:
    try:
        frame, used = c.parse_frame(data)
    except c.FrameError:
        return
    assert 0 < used <= len(data)
    _decode_or_clear_error(frame)
    try:
        c.valve_reply_state(frame)
    except c.FrameError:
        pass


@given(st.sampled_from([*range(0x10, 0x1A), *range(0x20, 0x2A), 0x30, 0xAA]),
       st.sampled_from([0x81, 0x84, 0xC1, 0x01, 0xAA]), st.sampled_from([0x901F, 0xA017, 0x810A, 0x1234]),
       st.booleans(), st.binary(max_size=60))
@settings(max_examples=1000, deadline=None)
def test_valid_frames_with_any_data_decode_or_fail_clearly(mtype: int, control: int, di: int, high: bool,
                                                           payload: bytes) -> None:
    raw = c.build_frame(mtype, "00000000000001", control, di, 0, payload, di_high_first=high)
    frame, _ = c.parse_frame(raw)
    _decode_or_clear_error(frame)
    try:
        c.valve_reply_state(frame)
    except c.FrameError:
        pass


@given(st.sampled_from([0x10, 0x11, 0x20, 0x25]), st.lists(st.sampled_from([0x00, 0x09, 0x10, 0x99, 0xFF, 0xAA]),
                                                            min_size=43, max_size=43))
@settings(max_examples=500, deadline=None)
def test_bcd_ff_and_garbage_mixes(mtype: int, data: list[int]) -> None:
    units = {0x10: [4, 9], 0x11: [4, 9], 0x20: [4, 9, 14, 19, 24], 0x25: [4, 9, 14, 19, 24]}[mtype]
    for i, u in zip(units, [0x05, 0x05, 0x17, 0x35, 0x2C] if mtype >= 0x20 else [0x2C, 0x2C], strict=True):
        data[i] = u
    raw = c.build_frame(mtype, "00000000000001", c.C_READ_REPLY, c.DI_CURRENT, 0, bytes(data))
    _decode_or_clear_error(c.parse_frame(raw)[0])


@given(st.lists(st.binary(max_size=40), max_size=10))
@settings(max_examples=200, deadline=None)
def test_stream_parser_never_crashes(chunks: list[bytes]) -> None:
    p = c.StreamParser()
    for chunk in chunks:
        for item in p.feed(chunk):
            assert isinstance(item, (c.Frame, c.FrameError))


opt = st.one_of(st.none(), st.integers(0, 99_999_999))


@given(st.integers(0x20, 0x29), opt, opt, opt, st.one_of(st.none(), st.integers(0, 999_999)),
       st.integers(0, 10**14 - 1), st.booleans())
@settings(max_examples=300, deadline=None)
def test_heat_encode_decode_round_trip(mtype: int, total_c: int | None, flow_e4: int | None, heat_c: int | None,
                                       temp: int | None, addr: int, high: bool) -> None:
    address = f"{addr:014d}"
    raw = c.current_reply(c.CurrentData(mtype, address, total_m3=None if total_c is None else total_c / 100,
                                        flow_m3h=None if flow_e4 is None else flow_e4 / 10_000,
                                        heat_kwh=None if heat_c is None else heat_c / 100,
                                        supply_c=None if temp is None else temp / 100), di_high_first=high)
    d = c.decode_current(c.parse_frame(raw)[0])
    assert d.address == address
    for got, sent, scale in ((d.total_m3, total_c, 100), (d.flow_m3h, flow_e4, 10_000), (d.heat_kwh, heat_c, 100),
                             (d.supply_c, temp, 100)):
        assert (got is None) if sent is None else (got is not None and round(got * scale) == sent)


@given(st.integers(0x10, 0x19), opt, opt)
@settings(max_examples=200, deadline=None)
def test_water_encode_decode_round_trip(mtype: int, total_c: int | None, settle_c: int | None) -> None:
    raw = c.current_reply(c.CurrentData(mtype, "00000000000009", total_m3=None if total_c is None else total_c / 100,
                                        settlement_m3=None if settle_c is None else settle_c / 100))
    d = c.decode_current(c.parse_frame(raw)[0])
    assert d.values.get("total_m3") == (None if total_c is None else total_c / 100)
    assert d.values.get("settlement_m3") == (None if settle_c is None else settle_c / 100)
