"""CJ/T 188 framing and 901F / A017 decoding, fuzzed."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import cjt188 as c


def test_read_request_bytes_match_the_standard_layout() -> None:
    frame = c.read_current_request("00000012345678", 0x20, ser=1)
    # FE FE 68 20 | 78 56 34 12 00 00 00 | 01 03 | 1F 90 01 | CS 16
    assert frame[:2] == b"\xfe\xfe"
    assert frame[2:11] == bytes.fromhex("6820785634120000 00".replace(" ", ""))
    assert frame[11:16] == bytes.fromhex("01031f9001")
    assert frame[-2] == sum(frame[2:-2]) & 0xFF and frame[-1] == 0x16


def test_heat_meter_current_data_round_trip() -> None:
    raw = c.current_reply(c.CurrentData(0x20, "00000012345678", total_m3=1234.56, flow_m3h=0.4321,
                                        heat_kwh=98765.43, power_kw=12.5, supply_c=55.3, return_c=41.25,
                                        hours=8760, meter_time=datetime(2026, 12, 26, 10, 30, 5), valve="closed"))
    frame, used = c.parse_frame(raw)
    assert used == len(raw) and frame.is_reply and not frame.is_error
    assert frame.address == "00000012345678" and frame.di == c.DI_CURRENT
    d = c.decode_current(frame)
    assert (d.total_m3, d.flow_m3h, d.heat_kwh, d.power_kw) == (1234.56, 0.4321, 98765.43, 12.5)
    assert (d.supply_c, d.return_c, d.hours) == (55.3, 41.25, 8760)
    assert d.meter_time == datetime(2026, 12, 26, 10, 30, 5) and d.valve == "closed"
    assert frame.payload.__len__() == 43 and raw[12] == 0x2E


def test_hot_water_meter_type_0x11() -> None:
    raw = c.current_reply(c.CurrentData(0x11, "12345678901234", total_m3=87.65, battery_low=True))
    d = c.decode_current(c.parse_frame(raw)[0])
    assert d.total_m3 == 87.65 and d.battery_low and d.valve == "open" and d.values == {"total_m3": 87.65}


def test_valve_request_and_reply() -> None:
    req, _ = c.parse_frame(c.valve_request("00000012345678", open_=False))
    assert req.control == c.C_WRITE and req.di == c.DI_VALVE and req.payload == bytes([c.VALVE_CLOSE])
    rep, _ = c.parse_frame(c.valve_reply("00000012345678", 0x20, closed=True))
    assert c.valve_reply_state(rep) == "closed"


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


@given(st.binary(max_size=120))
@settings(max_examples=500, deadline=None)
def test_parser_never_crashes_on_random_bytes(data: bytes) -> None:
    try:
        frame, used = c.parse_frame(data)
    except c.FrameError:
        return
    assert 0 < used <= len(data)
    try:
        c.decode_current(frame)
    except c.FrameError:
        pass


@given(st.lists(st.binary(max_size=40), max_size=10))
@settings(max_examples=200, deadline=None)
def test_stream_parser_never_crashes(chunks: list[bytes]) -> None:
    p = c.StreamParser()
    for chunk in chunks:
        for item in p.feed(chunk):
            assert isinstance(item, (c.Frame, c.FrameError))


@given(st.integers(0x20, 0x29), st.integers(0, 99_999_999), st.integers(0, 99_999_999), st.integers(0, 999_999),
       st.integers(0, 10**14 - 1))
@settings(max_examples=200, deadline=None)
def test_encode_decode_round_trip(mtype: int, total_cents: int, flow_e4: int, temp: int, addr: int) -> None:
    address = f"{addr:014d}"
    raw = c.current_reply(c.CurrentData(mtype, address, total_m3=total_cents / 100, flow_m3h=flow_e4 / 10_000,
                                        supply_c=temp / 100))
    d = c.decode_current(c.parse_frame(raw)[0])
    assert d.address == address
    assert round(d.total_m3 * 100) == total_cents and round(d.flow_m3h * 10_000) == flow_e4
    assert round(d.supply_c * 100) == temp
