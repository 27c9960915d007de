"""Metering's config sections: buses (Modbus TCP/RTU, CJ/T 188 serial), meters, and the [metering] tuning.

Apart from the other sections because the two meter protocols carry most of the per-key rules
(which keys each protocol needs, CJ/T 188 meter types).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.config.base import ANY_ID, Strict, host_port


class BusConfig(Strict):
    id: str = Field(pattern=ANY_ID)
    #: Modbus: rtu | tcp | rtu-over-tcp; CJ/T 188: serial (an RS-485 line on a pyserial URL)
    transport: Literal["rtu", "tcp", "rtu-over-tcp", "serial"]
    port: str
    baud: int = Field(default=9600, gt=0)                 # serial: default 2400
    timeout_s: float = Field(default=0.3, gt=0, le=30)    # serial: default 1.5
    retries: int = Field(default=1, ge=0, le=10)
    #: serial (CJ/T 188) buses: parity, default "E" (the standard's 8E1)
    parity: Literal["N", "E", "O"] | None = None
    #: serial (CJ/T 188) buses: FE wake-up bytes sent before each request
    wakeup_bytes: int = Field(default=4, ge=0, le=32)

    @model_validator(mode="after")
    def _port_fits(self) -> BusConfig:
        if self.transport in ("tcp", "rtu-over-tcp"):
            host_port(self.port)
        if self.parity is not None and self.transport != "serial":
            raise ValueError("parity applies to transport = \"serial\" (CJ/T 188) buses only")
        if self.transport == "serial":  # CJ/T 188 lines run 2400 baud, with battery meters waking up first
            self.baud = self.baud if "baud" in self.model_fields_set else 2400
            self.timeout_s = self.timeout_s if "timeout_s" in self.model_fields_set else 1.5
        return self


#: CJ/T 188 meter types by name (the standard's T codes); "0x10".."0x19" and "0x20".."0x29" are accepted too
CJT188_TYPES = {"water": 0x10, "hot-water": 0x11, "drinking-water": 0x12, "reclaimed-water": 0x13,
                "heat": 0x20, "cooling": 0x21}
_MODBUS_KEYS, _CJT188_KEYS = ("device_id", "profile"), ("address", "meter_type", "di_order", "valve")


class MeterConfig(Strict):
    id: str = Field(pattern=ANY_ID)
    bus: str
    #: modbus (device_id + profile) | cjt188 (address + meter_type, on a transport = "serial" bus)
    protocol: Literal["modbus", "cjt188"] = "modbus"
    device_id: int = Field(default=0, ge=0, le=247)      # Modbus: required
    profile: str = Field(default="", pattern=r"^(|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$")  # Modbus: required
    unit: str
    poll_s: float = Field(default=60, gt=0)
    #: "no hot water" below this supply temperature (degC); unset = the profile's supply_floor_c, 0 = off
    supply_floor_c: float | None = Field(default=None, ge=0, le=100)
    #: CJ/T 188: the 14 digits printed on the meter (sent low byte first on the wire)
    address: str = Field(default="", pattern=r"^(|[0-9]{14})$")
    #: CJ/T 188: water | hot-water | drinking-water | reclaimed-water | heat | cooling | "0x10".."0x29"
    meter_type: str = "hot-water"
    #: CJ/T 188: how requests send the data identifier: low-first (the standard, 901F as 1F 90) | high-first
    di_order: Literal["low-first", "high-first"] = "low-first"
    #: CJ/T 188: the meter has a valve (A017 valve control)
    valve: bool = False

    @field_validator("meter_type")
    @classmethod
    def _meter_type(cls, v: str) -> str:
        cjt188_type_code(v)
        return v

    @model_validator(mode="after")
    def _protocol_keys(self) -> MeterConfig:
        given = self.model_fields_set
        mine, other = (_MODBUS_KEYS, _CJT188_KEYS) if self.protocol == "modbus" else (("address",), _MODBUS_KEYS)
        missing = [k for k in mine if k not in given]
        if missing:
            what = "a Modbus meter" if self.protocol == "modbus" else "a CJ/T 188 meter (protocol = \"cjt188\")"
            raise ValueError(f"{what} needs {' and '.join(missing)}")
        stray = [k for k in other if k in given]
        if stray:
            raise ValueError(f"{' and '.join(stray)}: not used with protocol = \"{self.protocol}\"")
        return self

    @property
    def type_code(self) -> int:
        """CJ/T 188 meter type (T) sent in requests."""
        return cjt188_type_code(self.meter_type)


def cjt188_type_code(name: str) -> int:
    """``hot-water`` -> 0x11, ``"0x20"`` -> 0x20; ValueError for anything that is not a water or heat meter type."""
    if name in CJT188_TYPES:
        return CJT188_TYPES[name]
    try:
        code = int(name, 16) if name.lower().startswith("0x") else -1
    except ValueError:
        code = -1
    if 0x10 <= code <= 0x19 or 0x20 <= code <= 0x29:
        return code
    raise ValueError(f"unknown CJ/T 188 meter type {name!r} (one of {', '.join(CJT188_TYPES)}, or 0x10..0x19 water, "
                     f"0x20..0x29 heat)")


class MeteringSection(Strict):
    profile_dirs: list[str] = []
    max_gap: int = Field(default=8, ge=0, le=100)        # registers a merged read may skip
    max_registers: int = Field(default=125, ge=1, le=125)
    offline_after: int = Field(default=3, ge=1)          # misses before meter.offline
    leak_hours: float = Field(default=6, gt=0)           # continuous flow this long = leak
    spike_m3: float = Field(default=5, gt=0)             # more than this between two reads = spike
    reverse_tolerance_m3: float = Field(default=0.001, ge=0)  # a total this much lower is not yet "reverse"
    max_backoff_s: float = Field(default=300, gt=0)      # a silent meter is retried at least this often
    valve_timeout_s: float = Field(default=15, gt=0)     # a valve command waits this long for the bus
    billing_check_s: float = Field(default=60, gt=0)     # how often the billing window is checked
    billing_report_days: float = Field(default=7, gt=0)  # missing billing readings reported up to this long after
    keep_days: float = Field(default=400, gt=0)          # readings older than this are pruned (billing rows kept)
    no_hot_water_after_s: float = Field(default=120, ge=0, le=600)  # supply below the floor this long = meter.fault
    no_hot_water_clear_c: float = Field(default=3, ge=0, le=30)     # cleared once this far above the floor
    no_hot_water_needs_flow: bool = True                 # judge the temperature only while water flows
