"""GB/T 26875.3-2011 code tables, exactly as the standard numbers them: data only.

* :data:`SYSTEM_TYPES` -- table 4 (8.2.1.1, 系统类型定义): 0, 1, 10-24; 2-9 and 25-127 reserved,
  128-255 user-defined.
* :data:`COMPONENT_TYPES` -- table 5 (8.2.1.2, 部件类型定义): 0-121 with gaps reserved,
  128-255 user-defined. 42 is 点型光电感烟火灾探测器 (point photoelectric smoke detector).
* status bits of a system (8.2.1.1), a component (8.2.1.2) and the transmitter itself (8.2.1.8,
  用户信息传输装置运行状态); operation flags (8.2.1.4, 8.2.1.9); analog value types (8.2.1.3);
  information object type flags (8.1.1, 类型标志).

Sources, cross-checked against each other (tests/conformance/gb26875/PROVENANCE.md):
ActorLancer/GB-T-26875.3.2011-rs ``GB26875文档.md`` (a transcription of the standard's sections
8.1-8.3) and shootingfans/codec_gb26875_3_2011 ``constant/*.go`` (a Go codec's tables). The
transcription's two slips (system type 23 written 消防电梯, component 61 written 紫外火灾探测器) are
corrected from the Go tables and the standard's wording.
"""

from __future__ import annotations

#: table 4: system type -> (name in the standard, English)
SYSTEM_TYPES: dict[int, tuple[str, str]] = {
    0: ("通用", "general"),
    1: ("火灾报警系统", "fire alarm system"),
    10: ("消防联动控制器", "fire linkage controller"),
    11: ("消火栓系统", "fire hydrant system"),
    12: ("自动喷水灭火系统", "automatic sprinkler system"),
    13: ("气体灭火系统", "gas extinguishing system"),
    14: ("水喷雾灭火系统(泵启动方式)", "water spray system (pump start)"),
    15: ("水喷雾灭火系统(压力容器启动方式)", "water spray system (pressure vessel start)"),
    16: ("泡沫灭火系统", "foam extinguishing system"),
    17: ("干粉灭火系统", "dry powder extinguishing system"),
    18: ("防烟排烟系统", "smoke control and exhaust system"),
    19: ("防火门及卷帘系统", "fire door and shutter system"),
    20: ("消防电梯", "fire elevator"),
    21: ("消防应急广播", "fire emergency broadcast"),
    22: ("消防应急照明和疏散指示系统", "emergency lighting and evacuation signs"),
    23: ("消防电源", "fire power supply"),
    24: ("消防电话", "fire telephone"),
}

