"""GB/T 26875.3 frames: built independently from the layout, parsed, resynced among noise, fuzzed.

Frames quoted by other codecs and documents are in tests/conformance/gb26875/.
"""

from __future__ import annotations

import struct
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import gb26875 as gb

pytestmark = pytest.mark.timeout(60)


# ---------------------------------------------------------------------- GB/T 26875.3
def ref_frame(serial: int, cmd: int, app: bytes, *, src: bytes = b"\x01\x02\x03\x04\x05\x06") -> bytes:
    """Reference builder straight from the layout: @@ | ctrl(25) + app | sum | ##."""
    t = bytes([5, 4, 3, 23, 11, 26])                       # 2026-11-23 03:04:05
    ctrl = (serial.to_bytes(2, "little") + bytes([1, 0]) + t + src + bytes(6)
            + len(app).to_bytes(2, "little") + bytes([cmd]))
    body = ctrl + app
    return b"@@" + body + bytes([sum(body) % 256]) + b"##"


def ref_component(addr: int, status: int, desc: str) -> bytes:
    d = desc.encode("gb18030")[:31]
    return (bytes([1, 1, 40]) + addr.to_bytes(4, "little") + status.to_bytes(2, "little")
            + d + bytes(31 - len(d)) + bytes([5, 4, 3, 23, 11, 26]))


def test_component_status_frame() -> None:
    raw = ref_frame(0x1234, 2, bytes([2, 2]) + ref_component(12, 0x0003, "3号楼烟感") + ref_component(13, 0x0005, "手报"))
    f = gb.parse_frame(raw)
    assert f.serial == 0x1234 and f.command == gb.CMD_SEND and f.source == b"\x01\x02\x03\x04\x05\x06"
    assert f.time == datetime(2026, 11, 23, 3, 4, 5)
    a, b = f.units
    assert isinstance(a, gb.ComponentStatus) and a.component_address == 12 and a.description == "3号楼烟感"
    assert gb.status_flags(a.status) == ["running", "fire"] and gb.alarm_kind(a.status) == "fire"
    assert gb.kinds_of(a) == {"fire": ["fire"], "supervisory": [], "fault": []}
    assert isinstance(b, gb.ComponentStatus) and gb.alarm_kind(b.status) == "fault"
    assert gb.alarm_kind(0x0001) is None and gb.alarm_kind(0x0010) == "supervisory"
    assert gb.alarm_kind(0x0008) == "supervisory"     # shielded (屏蔽): the point is disabled


def test_system_status_and_builder_agree_with_reference() -> None:
    app = bytes([1, 1, 1, 1]) + struct.pack("<H", 0x0002) + bytes([5, 4, 3, 23, 11, 26])
    raw = ref_frame(7, 2, app)
    [u] = gb.parse_frame(raw).units
    assert isinstance(u, gb.SystemStatus) and u.status == 2 and u.system_type == 1
    built = gb.build_frame(7, 2, gb.system_unit([u]), version=(1, 0), time=datetime(2026, 11, 23, 3, 4, 5),
                           source=b"\x01\x02\x03\x04\x05\x06")
    assert built == raw
    confirm = gb.parse_frame(gb.build_confirm(gb.parse_frame(raw)))
    assert confirm.command == gb.CMD_CONFIRM and confirm.serial == 7 and confirm.destination == b"\x01\x02\x03\x04\x05\x06"


def test_bad_frames_and_resync() -> None:
    good = ref_frame(1, 2, bytes([2, 1]) + ref_component(1, 3, "x"))
    bad_sum = good[:-3] + bytes([(good[-3] + 1) % 256]) + b"##"
    with pytest.raises(gb.Gb26875Error):
        gb.parse_frame(bad_sum)
    r = gb.FrameReader()
    out = r.feed(b"\x00junk@" + bad_sum + b"@@@" + good[:10])
    out += r.feed(good[10:] + good)
    frames = [o for o in out if isinstance(o, gb.Frame)]
    assert len(frames) == 2 and any(isinstance(o, gb.BadFrame) for o in out)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(1, 64))
