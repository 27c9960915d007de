"""GB/T 26875.3-2011 (urban fire remote monitoring: user information transmission device <-> centre).

One concern a module:

* :mod:`.frame` -- the frame (``@@ .. ##``), its checksum, confirm/deny, the stream reader;
* :mod:`.objects` -- every information object type the standard defines (8.2, 8.3), parsed and
  encodable; reserved and user-defined types refused with the reason;
* :mod:`.tables` -- the standard's tables 4 (system types) and 5 (component types), status bits,
  operation flags, analog types, type flags;
* :mod:`.meaning` -- which status bits make which alarm kind.

``from drivers import gb26875 as gb`` gives the names below. No gateway imports; tested against
frames quoted in public GB/T 26875.3 codecs and documents (tests/conformance/gb26875/).
"""

from __future__ import annotations

from drivers.gb26875.frame import (
    CMD_CONFIRM,
    CMD_CONTROL,
    CMD_DENY,
    CMD_REPLY,
    CMD_REQUEST,
    CMD_SEND,
    END,
    HEADER_LEN,
    MAX_DATA,
    START,
    BadFrame,
    Frame,
    FrameReader,
    address_bytes,
    address_text,
    build_confirm,
    build_deny,
    build_frame,
    checksum,
    parse_frame,
)
from drivers.gb26875.meaning import (
    BIT_FIRE,
    BIT_RUNNING,
    alarm_kind,
    kinds_of,
    status_flags,
)
from drivers.gb26875.objects import (
    AnalogValue,
    ComponentConfig,
    ComponentStatus,
    Downstream,
    Gb26875Error,
    InfoObject,
    OtherUnit,
    SystemConfig,
    SystemOperation,
    SystemStatus,
    SystemTime,
    SystemVersion,
    TransmitterConfig,
    TransmitterOperation,
    TransmitterStatus,
    TransmitterTime,
    TransmitterVersion,
    Unit,
    encode_unit,
    parse_units,
)
from drivers.gb26875.tables import COMPONENT_TYPES, SYSTEM_TYPES, component_name, system_name


def system_unit(objects: list[SystemStatus]) -> bytes:
    """A type-1 unit (system status objects)."""
    return encode_unit(list(objects))


def component_unit(objects: list[ComponentStatus]) -> bytes:
    """A type-2 unit (component status objects)."""
    return encode_unit(list(objects))


__all__ = [
    "BIT_FIRE", "BIT_RUNNING", "CMD_CONFIRM", "CMD_CONTROL", "CMD_DENY", "CMD_REPLY", "CMD_REQUEST", "CMD_SEND",
    "COMPONENT_TYPES", "END", "HEADER_LEN", "MAX_DATA", "START", "SYSTEM_TYPES", "AnalogValue", "BadFrame",
    "ComponentConfig", "ComponentStatus", "Downstream", "Frame", "FrameReader", "Gb26875Error", "InfoObject",
    "OtherUnit", "SystemConfig", "SystemOperation", "SystemStatus", "SystemTime", "SystemVersion",
    "TransmitterConfig", "TransmitterOperation", "TransmitterStatus", "TransmitterTime", "TransmitterVersion",
    "Unit", "address_bytes", "address_text", "alarm_kind", "build_confirm", "build_deny", "build_frame",
    "checksum", "component_name", "component_unit", "encode_unit", "kinds_of", "parse_frame", "parse_units",
    "status_flags", "system_name", "system_unit",
]
