"""Signals from each protocol and the code -> kind tables behind them: pure (no store, no sockets), fast."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import cid_codes
from drivers import contact_id as cid
from drivers import gb26875 as gb
from drivers.sia_dc09 import Dc09Message
from gateway.alarms.signals import (
    SILENT_CODE,
    SYSTEM_ZONE_BASE,
    TRANSMITTER_ZONE,
    Signal,
    cid_signal,
    dc09_dedupe,
    gb_zone,
    signals_from_dc09,
    signals_from_gb,
    silence,
)

pytestmark = pytest.mark.timeout(10)


def block(id_token: str, payload: str = "", account: str = "1234", seq: str = "0001") -> Dc09Message:
    return Dc09Message(id_token, seq, "", "0", account, f"#{account}|{payload}" if payload else "")


@pytest.mark.parametrize(("code", "kind"), [
    (110, "fire"), (111, "smoke"), (119, "other"), (120, "panic"), (130, "burglary"), (137, "burglary"),
    (143, "fault"), (301, "fault"), (200, "supervisory"), (602, "test"), (999, "other"),
])
def test_contact_id_code_kinds(code: int, kind: str) -> None:
    assert cid_codes.describe(code).kind == kind


def test_null_block_has_no_signals() -> None:
    assert signals_from_dc09("r", block("NULL")) == []


def test_adm_cid_block_is_one_signal() -> None:
    [s] = signals_from_dc09("r", block("ADM-CID", "1111 01 012", account="ab12"))
    assert s == Signal("r", "AB12", "111", 12, "smoke", "Smoke", False, False, "1111 01 012")


def test_adm_cid_restore_and_informational() -> None:
    [restore] = signals_from_dc09("r", block("ADM-CID", "3130 01 004"))
    assert restore.restore and restore.kind == "burglary" and not restore.informational
    [periodic] = signals_from_dc09("r", block("ADM-CID", "1602 00 000"))
    assert periodic.informational and periodic.kind == "test"
    [opening] = signals_from_dc09("r", block("ADM-CID", "1401 01 003"))
    assert opening.informational


def test_sia_dcs_block_can_carry_several_signals() -> None:
    sigs = signals_from_dc09("r", block("SIA-DCS", "Nri1/FA012/BR003/RP"))
    assert [(s.code, s.zone, s.kind, s.restore, s.informational) for s in sigs] == [
        ("FA", 12, "fire", False, False), ("BR", 3, "burglary", True, False), ("BR", 3, "fault", True, False),
        ("BR", 3, "supervisory", True, False), ("RP", 0, "test", False, True)]   # a restoral ends alarm and trouble
    assert all(s.account == "1234" and s.raw == "Nri1/FA012/BR003/RP" for s in sigs)


def test_sia_restoral_restores_alarm_and_trouble_and_unknown_codes_are_alarms() -> None:
    sigs = signals_from_dc09("r", block("SIA-DCS", "Nri1/FR012/QQ7"))
    assert [(s.code, s.kind, s.restore) for s in sigs] == [
        ("FR", "fire", True), ("FR", "fault", True), ("FR", "supervisory", True), ("QQ", "other", False)]
    assert sigs[-1].text == "unknown code QQ" and sigs[-1].zone == 7


def test_unknown_payload_raises_the_parsers_error() -> None:
    with pytest.raises(cid.ContactIdError):
        signals_from_dc09("r", block("ADM-CID", "not contact id"))
    with pytest.raises(cid.ContactIdError):
        signals_from_dc09("r", block("SIA-DCS", "garbage"))


def test_raw_text_is_bounded() -> None:
    ev = cid.parse_payload("1234", "1130 01 001")
    assert len(cid_signal("r", ev, "x" * 500).raw) == 200


def frame(*units: gb.InfoObject) -> gb.Frame:
    return gb.Frame(1, (1, 1), None, bytes.fromhex("060504030201"), bytes(6), gb.CMD_SEND, b"", tuple(units))


def test_gb_fire_bit_raises_fire_and_restores_the_other_kinds() -> None:
    sigs = signals_from_gb("fp", frame(gb.ComponentStatus(1, 1, 23, 301, 0b0000_0011, "B3 手报", None)))
    raised = [s for s in sigs if not s.restore]
    assert [(s.code, s.zone, s.kind, s.text) for s in raised] == [("GB-fire", 301, "fire", "B3 手报")]
    assert sorted(s.kind for s in sigs if s.restore) == ["fault", "supervisory"]
    assert all(s.account == "010203040506" for s in sigs)      # the address in the standard's order
    assert [s.kind for s in sigs] == sorted(s.kind for s in sigs)


def test_gb_smoke_detector_fire_names_the_detector_and_shielded_is_supervisory() -> None:
    sigs = signals_from_gb("fp", frame(gb.ComponentStatus(1, 1, 42, 7, 0b1010, "", None)))
    assert [(s.code, s.kind, s.restore, s.text) for s in sigs if not s.restore] == [
        ("GB-fire", "fire", False, "点型光电感烟火灾探测器"), ("GB-shielded", "supervisory", False, "点型光电感烟火灾探测器")]


def test_gb_power_fault_bit_names_its_code_and_system_status_has_its_own_zone() -> None:
    [fault] = [s for s in signals_from_gb("fp", frame(gb.SystemStatus(1, 1, 1 << 8, None))) if not s.restore]
    assert (fault.code, fault.zone, fault.kind, fault.text) == (
        "GB-main_power_fault", SYSTEM_ZONE_BASE + 256 + 1, "fault", "火灾报警系统 1号")
    two = signals_from_gb("fp", frame(gb.SystemStatus(1, 1, 0b10, None), gb.SystemStatus(13, 2, 0b1, None)))
    fire = [s for s in two if s.kind == "fire"]
    assert [(s.zone, s.restore) for s in fire] == [(gb_zone(gb.SystemStatus(1, 1, 0, None)), False),
                                                   (SYSTEM_ZONE_BASE + 13 * 256 + 2, True)]   # no clash


def test_gb_transmitter_status_raises_fire_and_fault() -> None:
    sigs = signals_from_gb("fp", frame(gb.TransmitterStatus(0b0010_0011, None)))
    assert [(s.code, s.zone, s.kind, s.restore) for s in sigs] == [
        ("GB-centre_link_fault", TRANSMITTER_ZONE, "fault", False), ("GB-fire", TRANSMITTER_ZONE, "fire", False)]
    assert all(s.text == "用户信息传输装置" for s in sigs)


def test_gb_operations_are_logged_and_a_manual_alarm_is_a_fire() -> None:
    sigs = signals_from_gb("fp", frame(gb.TransmitterOperation(0b0000_0100, 1, None)))
    assert [(s.code, s.kind, s.restore, s.informational) for s in sigs] == [
        ("GB-operation", "other", False, True), ("GB-manual_alarm", "fire", False, False)]
    cleared = signals_from_gb("fp", frame(gb.SystemOperation(1, 1, 0b1000, 2, None)))
    assert [(s.code, s.kind, s.restore) for s in cleared] == [("GB-operation", "other", False), ("GB-fire", "fire", True)]
    assert cleared[0].text == "火灾报警系统 1号: alarm_cleared"


def test_gb_news_objects_are_logged() -> None:
    sigs = signals_from_gb("fp", frame(gb.AnalogValue(1, 1, 92, 43, 2, 511, None), gb.TransmitterVersion(2, 3),
                                       gb.SystemConfig(1, 1, "主机"), gb.TransmitterTime(None)))
    assert all(s.informational and s.kind == "other" for s in sigs)
    assert [s.text for s in sigs] == ["消防水箱 高度 5.11 m", "用户信息传输装置 软件版本 2.3", "火灾报警系统 1号 配置: 主机",
                                      "用户信息传输装置 时间 无效"]
    assert [s.zone for s in sigs][:1] == [43]


def test_gb_normal_status_restores_every_kind() -> None:
    sigs = signals_from_gb("fp", frame(gb.ComponentStatus(1, 1, 21, 7, 0b1, "", None)))
    assert all(s.restore for s in sigs) and sigs[0].text == "探测回路"


def test_silence_signal() -> None:
    s = silence("rcv", "2222", "panel 2222 silent for 30 s")
    assert (s.code, s.kind, s.zone, s.restore) == (SILENT_CODE, "fault", 0, False)
    assert silence("rcv", "2222", "heard", restore=True).restore


def test_dedupe_key_tells_a_retry_from_a_wrapped_sequence() -> None:
    a = dc09_dedupe(block("ADM-CID", "1110 01 003", seq="0042"))
    assert a == dc09_dedupe(block("ADM-CID", "1110 01 003", seq="0042"))
    b = dc09_dedupe(block("ADM-CID", "1130 01 004", seq="0042"))
    assert a[:2] == b[:2] == ("1234", "0042") and a[2] != b[2]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_gb_signals_from_any_readable_frame(data: st.DataObject) -> None:
    """Any bytes in objects of a defined size make signals without an exception."""
    from drivers.gb26875.objects import FIXED

    cls = data.draw(st.sampled_from(sorted(FIXED.values(), key=lambda c: c.TYPE)))
    count = data.draw(st.integers(1, 4))
    body = data.draw(st.binary(min_size=cls.size() * count, max_size=cls.size() * count))
    f = gb.parse_frame(gb.build_frame(1, gb.CMD_SEND, bytes([cls.TYPE, count]) + body))
    assert f.problem is None and len(f.units) == count
    for s in signals_from_gb("fp", f):
        assert s.kind in ("fire", "fault", "supervisory", "other") and len(s.raw) <= 200
