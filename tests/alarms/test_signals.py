"""Signals from each protocol and the code -> kind tables behind them: pure (no store, no sockets), fast."""

from __future__ import annotations

import pytest

from drivers import contact_id as cid
from drivers import gb26875 as gb
from drivers.sia_dc09 import Dc09Message
from gateway.alarms.signals import (
    SILENT_CODE,
    Signal,
    cid_signal,
    dc09_dedupe,
    signals_from_dc09,
    signals_from_gb,
    silence,
)

pytestmark = pytest.mark.timeout(10)


def block(id_token: str, payload: str = "", account: str = "1234", seq: str = "0001") -> Dc09Message:
    return Dc09Message(id_token, seq, "", "0", account, f"#{account}|{payload}" if payload else "")


@pytest.mark.parametrize(("code", "kind"), [
    (110, "fire"), (111, "smoke"), (119, "fire"), (120, "panic"), (130, "burglary"), (137, "burglary"),
    (301, "fault"), (200, "supervisory"), (602, "test"), (999, "other"),
])
def test_contact_id_code_kinds(code: int, kind: str) -> None:
    assert cid.cid_kind(code)[0] == kind


def test_null_block_has_no_signals() -> None:
    assert signals_from_dc09("r", block("NULL")) == []


def test_adm_cid_block_is_one_signal() -> None:
    [s] = signals_from_dc09("r", block("ADM-CID", "1111 01 012", account="ab12"))
    assert s == Signal("r", "AB12", "111", 12, "smoke", "smoke", False, False, "1111 01 012")


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
        ("FA", 12, "fire", False, False), ("BR", 3, "burglary", True, False), ("RP", 0, "test", False, True)]
    assert all(s.account == "1234" and s.raw == "Nri1/FA012/BR003/RP" for s in sigs)


def test_unknown_payload_raises_the_parsers_error() -> None:
    with pytest.raises(cid.ContactIdError):
        signals_from_dc09("r", block("ADM-CID", "not contact id"))
    with pytest.raises(cid.ContactIdError):
        signals_from_dc09("r", block("SIA-DCS", "garbage"))


def test_raw_text_is_bounded() -> None:
    ev = cid.parse_payload("1234", "1130 01 001")
    assert len(cid_signal("r", ev, "x" * 500).raw) == 200


def frame(*units: gb.ComponentStatus | gb.SystemStatus) -> gb.Frame:
    comps = [u for u in units if isinstance(u, gb.ComponentStatus)]
    return gb.Frame(1, (1, 1), None, bytes.fromhex("010203040506"), bytes(6), gb.CMD_SEND,
                    gb.component_unit(comps), tuple(units))


def test_gb_fire_bit_raises_fire_and_restores_the_other_kinds() -> None:
    sigs = signals_from_gb("fp", frame(gb.ComponentStatus(1, 1, 40, 301, 0b0000_0011, "B3 smoke", None)))
    raised = [s for s in sigs if not s.restore]
    assert [(s.code, s.zone, s.kind, s.text) for s in raised] == [("GB-fire", 301, "fire", "B3 smoke")]
    assert sorted(s.kind for s in sigs if s.restore) == ["fault", "other", "supervisory"]
    assert all(s.account == "010203040506" for s in sigs)
    assert [s.kind for s in sigs] == sorted(s.kind for s in sigs)


def test_gb_power_fault_bit_names_its_code_and_system_status_is_zone_0() -> None:
    [fault] = [s for s in signals_from_gb("fp", frame(gb.SystemStatus(1, 1, 1 << 8, None))) if not s.restore]
    assert (fault.code, fault.zone, fault.kind, fault.text) == ("GB-main_power_fault", 0, "fault", "fire alarm system")


def test_gb_normal_status_restores_every_kind() -> None:
    sigs = signals_from_gb("fp", frame(gb.ComponentStatus(1, 1, 21, 7, 0b1, "", None)))
    assert all(s.restore for s in sigs) and sigs[0].text == "manual call point"


def test_silence_signal() -> None:
    s = silence("rcv", "2222", "panel 2222 silent for 30 s")
    assert (s.code, s.kind, s.zone, s.restore) == (SILENT_CODE, "fault", 0, False)
    assert silence("rcv", "2222", "heard", restore=True).restore


def test_dedupe_key_tells_a_retry_from_a_wrapped_sequence() -> None:
    a = dc09_dedupe(block("ADM-CID", "1110 01 003", seq="0042"))
    assert a == dc09_dedupe(block("ADM-CID", "1110 01 003", seq="0042"))
    b = dc09_dedupe(block("ADM-CID", "1130 01 004", seq="0042"))
    assert a[:2] == b[:2] == ("1234", "0042") and a[2] != b[2]
