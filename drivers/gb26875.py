"""GB/T 26875.3 (urban fire remote monitoring, user information transmission device) frames.

Layout (all multi-byte integers little-endian)::

    0   2  '@@' (0x40 0x40)                start
    2   2  business serial number          the confirm echoes it
    4   2  protocol version (major, minor)
    6   6  time tag: s, min, h, day, month, year-2000
    12  6  source address
    18  6  destination address
    24  2  application data length N (<= 1024)
    26  1  command: 1 control, 2 send data, 3 confirm, 4 request, 5 reply, 6 deny
    27  N  application data unit
    27+N 1 checksum: sum of bytes 2 .. 26+N (serial .. end of data) mod 256
    28+N 2 '##' (0x23 0x23)                end

Application data unit: type flag (1 byte), object count (1 byte), then objects of a size fixed
by the type. Types handled here (the rest are passed through as :class:`OtherUnit`):

* 1 -- building fire facility *system* status: system type, system address, status (2 bytes),
  time tag (6) = 10 bytes.
* 2 -- *component* status: system type, system address, component type, component address
  (4 bytes), status (2), description (31 bytes, GB18030), time tag (6) = 46 bytes.

Status bits (systems and components): 0 normal(0)/test(1)... bit0 running, 1 fire alarm,
2 fault, 3 shielded, 4 supervisory, 5 started, 6 feedback, 7 delay, 8 main power fault,
9 backup power fault, 10 bus fault, 11 manual, 12 config changed, 13 reset.
A frame carrying a state with no alarm bits set is a *restore* of that object.

No gateway imports. Nobody ships a Python parser, so this one is written from the layout
above and tested with built frames and fuzzing: it never raises on input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime

START, END = b"@@", b"##"
HEADER_LEN = 27            # start .. command inclusive
MAX_DATA = 1024
CMD_CONTROL, CMD_SEND, CMD_CONFIRM, CMD_REQUEST, CMD_REPLY, CMD_DENY = 1, 2, 3, 4, 5, 6

BIT_RUNNING, BIT_FIRE, BIT_FAULT, BIT_SHIELDED, BIT_SUPERVISORY = 0, 1, 2, 3, 4
BIT_NAMES = {0: "running", 1: "fire", 2: "fault", 3: "shielded", 4: "supervisory", 5: "started", 6: "feedback",
             7: "delay", 8: "main_power_fault", 9: "backup_power_fault", 10: "bus_fault", 11: "manual",
             12: "config_changed", 13: "reset"}
#: status bits that make an alarm, in priority order (fire first), with the kind they mean
ALARM_BITS: list[tuple[int, str]] = [(1, "fire"), (4, "supervisory"), (2, "fault"), (8, "fault"), (9, "fault"),
                                     (10, "fault"), (3, "other")]

SYSTEM_TYPES = {1: "fire alarm system", 10: "combined fire alarm system", 11: "fire linkage control",
                21: "fire hydrant", 22: "automatic sprinkler", 23: "gas extinguishing", 24: "water spray",
                25: "foam extinguishing", 26: "dry powder", 27: "smoke control", 28: "fire door and shutter",
                29: "fire elevator", 30: "emergency broadcast", 31: "emergency lighting", 32: "fire power supply",
                33: "fire telephone"}
COMPONENT_TYPES = {21: "manual call point", 30: "fire hydrant button", 40: "smoke detector",
                   41: "point smoke detector", 42: "point heat detector", 31: "heat detector", 11: "fire alarm controller"}


class Gb26875Error(ValueError):
    pass


@dataclass(frozen=True)
class SystemStatus:
    system_type: int
    system_address: int
    status: int
    time: datetime | None

    @property
    def flags(self) -> list[str]:
        return status_flags(self.status)


@dataclass(frozen=True)
class ComponentStatus:
    system_type: int
    system_address: int
    component_type: int
    component_address: int
    status: int
    description: str
    time: datetime | None

    @property
    def flags(self) -> list[str]:
        return status_flags(self.status)


@dataclass(frozen=True)
class OtherUnit:
    type_flag: int
    raw: bytes


Unit = SystemStatus | ComponentStatus | OtherUnit


@dataclass(frozen=True)
class Frame:
    serial: int
    version: tuple[int, int]
    time: datetime | None
    source: bytes
    destination: bytes
    command: int
    data: bytes
    units: tuple[Unit, ...] = ()


@dataclass(frozen=True)
class BadFrame:
    what: str


def status_flags(status: int) -> list[str]:
    return [name for bit, name in BIT_NAMES.items() if status >> bit & 1]


def alarm_kind(status: int) -> str | None:
    """The kind an object's status bits mean (fire before faults), or None when normal."""
    for bit, kind in ALARM_BITS:
        if status >> bit & 1:
            return kind
    return None


def checksum(body: bytes) -> int:
    return sum(body) & 0xFF


def _time(b: bytes) -> datetime | None:
    s, mi, h, d, mo, y = b
    try:
        return datetime(2000 + y, mo, d, h, mi, s)
    except ValueError:
        return None


def _time_bytes(t: datetime | None) -> bytes:
    t = t or datetime.now()
    return bytes([t.second, t.minute, t.hour, t.day, t.month, (t.year - 2000) & 0xFF])


# ---------------------------------------------------------------------- building
def build_frame(serial: int, command: int, data: bytes = b"", *, version: tuple[int, int] = (1, 1),
                time: datetime | None = None, source: bytes = bytes(6), destination: bytes = bytes(6)) -> bytes:
    if len(data) > MAX_DATA:
        raise Gb26875Error("application data too long")
    body = (struct.pack("<HBB", serial & 0xFFFF, *version) + _time_bytes(time) + source.ljust(6, b"\0")[:6]
            + destination.ljust(6, b"\0")[:6] + struct.pack("<HB", len(data), command) + data)
    return START + body + bytes([checksum(body)]) + END


