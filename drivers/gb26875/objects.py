"""GB/T 26875.3 information objects (8.2, 8.3): every type the standard defines, parsed and encodable.

An application data unit is ``type flag (1) | object count (1) | objects``; every object of a
unit has the type's layout (all integers little-endian, times as in 8.2.2):

====  ===========================================================================  ========
type  object                                                                       bytes
====  ===========================================================================  ========
1     system status: system type, system address, status (2), time                10
2     component status: system type/address, component type, address (4),        46
      status (2), description (31, GB 18030), time
3     analog value: system type/address, component type, address (4),             16
      analog type, value (2, signed), time
4     facility operation: system type/address, flags, operator, time              10
5     facility software version: system type/address, major, minor                 4
6     facility system configuration: system type/address, length L, text (L)      3 + L
7     component configuration: system type/address, component type/address,      38
      description (31)
8     facility system time: system type/address, time                              8
21    transmitter running status: status (1), time                                 7
24    transmitter operation: flags, operator, time                                 8
25    transmitter software version: major, minor                                   2
26    transmitter configuration: length L, text (L)                                1 + L
28    transmitter time: time                                                       6
61-91 the monitoring centre's queries and commands (:class:`Downstream`)          see below
====  ===========================================================================  ========

Objects without their time tag (some transmitters in the field leave it off, and send a zero time in the
frame's header too) are read with ``time`` None (:func:`untimed_unit`): the alarm is what matters, and the
gateway stamps what it commits with its own clock anyway.

Types the standard reserves, and the user-defined 128-254, have no known object length: a unit
of one is refused with the reason (:func:`drivers.gb26875.tables.type_flag_problem`), never
guessed at. Descriptions are GB 18030, padded with NULs or spaces: both are trimmed.
No gateway imports.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar

from drivers.gb26875.tables import type_flag_problem


class Gb26875Error(ValueError):
    pass


def parse_time(b: bytes) -> datetime | None:
    """8.2.2 time tag: s, min, h, day, month, year-2000 (None when it is not a real time)."""
    s, mi, h, d, mo, y = b
    try:
        return datetime(2000 + y, mo, d, h, mi, s)
    except ValueError:
        return None


def time_bytes(t: datetime | None) -> bytes:
    t = t or datetime.now()
    return bytes([t.second, t.minute, t.hour, t.day, t.month, (t.year - 2000) & 0xFF])


def decode_text(raw: bytes) -> str:
    """A GB 18030 string field: cut at the first NUL, spaces (also ideographic) trimmed."""
    return raw.split(b"\0", 1)[0].decode("gb18030", errors="replace").strip(" \u3000\t")


def encode_text(text: str, size: int | None = None) -> bytes:
    raw = text.encode("gb18030", errors="replace")
    return raw if size is None else raw[:size].ljust(size, b"\0")


@dataclass(frozen=True)
class _Fixed:
    """An object of fixed size: ``FMT`` (struct) fields, then an optional text field, then a time."""

    TYPE: ClassVar[int]
    FMT: ClassVar[str]
    TEXT: ClassVar[int] = 0          # bytes of the description field (0: none)
    TIMED: ClassVar[bool] = True

    @classmethod
    def size(cls) -> int:
        return struct.calcsize(cls.FMT) + cls.TEXT + (6 if cls.TIMED else 0)

    @classmethod
    def parse(cls, chunk: bytes, *, timed: bool = True) -> Any:
        """One object; ``timed=False`` for a transmitter that leaves the time tag off (its time is None)."""
        head = struct.calcsize(cls.FMT)
        values: list[Any] = list(struct.unpack_from(cls.FMT, chunk))
        if cls.TEXT:
            values.append(decode_text(chunk[head:head + cls.TEXT]))
        if cls.TIMED:
            values.append(parse_time(chunk[head + cls.TEXT:head + cls.TEXT + 6]) if timed else None)
        return cls(*values)

    def encode(self) -> bytes:
        vals = [getattr(self, f.name) for f in fields(self)]
        n = len(struct.unpack(self.FMT, bytes(struct.calcsize(self.FMT))))
        out = struct.pack(self.FMT, *vals[:n])
        if self.TEXT:
            out += encode_text(vals[n], self.TEXT)
        if self.TIMED:
            out += time_bytes(vals[-1])
        return out


@dataclass(frozen=True)
class SystemStatus(_Fixed):
    TYPE, FMT = 1, "<BBH"
    system_type: int
    system_address: int
    status: int
    time: datetime | None


@dataclass(frozen=True)
class ComponentStatus(_Fixed):
    TYPE, FMT, TEXT = 2, "<BBBIH", 31
    system_type: int
    system_address: int
    component_type: int
    component_address: int
    status: int
    description: str
    time: datetime | None


@dataclass(frozen=True)
class AnalogValue(_Fixed):
    TYPE, FMT = 3, "<BBBIBh"
    system_type: int
    system_address: int
    component_type: int
    component_address: int
    analog_type: int
    value: int
    time: datetime | None


@dataclass(frozen=True)
class SystemOperation(_Fixed):
    TYPE, FMT = 4, "<BBBB"
    system_type: int
    system_address: int
    flags: int
    operator: int
    time: datetime | None


@dataclass(frozen=True)
class SystemVersion(_Fixed):
    TYPE, FMT, TIMED = 5, "<BBBB", False
    system_type: int
    system_address: int
    major: int
    minor: int


@dataclass(frozen=True)
class ComponentConfig(_Fixed):
    TYPE, FMT, TEXT, TIMED = 7, "<BBBI", 31, False
    system_type: int
    system_address: int
    component_type: int
    component_address: int
    description: str


@dataclass(frozen=True)
class SystemTime(_Fixed):
    TYPE, FMT = 8, "<BB"
    system_type: int
    system_address: int
    time: datetime | None


@dataclass(frozen=True)
class TransmitterStatus(_Fixed):
    TYPE, FMT = 21, "<B"
    status: int
    time: datetime | None


@dataclass(frozen=True)
class TransmitterOperation(_Fixed):
    TYPE, FMT = 24, "<BB"
    flags: int
    operator: int
    time: datetime | None


@dataclass(frozen=True)
class TransmitterVersion(_Fixed):
    TYPE, FMT, TIMED = 25, "<BB", False
    major: int
    minor: int


@dataclass(frozen=True)
class TransmitterTime(_Fixed):
    TYPE, FMT = 28, ""
    time: datetime | None


@dataclass(frozen=True)
class SystemConfig:
    """Type 6: a facility system's configuration text (variable length)."""

    TYPE: ClassVar[int] = 6
    system_type: int
    system_address: int
    text: str

    def encode(self) -> bytes:
        raw = encode_text(self.text)[:255]
        return bytes([self.system_type, self.system_address, len(raw)]) + raw