#: table 5: component type -> (name in the standard, English)
COMPONENT_TYPES: dict[int, tuple[str, str]] = {
    0: ("通用", "general"),
    1: ("火灾报警控制器", "fire alarm control panel"),
    10: ("可燃气体探测器", "combustible gas detector"),
    11: ("点型可燃气体探测器", "point combustible gas detector"),
    12: ("独立式可燃气体探测器", "standalone combustible gas detector"),
    13: ("线型可燃气体探测器", "line combustible gas detector"),
    16: ("电气火灾监控报警器", "electrical fire monitoring alarm unit"),
    17: ("剩余电流式电气火灾监控探测器", "residual-current electrical fire detector"),
    18: ("测温式电气火灾监控探测器", "temperature electrical fire detector"),
    21: ("探测回路", "detection loop"),
    22: ("火灾显示盘", "fire display panel"),
    23: ("手动火灾报警按钮", "manual call point"),
    24: ("消火栓按钮", "fire hydrant button"),
    25: ("火灾探测器", "fire detector"),
    30: ("感温火灾探测器", "heat detector"),
    31: ("点型感温火灾探测器", "point heat detector"),
    32: ("点型感温火灾探测器(S型)", "point heat detector (S type)"),
    33: ("点型感温火灾探测器(R型)", "point heat detector (R type)"),
    34: ("线型感温火灾探测器", "line heat detector"),
    35: ("线型感温火灾探测器(S型)", "line heat detector (S type)"),
    36: ("线型感温火灾探测器(R型)", "line heat detector (R type)"),
    37: ("光纤感温火灾探测器", "optical fibre heat detector"),
    40: ("感烟火灾探测器", "smoke detector"),
    41: ("点型离子感烟火灾探测器", "point ionisation smoke detector"),
    42: ("点型光电感烟火灾探测器", "point photoelectric smoke detector"),
    43: ("线型光束感烟火灾探测器", "line beam smoke detector"),
    44: ("吸气式感烟火灾探测器", "aspirating smoke detector"),
    50: ("复合式火灾探测器", "multi-sensor fire detector"),
    51: ("复合式感烟感温火灾探测器", "smoke and heat multi-sensor detector"),
    52: ("复合式感光感温火灾探测器", "flame and heat multi-sensor detector"),
    53: ("复合式感光感烟火灾探测器", "flame and smoke multi-sensor detector"),
    61: ("紫外火焰探测器", "ultraviolet flame detector"),
    62: ("红外火焰探测器", "infrared flame detector"),
    69: ("感光火灾探测器", "flame detector"),
    74: ("气体探测器", "gas detector"),
    78: ("图像摄像方式火灾探测器", "video fire detector"),
    79: ("感声火灾探测器", "acoustic fire detector"),
    81: ("气体灭火控制器", "gas extinguishing controller"),
    82: ("消防电气控制装置", "fire electrical control device"),
    83: ("消防控制室图形显示装置", "fire control room graphic display"),
    84: ("模块", "module"),
    85: ("输入模块", "input module"),
    86: ("输出模块", "output module"),
    87: ("输入/输出模块", "input/output module"),
    88: ("中继模块", "repeater module"),
    91: ("消防水泵", "fire pump"),
    92: ("消防水箱", "fire water tank"),
    95: ("喷淋泵", "sprinkler pump"),
    96: ("水流指示器", "water flow indicator"),
    97: ("信号阀", "signal valve"),
    98: ("报警阀", "alarm valve"),
    99: ("压力开关", "pressure switch"),
    101: ("阀驱动装置", "valve actuator"),
    102: ("防火门", "fire door"),
    103: ("防火阀", "fire damper"),
    104: ("通风空调", "ventilation and air conditioning"),
    105: ("泡沫液泵", "foam concentrate pump"),
    106: ("管网电磁阀", "pipe network solenoid valve"),
    111: ("防烟排烟风机", "smoke control fan"),
    113: ("排烟防火阀", "smoke exhaust fire damper"),
    114: ("常闭送风口", "normally closed air supply outlet"),
    115: ("排烟口", "smoke exhaust outlet"),
    116: ("电控挡烟垂壁", "electric smoke curtain"),
    117: ("防火卷帘控制器", "fire shutter controller"),
    118: ("防火门监控器", "fire door monitor"),
    121: ("警报装置", "alarm sounder"),
}

#: 8.2.1.1 system status bits (bit0 1 = normal running, 0 = test; bits 14-15 reserved)
SYSTEM_BITS: dict[int, str] = {
    0: "running", 1: "fire", 2: "fault", 3: "shielded", 4: "supervisory", 5: "started", 6: "feedback",
    7: "delay", 8: "main_power_fault", 9: "backup_power_fault", 10: "bus_fault", 11: "manual",
    12: "config_changed", 13: "reset",
}
#: 8.2.1.2 component status bits (bit0 as above; bits 9-15 reserved)
COMPONENT_BITS: dict[int, str] = {
    0: "running", 1: "fire", 2: "fault", 3: "shielded", 4: "supervisory", 5: "started", 6: "feedback",
    7: "delay", 8: "power_fault",
}
#: 8.2.1.8 the transmitter's own running status (1 byte; bit0 1 = monitoring, 0 = test; bit7 reserved)
TRANSMITTER_BITS: dict[int, str] = {
    0: "monitoring", 1: "fire", 2: "fault", 3: "main_power_fault", 4: "backup_power_fault",
    5: "centre_link_fault", 6: "monitored_line_fault",
}
#: 8.2.1.4 operation flags of a building fire facility
SYSTEM_OPERATIONS: dict[int, str] = {
    0: "reset", 1: "silence", 2: "manual_alarm", 3: "alarm_cleared", 4: "self_test", 5: "confirm", 6: "test",
}
#: 8.2.1.9 operation flags of the transmitter (bit5 is the answer to a roll call, 查岗应答)
TRANSMITTER_OPERATIONS: dict[int, str] = {
    0: "reset", 1: "silence", 2: "manual_alarm", 3: "alarm_cleared", 4: "self_test", 5: "roll_call_answer",
    6: "test",
}

