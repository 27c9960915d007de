"""GB/T 26875.3 framing (6.6): build, parse and cut a byte stream into frames.

Layout (all multi-byte integers little-endian, "低字节传输在前")::

    0   2  '@@' (0x40 0x40)                start
    2   2  business serial number          the confirm echoes it
    4   2  protocol version (major, minor)
    6   6  time tag: s, min, h, day, month, year-2000
    12  6  source address                  least significant byte first
    18  6  destination address
    24  2  application data length N (<= 1024)
    26  1  command: 1 control, 2 send data, 3 confirm, 4 request, 5 reply, 6 deny
    27  N  application data unit (:mod:`drivers.gb26875.objects`)
    27+N 1 checksum: sum of bytes 2 .. 26+N (serial .. end of data) mod 256
    28+N 2 '##' (0x23 0x23)                end

A frame whose framing is sound (start, length, checksum, end) is a :class:`Frame` even when its
data cannot be read: ``problem`` then says why, so the receiver can deny it with a reason
instead of dropping it silently. Addresses are shown in the standard's order: the 6 bytes read
as the little-endian number they are, most significant digit first (wire ``79 03 00 00 00 00``
is ``000000000379``). The reader never raises on input. A transmitter that leaves the objects' time tags off
is taken (``untimed``) and logged once. No gateway imports.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from datetime import datetime

from drivers.gb26875.objects import Gb26875Error, Unit, parse_time, parse_units, time_bytes, untimed_unit

log = logging.getLogger(__name__)

START, END = b"@@", b"##"
HEADER_LEN = 27            # start .. command inclusive
MAX_DATA = 1024
CMD_CONTROL, CMD_SEND, CMD_CONFIRM, CMD_REQUEST, CMD_REPLY, CMD_DENY = 1, 2, 3, 4, 5, 6


def address_text(raw: bytes) -> str:
    """A 6-byte address as the standard writes it: the little-endian number, 12 hex digits."""
    return raw[::-1].hex().upper()


def address_bytes(text: str) -> bytes:
    """The wire bytes of an address written as :func:`address_text` shows it."""
    return bytes.fromhex(text.rjust(12, "0"))[::-1]


@dataclass(frozen=True)
class Frame:
    serial: int
    version: tuple[int, int]
    time: datetime | None
    source: bytes               # wire order (least significant byte first)
    destination: bytes
    command: int
    data: bytes
    units: tuple[Unit, ...] = ()
    #: why the application data could not be read (None: it could)
    problem: str | None = None
    #: its information objects came without their time tags (:func:`drivers.gb26875.objects.untimed_unit`)
    untimed: bool = False

    @property
    def source_address(self) -> str:
        return address_text(self.source)

    @property
    def destination_address(self) -> str:
        return address_text(self.destination)

    @property
    def type_flag(self) -> int | None:
        return self.data[0] if self.data else None


@dataclass(frozen=True)
class BadFrame:
    what: str


def checksum(body: bytes) -> int:
    return sum(body) & 0xFF


# ---------------------------------------------------------------------- building
def build_frame(serial: int, command: int, data: bytes = b"", *, version: tuple[int, int] = (1, 1),
                time: datetime | None = None, source: bytes = bytes(6), destination: bytes = bytes(6)) -> bytes:
    if len(data) > MAX_DATA:
        raise Gb26875Error("application data too long")
    body = (struct.pack("<HBB", serial & 0xFFFF, *version) + time_bytes(time) + source.ljust(6, b"\0")[:6]
            + destination.ljust(6, b"\0")[:6] + struct.pack("<HB", len(data), command) + data)
    return START + body + bytes([checksum(body)]) + END


def build_confirm(frame: Frame, *, time: datetime | None = None) -> bytes:
    """The receiver's confirm (command 3) for a frame: same serial, addresses swapped."""
    return build_frame(frame.serial, CMD_CONFIRM, b"", version=frame.version, time=time,
                       source=frame.destination, destination=frame.source)


def build_deny(frame: Frame, *, time: datetime | None = None) -> bytes:
    """The receiver's deny (command 6, 否认): same serial, addresses swapped; the sender resends."""
    return build_frame(frame.serial, CMD_DENY, b"", version=frame.version, time=time,
                       source=frame.destination, destination=frame.source)


# ---------------------------------------------------------------------- parsing
def parse_frame(raw: bytes) -> Frame:
    """One complete frame (``@@`` .. ``##``). Raises Gb26875Error for bad framing only."""
    if len(raw) < HEADER_LEN + 3 or raw[:2] != START or raw[-2:] != END:
        raise Gb26875Error("not a frame")
    (n,) = struct.unpack_from("<H", raw, 24)
    if len(raw) != HEADER_LEN + n + 3:
        raise Gb26875Error("length field does not match")
    body = raw[2:HEADER_LEN + n]
    if checksum(body) != raw[HEADER_LEN + n]:
        raise Gb26875Error("checksum")
    serial, major, minor = struct.unpack_from("<HBB", raw, 2)
    data = bytes(raw[HEADER_LEN:HEADER_LEN + n])
    problem: str | None = None
    units: tuple[Unit, ...] = ()
    try:
        units = parse_units(data)
    except Gb26875Error as exc:
        problem = str(exc)
    frame = Frame(serial, (major, minor), parse_time(raw[6:12]), bytes(raw[12:18]), bytes(raw[18:24]), raw[26],
                  data, units, problem, untimed_unit(data) and problem is None)
    if frame.untimed:
        _note_untimed(frame)
    return frame


#: transmitters already logged for sending objects without time tags (bounded: one line each, ever)
_UNTIMED_SEEN: set[str] = set()
_UNTIMED_MAX = 1024


def _note_untimed(frame: Frame) -> None:
    """Log once per transmitter (per process) that it leaves the time tags off: taken, not refused."""
    who = frame.source_address
    if who in _UNTIMED_SEEN or len(_UNTIMED_SEEN) >= _UNTIMED_MAX:
        return
    _UNTIMED_SEEN.add(who)
    log.warning("GB/T 26875.3 transmitter %s sends information objects without their time tags%s: taken and "
                "confirmed, timed by the gateway (logged once)", who,
                " and a zero header time" if frame.time is None else "")


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
            if n > MAX_DATA:
                out.append(BadFrame("implausible header (data length over 1024)"))
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
