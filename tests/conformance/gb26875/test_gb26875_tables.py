"""GB/T 26875.3 tables 4 and 5, status bits and operation flags, against two independent transcriptions."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.gb26875 import tables

pytestmark = pytest.mark.timeout(30)

HERE = Path(__file__).parent


def load(name: str) -> dict[int, str]:
    out = {}
    for line in (HERE / name).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            value, text = line.split("\t")[:2]
            out[int(value)] = text
    return out


def same(a: str, b: str) -> bool:
    """Names as the transcriptions write them: full-width or ASCII brackets, any case."""
    table = str.maketrans({"（": "(", "）": ")"})
    return a.translate(table).lower() == b.translate(table).lower()


#: where the transcription slipped, and why the table says otherwise
SYSTEM_SLIPS = {23: ("消防电源", "written 消防电梯, the name of type 20; the Go codec has FirePowerSupply")}
COMPONENT_SLIPS = {
    24: ("消火栓按钮", "written 消防栓按钮; the standard's term (and table 4's 11) is 消火栓"),
    61: ("紫外火焰探测器", "written 紫外火灾探测器; 62 is 红外火焰探测器, the Go codec UltravioletFlameDetector"),
    121: ("警报装置", "written 报警装置; the Go codec's AlarmDevice, GB 50116's 火灾警报装置"),
}


@pytest.mark.parametrize(("ours", "doc", "go", "slips"), [
    (tables.SYSTEM_TYPES, "table4_system_types.tsv", "go_system_types.tsv", SYSTEM_SLIPS),
    (tables.COMPONENT_TYPES, "table5_component_types.tsv", "go_component_types.tsv", COMPONENT_SLIPS),
], ids=["table 4 system types", "table 5 component types"])
def test_tables_match_the_standard(ours: dict[int, tuple[str, str]], doc: str, go: str,
                                   slips: dict[int, tuple[str, str]]) -> None:
    transcribed, go_numbers = load(doc), load(go)
    assert set(ours) == set(transcribed) == set(go_numbers)
    for value, (name, _english) in ours.items():
        if value in slips:
            assert name == slips[value][0] and not same(name, transcribed[value])
        else:
            assert same(name, transcribed[value]), (value, name, transcribed[value])


def test_component_42_is_a_photoelectric_smoke_detector() -> None:
    assert tables.component_name(42) == "点型光电感烟火灾探测器"
    assert tables.COMPONENT_TYPES[42][1] == "point photoelectric smoke detector"
    assert load("go_component_types.tsv")[42] == "PointTypePhotoElectricitySmokeFireDetectorEquipmentType"


def test_reserved_and_user_defined_values_say_so() -> None:
    assert tables.system_name(5) == "系统类型 5 (预留)" and tables.system_name(200) == "系统类型 200 (用户自定义)"
    assert tables.component_name(38) == "部件类型 38 (预留)"
    assert tables.component_name(128) == "部件类型 128 (用户自定义)"


GO_NAMES = {"runtime_normal": ("running", "monitoring"), "alarming": ("fire",), "fault": ("fault",),
            "blocking": ("shielded",), "supervise": ("supervisory",), "opened": ("started",),
            "feedback": ("feedback",), "delay": ("delay",), "main_power_fault": ("main_power_fault", "power_fault"),
            "backup_power_fault": ("backup_power_fault",), "bus_fault": ("bus_fault",), "manual_running": ("manual",),
            "configure_changed": ("config_changed",), "reset": ("reset", "reset_action"),
            "communication_fault": ("centre_link_fault",), "monitor_connection_fault": ("monitored_line_fault",),
            "reset_action": ("reset",), "mute_action": ("silence",), "manual_alarm_action": ("manual_alarm",),
            "cancel_alarm_action": ("alarm_cleared",), "self_inspection_action": ("self_test",),
            "inspection_reply": ("roll_call_answer",), "confirm_action": ("confirm",), "test_action": ("test",)}
MAPPERS = {"StdTransmissionStateFlagBitMapper": tables.TRANSMITTER_BITS,
           "StdControllerStateFlagBitMapper": tables.SYSTEM_BITS,
           "StdEquipmentStateFlagBitMapper": tables.COMPONENT_BITS,
           "StdTransmissionOperationFlagBitMapper": tables.TRANSMITTER_OPERATIONS,
           "StdControllerOperationFlagBitMapper": tables.SYSTEM_OPERATIONS}


def test_status_bits_and_operation_flags_match_the_go_codec() -> None:
    seen: dict[str, set[int]] = {m: set() for m in MAPPERS}
    for line in (HERE / "go_bits.tsv").read_text().splitlines():
        if line.startswith("#"):
            continue
        mapper, bit, go_name = line.split("\t")
        ours = MAPPERS[mapper]
        assert ours[int(bit)] in GO_NAMES[go_name], (mapper, bit, go_name)
        seen[mapper].add(int(bit))
    for mapper, bits in seen.items():
        assert bits == set(MAPPERS[mapper]), mapper


def test_type_flags() -> None:
    assert tables.UPSTREAM_TYPES == {1, 2, 3, 4, 5, 6, 7, 8, 21, 24, 25, 26, 28}
    assert tables.DOWNSTREAM_TYPES == {61, 62, 63, 64, 65, 66, 67, 68, 81, 84, 85, 86, 88, 89, 90, 91}
    assert tables.type_flag_problem(21) == ""
    assert "reserved" in tables.type_flag_problem(22) and "reserved" in tables.type_flag_problem(0)
    assert "user-defined" in tables.type_flag_problem(130) and "reserved" in tables.type_flag_problem(255)