@dataclass(frozen=True)
class TransmitterConfig:
    """Type 26: the transmitter's configuration text (variable length)."""

    TYPE: ClassVar[int] = 26
    text: str

    def encode(self) -> bytes:
        raw = encode_text(self.text)[:255]
        return bytes([len(raw)]) + raw


@dataclass(frozen=True)
class Downstream:
    """A query or command of the monitoring centre (types 61-91), kept as its bytes.

    The gateway is the centre: a transmitter never sends these, so they are only recognised
    (and a frame carrying them as data is refused).
    """

    type_flag: int
    raw: bytes

    #: object size per type (8.3.2); 90 carries the time to set, 91 the roll-call's minutes
    SIZES: ClassVar[dict[int, int]] = {61: 2, 62: 6, 63: 6, 64: 9, 65: 2, 66: 2, 67: 6, 68: 2, 81: 1, 84: 7,
                                       85: 1, 86: 1, 88: 1, 89: 1, 90: 6, 91: 1}

    def encode(self) -> bytes:
        return self.raw


@dataclass(frozen=True)
class OtherUnit:
    """Kept for callers of the old API: an application data unit not decoded."""

    type_flag: int
    raw: bytes


InfoObject = (SystemStatus | ComponentStatus | AnalogValue | SystemOperation | SystemVersion | SystemConfig
              | ComponentConfig | SystemTime | TransmitterStatus | TransmitterOperation | TransmitterVersion
              | TransmitterConfig | TransmitterTime | Downstream)
Unit = InfoObject | OtherUnit

FIXED: dict[int, type[_Fixed]] = {c.TYPE: c for c in (
    SystemStatus, ComponentStatus, AnalogValue, SystemOperation, SystemVersion, ComponentConfig, SystemTime,
    TransmitterStatus, TransmitterOperation, TransmitterVersion, TransmitterTime)}


def _variable(type_flag: int, count: int, body: bytes) -> list[InfoObject]:
    """Types 6 and 26: each object carries its own text length."""
    out: list[InfoObject] = []
    pos = 0
    head = 3 if type_flag == 6 else 1
    for _ in range(count):
        if pos + head > len(body) or pos + head + body[pos + head - 1] > len(body):
            raise Gb26875Error(f"type {type_flag}: object {len(out) + 1} runs past the data")
        n = body[pos + head - 1]
        text = decode_text(body[pos + head:pos + head + n])
        out.append(SystemConfig(body[pos], body[pos + 1], text) if type_flag == 6 else TransmitterConfig(text))
        pos += head + n
    if pos != len(body):
        raise Gb26875Error(f"type {type_flag}: {len(body) - pos} bytes after the last object")
    return out


def parse_units(data: bytes) -> tuple[InfoObject, ...]:
    """The objects of an application data unit. Raises Gb26875Error saying what is wrong."""
    if not data:
        return ()
    if len(data) < 2:
        raise Gb26875Error("application data shorter than its type flag and count")
    type_flag, count, body = data[0], data[1], data[2:]
    problem = type_flag_problem(type_flag)
    if problem:
        raise Gb26875Error(problem)
    if type_flag in (6, 26):
        return tuple(_variable(type_flag, count, body))
    cls = FIXED.get(type_flag)
    size = cls.size() if cls else Downstream.SIZES[type_flag]
    timed = not untimed_unit(data)
    if not timed:
        size -= 6
    if count == 0 or len(body) != size * count:
        raise Gb26875Error(f"type {type_flag}: {len(body)} bytes for {count} objects of {size} bytes")
    chunks = [body[i * size:(i + 1) * size] for i in range(count)]
    if cls is None:
        return tuple(Downstream(type_flag, c) for c in chunks)
    return tuple(cls.parse(c, timed=timed) for c in chunks)


def untimed_unit(data: bytes) -> bool:
    """A unit of a timed type whose objects all lack their 6-byte time tag (some transmitters in the field
    send them so). Unambiguous: the count is given, so the body fits either the timed size or this one."""
    if len(data) < 2 or data[1] == 0:
        return False
    cls = FIXED.get(data[0])
    if cls is None or not cls.TIMED:
        return False
    body = len(data) - 2
    return body != cls.size() * data[1] and body == (cls.size() - 6) * data[1]


def encode_unit(objects: list[InfoObject]) -> bytes:
    """An application data unit of objects of one type."""
    if not objects:
        raise Gb26875Error("a unit needs at least one object")
    types = {o.type_flag if isinstance(o, Downstream) else o.TYPE for o in objects}
    if len(types) != 1 or len(objects) > 255:
        raise Gb26875Error("a unit carries 1-255 objects of one type")
    return bytes([types.pop(), len(objects)]) + b"".join(o.encode() for o in objects)