#: 8.2.1.3 analog value types: type -> (name, unit, scale of one count); 13-127 reserved, 128-255 user
ANALOG_TYPES: dict[int, tuple[str, str, float]] = {
    0: ("未用", "", 1), 1: ("事件计数", "", 1), 2: ("高度", "m", 0.01), 3: ("温度", "°C", 0.1),
    4: ("压力", "MPa", 0.1), 5: ("压力", "kPa", 0.1), 6: ("气体浓度", "%LEL", 0.1), 7: ("时间", "s", 1),
    8: ("电压", "V", 0.1), 9: ("电流", "A", 0.1), 10: ("流量", "L/s", 0.1), 11: ("风量", "m³/min", 0.1),
    12: ("风速", "m/s", 1),
}

#: 8.1.1 information object type flags (类型标志): 1-8 and 21-28 upstream, 61-91 downstream
TYPE_FLAGS: dict[int, str] = {
    1: "上传建筑消防设施系统状态", 2: "上传建筑消防设施部件运行状态", 3: "上传建筑消防设施部件模拟量值",
    4: "上传建筑消防设施操作信息", 5: "上传建筑消防设施软件版本", 6: "上传建筑消防设施系统配置情况",
    7: "上传建筑消防设施部件配置情况", 8: "上传建筑消防设施系统时间",
    21: "上传用户信息传输装置运行状态", 24: "上传用户信息传输装置操作信息", 25: "上传用户信息传输装置软件版本",
    26: "上传用户信息传输装置配置情况", 28: "上传用户信息传输装置系统时间",
    61: "读建筑消防设施系统状态", 62: "读建筑消防设施部件运行状态", 63: "读建筑消防设施部件模拟量值",
    64: "读建筑消防设施操作信息", 65: "读建筑消防设施软件版本", 66: "读建筑消防设施系统配置情况",
    67: "读建筑消防设施部件配置情况", 68: "读建筑消防设施系统时间",
    81: "读用户信息传输装置运行状态", 84: "读用户信息传输装置操作信息记录", 85: "读用户信息传输装置软件版本",
    86: "读用户信息传输装置配置情况", 88: "读用户信息传输装置系统时间", 89: "初始化用户信息传输装置",
    90: "同步用户信息传输装置时钟", 91: "查岗命令",
}
UPSTREAM_TYPES = frozenset(t for t in TYPE_FLAGS if t < 60)
DOWNSTREAM_TYPES = frozenset(t for t in TYPE_FLAGS if t > 60)

#: 6.6 control unit command byte (命令字节)
COMMANDS: dict[int, str] = {1: "control", 2: "send data", 3: "confirm", 4: "request", 5: "reply", 6: "deny"}


def _name(table: dict[int, tuple[str, str]], value: int, what: str) -> str:
    if value in table:
        return table[value][0]
    return f"{what} {value} ({'用户自定义' if value >= 128 else '预留'})"


def system_name(system_type: int) -> str:
    """The standard's name of a system type; reserved and user-defined types say so."""
    return _name(SYSTEM_TYPES, system_type, "系统类型")


def component_name(component_type: int) -> str:
    """The standard's name of a component type; reserved and user-defined types say so."""
    return _name(COMPONENT_TYPES, component_type, "部件类型")


def type_flag_problem(type_flag: int) -> str:
    """Why an information object type cannot be read ('' when the standard defines it)."""
    if type_flag in TYPE_FLAGS:
        return ""
    if 128 <= type_flag <= 254:
        return f"type {type_flag} is user-defined (128-254): its object length is not in the standard, refused"
    return f"type {type_flag} is reserved in GB/T 26875.3 (8.1.1): refused"


def bits(value: int, names: dict[int, str]) -> list[str]:
    """The names of the set bits of a status or operation byte/word, lowest bit first."""
    return [name for bit, name in names.items() if value >> bit & 1]
