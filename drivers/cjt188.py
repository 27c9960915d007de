"""CJ/T 188 (Chinese household meter protocol) framing and decoding for hot-water / heat meters.

Frame: ``[FE..] 68 T A0..A6 C L DI0 DI1 SER data... CS 16``. The address is 7 BCD
bytes sent low byte first (``A0`` first) and shown as 14 digits high byte first;
``CS`` is the sum mod 256 of every byte from ``68`` to the end of the data;
``DI`` goes low byte first (901F is sent ``1F 90``). Numbers in the data are BCD,
low byte first. C = 0x01 read / 0x81 its reply, 0x04 write / 0x84 its reply;
bit 6 set in a reply means the meter reports an error.

Supported: DI 901F current data for water meters (types 0x10-0x19, incl. 0x11
domestic hot water) and heat / hot-water energy meters (types 0x20-0x29), and
DI A017 valve control (0x55 open, 0x99 close) with the status word's valve bits.
Protocol only: bytes in, typed values out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

START, END, PREAMBLE = 0x68, 0x16, 0xFE
C_READ, C_READ_REPLY, C_WRITE, C_WRITE_REPLY = 0x01, 0x81, 0x04, 0x84
DI_CURRENT, DI_VALVE = 0x901F, 0xA017
VALVE_OPEN, VALVE_CLOSE = 0x55, 0x99
WATER_TYPES = range(0x10, 0x1A)
HEAT_TYPES = range(0x20, 0x2A)
BROADCAST = "AAAAAAAAAAAAAA"
MAX_DATA = 64
#: unit codes used by 901F replies -> (unit name, multiplier to the canonical unit)
UNITS = {0x02: ("kWh", 0.001), 0x05: ("kWh", 1.0), 0x08: ("kWh", 1000.0), 0x0A: ("kWh", 100000.0),
         0x0B: ("GJ", 1e-6), 0x0E: ("GJ", 0.001), 0x11: ("GJ", 1.0), 0x13: ("GJ", 100.0),
         0x14: ("kW", 0.001), 0x17: ("kW", 1.0), 0x1A: ("kW", 1000.0),
         0x29: ("m3", 0.001), 0x2C: ("m3", 1.0), 0x32: ("m3h", 0.001), 0x35: ("m3h", 1.0)}
VALVE_STATES = {0: "open", 1: "closed", 3: "abnormal", 2: "unknown"}


class FrameError(ValueError):
    """Bytes that are not a valid CJ/T 188 frame (bad checksum, length, end byte...)."""


@dataclass(frozen=True)
class Frame:
    meter_type: int
    address: str          # 14 digits, high byte first, as printed on the meter
    control: int
    di: int
    ser: int
    payload: bytes = b""

    @property
    def is_reply(self) -> bool:
        return bool(self.control & 0x80)

    @property
    def is_error(self) -> bool:
        return bool(self.control & 0x40)


@dataclass(frozen=True)
class CurrentData:
    """Decoded 901F reply; fields a meter type does not carry are None."""

    meter_type: int
    address: str
    total_m3: float | None = None
    settlement_m3: float | None = None
    heat_kwh: float | None = None
    settlement_heat_kwh: float | None = None
    power_kw: float | None = None
    flow_m3h: float | None = None
    supply_c: float | None = None
    return_c: float | None = None
    hours: int | None = None
    meter_time: datetime | None = None
    valve: str = "unknown"
    battery_low: bool = False
    status: int = 0
    values: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------- BCD helpers
def bcd_encode(value: int, nbytes: int) -> bytes:
    """Unsigned integer -> BCD, low byte first."""
    if value < 0 or value >= 10 ** (2 * nbytes):
        raise ValueError(f"{value} does not fit {nbytes} BCD bytes")
    digits = f"{value:0{2 * nbytes}d}"
    return bytes(int(digits[i:i + 2], 16) for i in range(0, 2 * nbytes, 2))[::-1]


def bcd_decode(data: bytes) -> int:
    """BCD low byte first -> integer; FrameError on a non-decimal nibble."""
    text = data[::-1].hex()
    if not text.isdigit():
        raise FrameError(f"not BCD: {data.hex()}")
    return int(text) if text else 0


def _address_bytes(address: str) -> bytes:
    if len(address) != 14:
        raise ValueError("a CJ/T 188 address is 14 hex/BCD digits")
    return bytes.fromhex(address)[::-1]


# ---------------------------------------------------------------------- framing
def build_frame(meter_type: int, address: str, control: int, di: int, ser: int = 0, payload: bytes = b"",
                *, preamble: int = 2) -> bytes:
    data = bytes([di & 0xFF, di >> 8, ser & 0xFF]) + payload
    if len(data) > MAX_DATA:
        raise ValueError("data too long")
    body = bytes([START, meter_type & 0xFF]) + _address_bytes(address) + bytes([control, len(data)]) + data
    return bytes([PREAMBLE] * preamble) + body + bytes([sum(body) & 0xFF, END])


def parse_frame(buf: bytes) -> tuple[Frame, int]:
    """Parse the first frame in ``buf`` (after any FE preamble); return it and the bytes used.

    Raises FrameError for a broken frame, and ``IncompleteFrame`` when more bytes are needed.
    """
    i = 0
    while i < len(buf) and buf[i] == PREAMBLE:
        i += 1
    if i >= len(buf):
        raise IncompleteFrame()
    if buf[i] != START:
        raise FrameError(f"expected 68 at offset {i}, got {buf[i]:02x}")
    if len(buf) < i + 11:
        raise IncompleteFrame()
    length = buf[i + 10]
    if length < 3 or length > MAX_DATA:
        raise FrameError(f"bad data length {length}")
    end = i + 11 + length + 2
    if len(buf) < end:
        raise IncompleteFrame()
    body = buf[i:i + 11 + length]
    if (sum(body) & 0xFF) != buf[end - 2]:
        raise FrameError("checksum mismatch")
    if buf[end - 1] != END:
        raise FrameError(f"expected 16 at the end, got {buf[end - 1]:02x}")
    data = body[11:]
    frame = Frame(meter_type=body[1], address=body[2:9][::-1].hex().upper(), control=body[9],
                  di=data[0] | (data[1] << 8), ser=data[2], payload=bytes(data[3:]))
    return frame, end


class IncompleteFrame(FrameError):
    """Not enough bytes yet."""


class StreamParser:
    """Feed serial bytes; get whole frames and errors (resynchronising on the next 68)."""

    def __init__(self, max_buffer: int = 512) -> None:
        self.buf = b""
        self.max_buffer = max_buffer

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        self.buf = (self.buf + data)[-self.max_buffer:]
        out: list[Frame | FrameError] = []
        while self.buf:
            try:
                frame, used = parse_frame(self.buf)
            except IncompleteFrame:
                break
            except FrameError as exc:
                out.append(exc)
                nxt = self.buf.find(bytes([START]), 1)
                self.buf = self.buf[nxt:] if nxt > 0 else b""
                continue
            out.append(frame)
            self.buf = self.buf[used:]
        return out


# ---------------------------------------------------------------------- requests
def read_current_request(address: str, meter_type: int = 0x20, ser: int = 0) -> bytes:
    return build_frame(meter_type, address, C_READ, DI_CURRENT, ser)


def valve_request(address: str, open_: bool, meter_type: int = 0x20, ser: int = 0) -> bytes:
    return build_frame(meter_type, address, C_WRITE, DI_VALVE, ser, bytes([VALVE_OPEN if open_ else VALVE_CLOSE]))


def valve_reply_state(frame: Frame) -> str:
    """Valve state from an A017 reply's status word."""
    if frame.di != DI_VALVE or frame.control != C_WRITE_REPLY or len(frame.payload) < 2:
        raise FrameError("not a valve reply")
    return VALVE_STATES[frame.payload[0] & 0x03]