def system_unit(objects: list[SystemStatus]) -> bytes:
    out = bytes([1, len(objects)])
    for o in objects:
        out += struct.pack("<BBH", o.system_type, o.system_address, o.status) + _time_bytes(o.time)
    return out


def component_unit(objects: list[ComponentStatus]) -> bytes:
    out = bytes([2, len(objects)])
    for o in objects:
        desc = o.description.encode("gb18030", errors="replace")[:31].ljust(31, b"\0")
        out += (struct.pack("<BBBIH", o.system_type, o.system_address, o.component_type, o.component_address,
                            o.status) + desc + _time_bytes(o.time))
    return out


def build_confirm(frame: Frame, *, time: datetime | None = None) -> bytes:
    """The receiver's confirm (command 3) for a frame: same serial, addresses swapped."""
    return build_frame(frame.serial, CMD_CONFIRM, b"", version=frame.version, time=time,
                       source=frame.destination, destination=frame.source)


def build_deny(frame: Frame, *, time: datetime | None = None) -> bytes:
    return build_frame(frame.serial, CMD_DENY, b"", version=frame.version, time=time,
                       source=frame.destination, destination=frame.source)


# ---------------------------------------------------------------------- parsing
def parse_units(data: bytes) -> tuple[Unit, ...]:
    if not data:
        return ()
    if len(data) < 2:
        raise Gb26875Error("application data shorter than its header")
    type_flag, count = data[0], data[1]
    body = data[2:]
    if type_flag == 1:
        size = 10
        if len(body) != size * count:
            raise Gb26875Error("system status unit has the wrong size")
        units: list[Unit] = []
        for i in range(count):
            chunk = body[i * size:(i + 1) * size]
            st, sa, status = struct.unpack_from("<BBH", chunk)
            units.append(SystemStatus(st, sa, status, _time(chunk[4:10])))
        return tuple(units)
    if type_flag == 2:
        size = 46
        if len(body) != size * count:
            raise Gb26875Error("component status unit has the wrong size")
        units = []
        for i in range(count):
            chunk = body[i * size:(i + 1) * size]
            st, sa, ct, ca, status = struct.unpack_from("<BBBIH", chunk)
            desc = chunk[9:40].split(b"\0", 1)[0].decode("gb18030", errors="replace")
            units.append(ComponentStatus(st, sa, ct, ca, status, desc, _time(chunk[40:46])))
        return tuple(units)
    return (OtherUnit(type_flag, bytes(data)),)


def parse_frame(raw: bytes) -> Frame:
    """One complete frame (``@@`` .. ``##``). Raises Gb26875Error."""
    if len(raw) < HEADER_LEN + 3 or raw[:2] != START or raw[-2:] != END:
        raise Gb26875Error("not a frame")
    (n,) = struct.unpack_from("<H", raw, 24)
    if len(raw) != HEADER_LEN + n + 3:
        raise Gb26875Error("length field does not match")
    body = raw[2:HEADER_LEN + n]
    if checksum(body) != raw[HEADER_LEN + n]:
        raise Gb26875Error("checksum")
    serial, major, minor = struct.unpack_from("<HBB", raw, 2)
    command = raw[26]
    data = bytes(raw[HEADER_LEN:HEADER_LEN + n])
    units = parse_units(data) if command in (CMD_SEND, CMD_REPLY) else ()
    return Frame(serial, (major, minor), _time(raw[6:12]), bytes(raw[12:18]), bytes(raw[18:24]), command, data, units)


@dataclass
class FrameReader:
    """Cuts a byte stream into frames: resyncs on ``@@``, uses the length field, bounded buffer."""

    buf: bytearray = field(default_factory=bytearray)
    garbage: int = 0

    def feed(self, data: bytes) -> list[Frame | BadFrame]:
        self.buf += data
        out: list[Frame | BadFrame] = []
        while True:
            start = self.buf.find(START)
            if start < 0:
                keep = 1 if self.buf.endswith(b"@") else 0
                self.garbage += len(self.buf) - keep
                del self.buf[: len(self.buf) - keep]
                return out
            if start:
                self.garbage += start
                del self.buf[:start]
            if len(self.buf) < HEADER_LEN:
                return out
            (n,) = struct.unpack_from("<H", self.buf, 24)
            if n > MAX_DATA or not CMD_CONTROL <= self.buf[26] <= CMD_DENY:
                out.append(BadFrame("implausible header"))
                self._skip()
                continue
            total = HEADER_LEN + n + 3
            if len(self.buf) < total:
                later = self._complete_frame_after(1)
                if later is None:
                    return out
                out.append(BadFrame("unterminated frame"))
                self.garbage += later
                del self.buf[:later]
                continue
            raw = bytes(self.buf[:total])
            try:
                out.append(parse_frame(raw))
                del self.buf[:total]
            except Gb26875Error as exc:
                out.append(BadFrame(str(exc)))
                self._skip()

    def _skip(self) -> None:
        """Drop one byte: the next '@@' (possibly overlapping) is tried as a start."""
        self.garbage += 1
        del self.buf[:1]

    def _complete_frame_after(self, pos: int) -> int | None:
        """Where a later, complete and valid frame starts (a false start must not hold it back)."""
        while (p := self.buf.find(START, pos)) >= 0:
            if len(self.buf) - p >= HEADER_LEN:
                (n,) = struct.unpack_from("<H", self.buf, p + 24)
                total = HEADER_LEN + n + 3
                if n <= MAX_DATA and len(self.buf) - p >= total:
                    try:
                        parse_frame(bytes(self.buf[p:p + total]))
                        return p
                    except Gb26875Error:
                        pass
            pos = p + 1
        return None
