"""Contact ID lines and GB/T 26875.3 frames: built independently, parsed, fuzzed."""

from __future__ import annotations

import struct
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import contact_id as cid
from drivers import gb26875 as gb
from drivers.alarm_stream import LineDecoder

pytestmark = pytest.mark.timeout(60)


# ---------------------------------------------------------------------- Contact ID
def test_spaced_lines() -> None:
    ev = cid.parse_line("1234 18 1110 01 012")
    assert (ev.account, ev.qualifier, ev.code, ev.group, ev.zone, ev.kind, ev.restore) == ("1234", 1, 110, 1, 12, "fire", False)
    ev = cid.parse_line("  1234 18 3111 02 004 7 ")
    assert ev.kind == "smoke" and ev.restore and ev.zone == 4
    assert cid.parse_line("1234 18 1602 00 000").liveness_only


def dtmf_line(acct: str, q: int, code: int, group: int, zone: int) -> str:
    """Reference: 0 sent as A; checksum digit makes the digit sum (0 counting 10) a multiple of 15."""
    digits = f"{acct}18{q}{code:03d}{group:02d}{zone:03d}".replace("0", "A")
    total = sum(10 if c == "A" else int(c, 16) for c in digits)
    s = (15 - total % 15) % 15
    return digits + ("F" if s == 0 else "%X" % s)


def test_dtmf_lines_with_checksum() -> None:
    line = dtmf_line("1234", 1, 131, 1, 15)
    ev = cid.parse_line(line)
    assert (ev.code, ev.zone, ev.kind) == (131, 15, "burglary")
    assert cid.format_line("1234", 1, 131, 1, 15, dtmf=True) == line
    bad = line[:-1] + ("1" if line[-1] != "1" else "2")
    with pytest.raises(cid.ContactIdError):
        cid.parse_line(bad)


@pytest.mark.parametrize("code,kind", [(110, "fire"), (111, "smoke"), (120, "panic"), (130, "burglary"),
                                       (301, "fault"), (302, "fault"), (373, "fault"), (602, "test"),
                                       (200, "supervisory"), (119, "fire"), (999, "other")])
def test_kind_table(code: int, kind: str) -> None:
    assert cid.cid_kind(code)[0] == kind


def test_sia_payloads() -> None:
    evs = cid.parse_sia("Nri1/FA012/BR3")
    assert [(e.code, e.zone, e.kind, e.restore) for e in evs] == [("FA", 12, "fire", False), ("BR", 3, "burglary", True)]
    assert cid.parse_sia("Nri1/OP001")[0].informational
    assert cid.parse_sia("NRP")[0].liveness_only
    with pytest.raises(cid.ContactIdError):
        cid.parse_sia("garbage")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_contact_id_parsers_only_raise_their_error(text: str) -> None:
    for fn in (cid.parse_line, lambda t: cid.parse_payload("1234", t), cid.parse_sia):
        try:
            fn(text)
        except cid.ContactIdError:
            pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 40))
def test_line_decoder_is_bounded(data: bytes, chunk: int) -> None:
    dec = LineDecoder(max_line=64)
    for i in range(0, len(data), chunk):
        for line in dec.feed(data[i:i + chunk]):
            assert "\n" not in line and "\r" not in line
        assert len(dec.buf) <= 64 + chunk


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
    assert a.flags == ["running", "fire"] and gb.alarm_kind(a.status) == "fire"
    assert isinstance(b, gb.ComponentStatus) and gb.alarm_kind(b.status) == "fault"
    assert gb.alarm_kind(0x0001) is None and gb.alarm_kind(0x0010) == "supervisory" and gb.alarm_kind(0x0008) == "other"


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