# ---------------------------------------------------------------------- 901F decoding
def _quantity(chunk: bytes, decimals: int) -> tuple[float, str]:
    unit_code = chunk[-1]
    if unit_code not in UNITS:
        raise FrameError(f"unknown unit code {unit_code:02x}")
    unit, mult = UNITS[unit_code]
    return bcd_decode(chunk[:-1]) / 10 ** decimals * mult, unit


def _time(chunk: bytes) -> datetime | None:
    """7 BCD bytes sent ss mm hh DD MM YYYY(lo) YYYY(hi)."""
    try:
        s, mi, h, d, mo = (bcd_decode(chunk[i:i + 1]) for i in range(5))
        year = bcd_decode(chunk[5:7])
        return datetime(year, mo, d, h, mi, s)
    except (ValueError, FrameError):
        return None


def decode_current(frame: Frame) -> CurrentData:
    """Decode a 901F reply from a water (0x1x) or heat/hot-water energy (0x2x) meter."""
    if frame.di != DI_CURRENT or frame.control != C_READ_REPLY:
        raise FrameError(f"not a 901F reply (C={frame.control:02x}, DI={frame.di:04X})")
    p = frame.payload
    if frame.meter_type in WATER_TYPES:
        if len(p) < 19:
            raise FrameError(f"901F water reply needs 19 data bytes, got {len(p)}")
        total, _ = _quantity(p[0:5], 2)
        settle, _ = _quantity(p[5:10], 2)
        when, st = _time(p[10:17]), p[17]
        return CurrentData(frame.meter_type, frame.address, total_m3=total, settlement_m3=settle, meter_time=when,
                           valve=VALVE_STATES[st & 0x03], battery_low=bool(st & 0x04), status=p[17] | p[18] << 8,
                           values={"total_m3": total})
    if frame.meter_type in HEAT_TYPES:
        if len(p) < 43:
            raise FrameError(f"901F heat reply needs 43 data bytes, got {len(p)}")
        settle_heat, _ = _quantity(p[0:5], 2)
        heat, _ = _quantity(p[5:10], 2)
        power, _ = _quantity(p[10:15], 2)
        flow, _ = _quantity(p[15:20], 4)
        total, _ = _quantity(p[20:25], 2)
        supply = bcd_decode(p[25:28]) / 100
        ret = bcd_decode(p[28:31]) / 100
        hours = bcd_decode(p[31:34])
        when, st = _time(p[34:41]), p[41]
        values = {"total_m3": total, "flow_m3h": flow, "heat_kwh": heat, "power_kw": power,
                  "supply_c": supply, "return_c": ret}
        return CurrentData(frame.meter_type, frame.address, total_m3=total, heat_kwh=heat,
                           settlement_heat_kwh=settle_heat, power_kw=power, flow_m3h=flow, supply_c=supply,
                           return_c=ret, hours=hours, meter_time=when, valve=VALVE_STATES[st & 0x03],
                           battery_low=bool(st & 0x04), status=p[41] | p[42] << 8, values=values)
    raise FrameError(f"meter type {frame.meter_type:02x} is not a water or heat meter")


