"""Which GB/T 26875.3 status bits make which alarm kind, per object type.

A status object states its whole condition, so each kind it can express is either raised
(some bit of it set) or restored (all clear) by every frame. The bits, in priority order:

* fire (bit 1, 火警) -- ``fire``, whatever the detector: the standard has one fire bit, and the
  component type (smoke, heat, gas, manual call point...) is in the alarm's text. Combustible gas
  and electrical fire detectors report their alarms on this bit too.
* supervisory (bit 4) and shielded (bit 3, 屏蔽: the point is disabled, so the fire system is
  not running normally) -- ``supervisory``.
* fault (bit 2) and the power and bus faults -- ``fault``; for the transmitter itself (type 21)
  also its link to the centre and its monitored line.

Bit 0 (normal running / test) is ignored: many devices leave it 0 while reporting a real fire
(the standard's own example frame for a smoke detector's fire has status ``02 00``). Started,
feedback, delay, manual and the like are states, not alarms. No gateway imports.
"""

from __future__ import annotations

from drivers.alarm_codes import Kind
from drivers.gb26875.objects import ComponentStatus, SystemStatus, TransmitterStatus
from drivers.gb26875.tables import COMPONENT_BITS, SYSTEM_BITS, TRANSMITTER_BITS

BIT_RUNNING, BIT_FIRE, BIT_FAULT, BIT_SHIELDED, BIT_SUPERVISORY = 0, 1, 2, 3, 4

#: (bit, kind) in priority order, per object type; the first set bit of a kind names the alarm
SYSTEM_ALARMS: list[tuple[int, Kind]] = [(1, "fire"), (4, "supervisory"), (3, "supervisory"), (2, "fault"),
                                         (8, "fault"), (9, "fault"), (10, "fault")]
COMPONENT_ALARMS: list[tuple[int, Kind]] = [(1, "fire"), (4, "supervisory"), (3, "supervisory"), (2, "fault"),
                                            (8, "fault")]
TRANSMITTER_ALARMS: list[tuple[int, Kind]] = [(1, "fire"), (2, "fault"), (3, "fault"), (4, "fault"), (5, "fault"),
                                              (6, "fault")]
StatusObject = SystemStatus | ComponentStatus | TransmitterStatus


def _layout(obj: StatusObject) -> tuple[list[tuple[int, Kind]], dict[int, str]]:
    if isinstance(obj, TransmitterStatus):
        return TRANSMITTER_ALARMS, TRANSMITTER_BITS
    if isinstance(obj, ComponentStatus):
        return COMPONENT_ALARMS, COMPONENT_BITS
    return SYSTEM_ALARMS, SYSTEM_BITS


def kinds_of(obj: StatusObject) -> dict[Kind, list[str]]:
    """Every kind this object's bits can mean -> the names of its set bits (empty: restored)."""
    alarms, names = _layout(obj)
    out: dict[Kind, list[str]] = {}
    for bit, kind in alarms:
        out.setdefault(kind, [])
        if obj.status >> bit & 1:
            out[kind].append(names[bit])
    return out


def status_flags(status: int, names: dict[int, str] = SYSTEM_BITS) -> list[str]:
    """The names of the set bits of a status word (system bits unless told)."""
    return [name for bit, name in names.items() if status >> bit & 1]


def alarm_kind(status: int) -> Kind | None:
    """The kind a system/component status word means first (fire before the rest), or None."""
    for bit, kind in SYSTEM_ALARMS:
        if status >> bit & 1:
            return kind
    return None