def test_gb_reader_never_raises(data: bytes, chunk: int) -> None:
    r = gb.FrameReader()
    for i in range(0, len(data), chunk):
        for item in r.feed(data[i:i + chunk]):
            assert isinstance(item, (gb.Frame, gb.BadFrame))
        assert len(r.buf) <= gb.HEADER_LEN + gb.MAX_DATA + 3 + chunk


@settings(max_examples=200, deadline=None)
@given(serial=st.integers(0, 0xFFFF), objs=st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF)),
                                                    min_size=1, max_size=20),
       junk=st.binary(max_size=40))
def test_gb_round_trip_among_noise(serial: int, objs: list[tuple[int, int]], junk: bytes) -> None:
    app = bytes([2, len(objs)]) + b"".join(ref_component(a, s, "") for a, s in objs)
    raw = ref_frame(serial, 2, app)
    r = gb.FrameReader()
    out = r.feed(junk.replace(b"@", b"") + raw)
    frames = [o for o in out if isinstance(o, gb.Frame)]
    assert len(frames) == 1 and frames[0].serial == serial
    assert [(u.component_address, u.status) for u in frames[0].units] == objs  # type: ignore[union-attr]


def test_a_frame_that_frames_well_but_cannot_be_read_says_why() -> None:
    """Sound framing with unreadable data is a Frame with a problem (denied with it), not dropped bytes."""
    vendor = ref_frame(3, 2, bytes([200, 1, 9, 9, 9]))
    [f] = gb.FrameReader().feed(vendor)
    assert isinstance(f, gb.Frame) and f.units == () and "user-defined" in (f.problem or "")
    short = ref_frame(4, 2, bytes([2, 1]) + ref_component(1, 3, "x")[:20])
    assert "type 2: 20 bytes for 1 objects of 46 bytes" == gb.parse_frame(short).problem
    odd_command = ref_frame(5, 0x80, b"")
    [f] = gb.FrameReader().feed(odd_command)
    assert isinstance(f, gb.Frame) and f.command == 0x80 and f.problem is None


_time = st.one_of(st.none(), st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda t: t.replace(microsecond=0)))
_b, _w, _addr = st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1)
_text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs")), max_size=7)   # <= 28 bytes in GB 18030
OBJECTS = st.one_of(
    st.builds(gb.SystemStatus, _b, _b, _w, _time),
    st.builds(gb.ComponentStatus, _b, _b, _b, _addr, _w, _text, _time),
    st.builds(gb.AnalogValue, _b, _b, _b, _addr, _b, st.integers(-32768, 32767), _time),
    st.builds(gb.SystemOperation, _b, _b, _b, _b, _time),
    st.builds(gb.SystemVersion, _b, _b, _b, _b),
    st.builds(gb.SystemConfig, _b, _b, _text),
    st.builds(gb.ComponentConfig, _b, _b, _b, _addr, _text),
    st.builds(gb.SystemTime, _b, _b, _time),
    st.builds(gb.TransmitterStatus, _b, _time),
    st.builds(gb.TransmitterOperation, _b, _b, _time),
    st.builds(gb.TransmitterVersion, _b, _b),
    st.builds(gb.TransmitterConfig, _text),
    st.builds(gb.TransmitterTime, _time),
)


@settings(max_examples=300, deadline=None)
@given(OBJECTS, st.integers(1, 5))
def test_every_object_type_round_trips(obj: gb.InfoObject, n: int) -> None:
    if getattr(obj, "time", 1) is None:     # an absent time is sent as "now": compare the rest
        return
    data = gb.encode_unit([obj] * n)
    assert gb.parse_units(data) == (obj,) * n
    frame = gb.parse_frame(gb.build_frame(1, gb.CMD_SEND, data)) if len(data) <= gb.MAX_DATA else None
    assert frame is None or frame.units == (obj,) * n


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_units_parser_only_raises_its_error(data: bytes) -> None:
    try:
        gb.parse_units(data)
    except gb.Gb26875Error:
        pass


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=200))
def test_any_well_framed_frame_parses_or_says_why(type_flag: int, body: bytes) -> None:
    f = gb.parse_frame(ref_frame(1, 2, bytes([type_flag, 1]) + body))
    assert f.problem is not None or f.units
