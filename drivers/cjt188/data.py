"""CJ/T 188 data: the 901F current-data reply of water and heat meters, and A017 valve control.

901F layouts (CJ/T 188-2004, confirmed by the real replies in ``tests/conformance/cjt188``):

* water meters, types 0x10-0x19 (0x10 cold, 0x11 domestic hot water, 0x12 drinking, 0x13 reclaimed), 19 bytes:
  current total (4 BCD, 2 decimals, + unit), settlement-day total (same), meter time (7), status (2);
* heat meters, types 0x20-0x29 (0x20 heat, 0x21 cooling, ...), 43 bytes: settlement-day heat, current heat,
  power, flow (4 decimals), total volume (each 4 BCD + unit), supply and return temperature (3 BCD, 2 decimals),
  operating hours (3 BCD), meter time (7), status (2).

Every quantity is converted from its unit code exactly (decimal scaling, no float noise) into the unit its name
carries: volume ``_m3``, flow ``_m3h``, power ``_kw``, heat ``_kwh`` (Wh family) or ``_gj`` (J family; not
converted, so a GJ meter bills in GJ). A field a meter does not support is sent as ``FF`` bytes: it is *missing*
(``None``, left out of ``values``), the rest of the reading stands. A value with a non-decimal digit, an unknown
unit code or a unit of the wrong kind (kWh where a volume belongs) is a :class:`FrameError`: a wrong number is
worse than none. Status byte 0 bits 0-1 are the valve (00 open, 01 closed, 11 abnormal), bit 2 a low battery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from drivers.cjt188.frame import (
    C_READ,
    C_READ_REPLY,
    C_WRITE,
    C_WRITE_REPLY,
    DI_CURRENT,
    DI_VALVE,
    Frame,
    FrameError,
    bcd_decode,
    bcd_encode,
    build_frame,
)

WATER_TYPES = range(0x10, 0x1A)
HEAT_TYPES = range(0x20, 0x2A)
VALVE_OPEN, VALVE_CLOSE = 0x55, 0x99
#: unit code -> (kind, unit the value is given in, power of ten to that unit), CJ/T 188-2004 unit table
UNITS: dict[int, tuple[str, str, int]] = {
    0x02: ("energy", "kwh", -3), 0x05: ("energy", "kwh", 0), 0x08: ("energy", "kwh", 3),
    0x0A: ("energy", "kwh", 5),
    0x01: ("energy", "gj", -9), 0x0B: ("energy", "gj", -6), 0x0E: ("energy", "gj", -3),
    0x11: ("energy", "gj", 0), 0x13: ("energy", "gj", 2),
    0x14: ("power", "kw", -3), 0x17: ("power", "kw", 0), 0x1A: ("power", "kw", 3),
    0x29: ("volume", "m3", -3), 0x2C: ("volume", "m3", 0),
    0x32: ("flow", "m3h", -3), 0x35: ("flow", "m3h", 0),
}
VALVE_STATES = {0: "open", 1: "closed", 3: "abnormal", 2: "unknown"}
WATER_LEN, HEAT_LEN = 19, 43


@dataclass(frozen=True)
class CurrentData:
    """A decoded 901F reply; fields a meter type does not carry, or the meter sent as FF, are None."""

    meter_type: int
    address: str
    total_m3: float | None = None
    settlement_m3: float | None = None
    heat_kwh: float | None = None
    settlement_heat_kwh: float | None = None
    heat_gj: float | None = None
    settlement_heat_gj: float | None = None
    power_kw: float | None = None
    flow_m3h: float | None = None
    supply_c: float | None = None
    return_c: float | None = None
    hours: int | None = None
    meter_time: datetime | None = None
    valve: str = "unknown"
    battery_low: bool = False
    status: int = 0
    values: dict[str, float | int | bool] = field(default_factory=dict)


# ---------------------------------------------------------------------- field decoding
def _missing(chunk: bytes) -> bool:
    return len(chunk) > 0 and all(b == 0xFF for b in chunk)


def _scaled(digits: bytes, exponent: int) -> float | None:
    """BCD value x 10^exponent, exactly; None when the meter sent FF (not supported)."""
    if _missing(digits):
        return None
    return float(Decimal(bcd_decode(digits)).scaleb(exponent))


def _quantity(chunk: bytes, decimals: int, kind: str, name: str) -> tuple[float | None, str]:
    """4 BCD + unit code -> (value in the unit's base, unit suffix); (None, "") when FF."""
    if _missing(chunk[:-1]):
        return None, ""
    code = chunk[-1]
    if code not in UNITS:
        raise FrameError(f"{name}: unknown unit code {code:02x}")
    got, unit, exp = UNITS[code]
    if got != kind:
        raise FrameError(f"{name}: unit code {code:02x} is {got}, expected {kind}")
    return _scaled(chunk[:-1], exp - decimals), unit


def _time(chunk: bytes) -> datetime | None:
    """7 BCD bytes sent ss mm hh DD MM YYYY(lo) YYYY(hi); None when FF, zero or not a date."""
    try:
        s, mi, h, d, mo = (bcd_decode(chunk[i:i + 1]) for i in range(5))
        return datetime(bcd_decode(chunk[5:7]), mo, d, h, mi, s)
    except (ValueError, FrameError):
        return None


def _status(st: bytes) -> tuple[str, bool, int]:
    """(valve, battery low, the 16-bit status word)."""
    return VALVE_STATES[st[0] & 0x03], bool(st[0] & 0x04), st[0] | st[1] << 8


def decode_current(frame: Frame) -> CurrentData:
    """Decode a 901F reply from a water (0x1x) or heat (0x2x) meter; FrameError for anything else."""
    if frame.di != DI_CURRENT or not frame.is_reply or frame.is_error:
        raise FrameError(f"not a 901F reply (C={frame.control:02x}, DI={frame.di:04X})")
    if frame.meter_type in WATER_TYPES:
        return _decode_water(frame)
    if frame.meter_type in HEAT_TYPES:
        return _decode_heat(frame)
    raise FrameError(f"meter type {frame.meter_type:02x} is not a water (1x) or heat (2x) meter")


def _decode_water(frame: Frame) -> CurrentData:
    p = frame.payload
    if len(p) < WATER_LEN:
        raise FrameError(f"901F water reply needs {WATER_LEN} data bytes after DI and SER, got {len(p)}")
    total, _ = _quantity(p[0:5], 2, "volume", "total")
    settle, _ = _quantity(p[5:10], 2, "volume", "settlement total")
    values: dict[str, float | int | bool] = {k: v for k, v in (("total_m3", total), ("settlement_m3", settle))
                                             if v is not None}
    valve, battery_low, status = _status(p[17:19])
    values.update(status=status, battery_low=battery_low)
    return CurrentData(frame.meter_type, frame.address, total_m3=total, settlement_m3=settle,
                       meter_time=_time(p[10:17]), valve=valve, battery_low=battery_low, status=status,
                       values=values)


def _decode_heat(frame: Frame) -> CurrentData:
    p = frame.payload
    if len(p) < HEAT_LEN:
        raise FrameError(f"901F heat reply needs {HEAT_LEN} data bytes after DI and SER, got {len(p)}")
    settle, settle_unit = _quantity(p[0:5], 2, "energy", "settlement heat")
    heat, heat_unit = _quantity(p[5:10], 2, "energy", "heat")
    power, _ = _quantity(p[10:15], 2, "power", "power")
    flow, _ = _quantity(p[15:20], 4, "flow", "flow")
    total, _ = _quantity(p[20:25], 2, "volume", "total")
    supply, ret = _scaled(p[25:28], -2), _scaled(p[28:31], -2)
    hours = None if _missing(p[31:34]) else bcd_decode(p[31:34])
    values: dict[str, float | int | bool] = {}
    for key, v in ((f"heat_{heat_unit}", heat), (f"settlement_heat_{settle_unit}", settle), ("power_kw", power),
                   ("flow_m3h", flow), ("total_m3", total), ("supply_c", supply), ("return_c", ret),
                   ("hours_h", hours)):
        if v is not None:
            values[key] = v
    valve, battery_low, status = _status(p[41:43])
    values.update(status=status, battery_low=battery_low)
    return CurrentData(frame.meter_type, frame.address, total_m3=total, flow_m3h=flow, power_kw=power,
                       heat_kwh=heat if heat_unit == "kwh" else None, heat_gj=heat if heat_unit == "gj" else None,
                       settlement_heat_kwh=settle if settle_unit == "kwh" else None,
                       settlement_heat_gj=settle if settle_unit == "gj" else None,
                       supply_c=supply, return_c=ret, hours=hours, meter_time=_time(p[34:41]),
                       valve=valve, battery_low=battery_low, status=status, values=values)


# ---------------------------------------------------------------------- requests
def read_current_request(address: str, meter_type: int = 0x10, ser: int = 0, *, preamble: int = 2,
                         di_high_first: bool = False) -> bytes:
    return build_frame(meter_type, address, C_READ, DI_CURRENT, ser, preamble=preamble, di_high_first=di_high_first)


def valve_request(address: str, open_: bool, meter_type: int = 0x10, ser: int = 0, *, preamble: int = 2,
                  di_high_first: bool = False) -> bytes:
    return build_frame(meter_type, address, C_WRITE, DI_VALVE, ser, bytes([VALVE_OPEN if open_ else VALVE_CLOSE]),
                       preamble=preamble, di_high_first=di_high_first)


def valve_reply_state(frame: Frame) -> str:
    """Valve state from an A017 reply's status word (C=84 per the standard; any reply control is accepted)."""
    if frame.di != DI_VALVE or not frame.is_reply or frame.is_error or len(frame.payload) < 1:
        raise FrameError(f"not a valve reply (C={frame.control:02x}, DI={frame.di:04X})")
    return VALVE_STATES[frame.payload[0] & 0x03]


# ---------------------------------------------------------------------- replies (simulators, tests)
def _q(value: float | None, decimals: int, unit: int) -> bytes:
    if value is None:
        return b"\xff\xff\xff\xff" + bytes([unit])
    return bcd_encode(int(round(value * 10 ** decimals)), 4) + bytes([unit])


def _bcd_or_ff(value: float | None, scale: int, nbytes: int) -> bytes:
    return b"\xff" * nbytes if value is None else bcd_encode(int(round(value * scale)), nbytes)


def time_bytes(t: datetime | None) -> bytes:
    if t is None:
        return b"\xff" * 7
    return b"".join(bcd_encode(v, 1) for v in (t.second, t.minute, t.hour, t.day, t.month)) + bcd_encode(t.year, 2)


def current_payload(data: CurrentData) -> bytes:
    """The 901F data (after DI and SER) a meter sends for ``data``; None fields go out as FF (unsupported)."""
    valve_bits = {"closed": 1, "abnormal": 3}.get(data.valve, 0)
    st = bytes([valve_bits | (4 if data.battery_low else 0), (data.status >> 8) & 0xFF])
    if data.meter_type in WATER_TYPES:
        return _q(data.total_m3, 2, 0x2C) + _q(data.settlement_m3, 2, 0x2C) + time_bytes(data.meter_time) + st
    if data.meter_type not in HEAT_TYPES:
        raise ValueError(f"meter type {data.meter_type:02x} is not a water or heat meter")
    gj = data.heat_gj is not None
    heat, settle = (data.heat_gj, data.settlement_heat_gj) if gj else (data.heat_kwh, data.settlement_heat_kwh)
    energy_unit = 0x11 if gj else 0x05
    return (_q(settle, 2, energy_unit) + _q(heat, 2, energy_unit) + _q(data.power_kw, 2, 0x17)
            + _q(data.flow_m3h, 4, 0x35) + _q(data.total_m3, 2, 0x2C) + _bcd_or_ff(data.supply_c, 100, 3)
            + _bcd_or_ff(data.return_c, 100, 3) + _bcd_or_ff(data.hours, 1, 3) + time_bytes(data.meter_time) + st)


def current_reply(data: CurrentData, ser: int = 0, *, preamble: int = 2, di_high_first: bool = False) -> bytes:
    """The whole 901F reply frame a meter sends for ``data``."""
    return build_frame(data.meter_type, data.address, C_READ_REPLY, DI_CURRENT, ser, current_payload(data),
                       preamble=preamble, di_high_first=di_high_first)


def valve_reply(address: str, meter_type: int, closed: bool, ser: int = 0, *, preamble: int = 2,
                di_high_first: bool = False) -> bytes:
    return build_frame(meter_type, address, C_WRITE_REPLY, DI_VALVE, ser, bytes([1 if closed else 0, 0]),
                       preamble=preamble, di_high_first=di_high_first)