# ---------------------------------------------------------------------- replies (simulators, tests)
def _q(value: float, decimals: int, unit: int, nbytes: int = 4) -> bytes:
    return bcd_encode(int(round(value * 10 ** decimals)), nbytes) + bytes([unit])


def _time_bytes(t: datetime) -> bytes:
    return b"".join(bcd_encode(v, 1) for v in (t.second, t.minute, t.hour, t.day, t.month)) + bcd_encode(t.year, 2)


def current_reply(data: CurrentData, ser: int = 0) -> bytes:
    """The 901F reply a meter sends for ``data`` (what :func:`decode_current` returns; None fields count as 0)."""
    when = data.meter_time or datetime(2026, 1, 1)
    st = bytes([(1 if data.valve == "closed" else 0) | (4 if data.battery_low else 0), 0])
    total = data.total_m3 or 0.0
    if data.meter_type in WATER_TYPES:
        payload = _q(total, 2, 0x2C) + _q(total, 2, 0x2C) + _time_bytes(when) + st
    else:
        heat = data.heat_kwh or 0.0
        payload = (_q(heat, 2, 0x05) + _q(heat, 2, 0x05) + _q(data.power_kw or 0.0, 2, 0x17)
                   + _q(data.flow_m3h or 0.0, 4, 0x35) + _q(total, 2, 0x2C)
                   + bcd_encode(int(round((data.supply_c or 0.0) * 100)), 3)
                   + bcd_encode(int(round((data.return_c or 0.0) * 100)), 3) + bcd_encode(data.hours or 0, 3)
                   + _time_bytes(when) + st)
    return build_frame(data.meter_type, data.address, C_READ_REPLY, DI_CURRENT, ser, payload)


def valve_reply(address: str, meter_type: int, closed: bool, ser: int = 0) -> bytes:
    return build_frame(meter_type, address, C_WRITE_REPLY, DI_VALVE, ser, bytes([1 if closed else 0, 0]))
