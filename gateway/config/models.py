"""The config's shape: one pydantic model per TOML section, with its defaults and limits.

Unknown keys are errors (``extra="forbid"``): a typo must not silently become a
default on a door controller. References between sections are checked in
:mod:`gateway.config.references`; files and lines in :mod:`gateway.config.loader`.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID = r"^[a-z0-9][a-z0-9-]{0,31}$"
ANY_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

#: shipped inside the package (config/meters links here, so the repository layout stays the same)
BUILTIN_PROFILE_DIR = Path(__file__).resolve().parent.parent / "meters"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not (0 <= int(port) <= 65535):
        raise ValueError(f"expected host:port, got {value!r}")
    host = host.strip("[]")
    if host and host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not re.match(r"^[A-Za-z0-9.-]+$", host):
                raise ValueError(f"bad host in {value!r}") from None
    return value


# ---------------------------------------------------------------------- sections
class GatewaySection(Strict):
    id: str = Field(pattern=ID)
    site: str = Field(pattern=ID)
    data_dir: str
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r}") from None
        return v


class MqttSection(Strict):
    url: str = Field(pattern=r"^mqtts?://[^/\s]+$")
    username: str = ""
    password_file: str = ""
    ca_file: str = ""
    client_cert_file: str = ""   # mutual TLS: the gateway's certificate (PEM)
    client_key_file: str = ""    # and its key
    topic_root: str = Field(default="estate", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    keepalive_s: int = Field(default=30, ge=5, le=600)
    inflight: int = Field(default=500, ge=1, le=65000)  # QoS 1 messages awaiting PUBACK
    command_hmac_key_file: str = ""  # set: commands must carry a valid HMAC (see README)

    @property
    def tls(self) -> bool:
        return self.url.startswith("mqtts://")

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        rest = self.url.split("://", 1)[1]
        if ":" in rest.lstrip("["):
            tail = rest.rsplit(":", 1)[1]
            if tail.isdigit():
                return int(tail)
        return 8883 if self.tls else 1883


class TokenEntry(Strict):
    name: str = Field(pattern=ANY_ID)
    role: Literal["operator", "technician", "central", "admin"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ApiSection(Strict):
    listen: str = "127.0.0.1:8080"
    tokens: list[TokenEntry] = []

    _v = field_validator("listen")(classmethod(lambda cls, v: _host_port(v)))


class OutboxSection(Strict):
    max_events: int = Field(default=2_000_000, ge=100)
    #: days an event stays in the local log after delivery (GET /events)
    retention_days: float = Field(default=90, gt=0)


class StoreSection(Strict):
    backup_dir: str = "backups"          # relative to data_dir
    backup_interval_h: float = Field(default=24, ge=0)  # 0 = no periodic backup
    backup_keep: int = Field(default=7, ge=1)
    #: "full": every commit survives power loss; "normal": survives crashes and kill -9, not power loss,
    #: with commits ~10x faster (door decisions well under 2 ms on slow flash)
    synchronous: Literal["full", "normal"] = "full"


class ReaderConfig(Strict):
    id: str = Field(pattern=ANY_ID)
    driver: Literal["osdp", "serial-ascii", "wiegand-serial"]
    port: str
    baud: int = Field(default=9600, gt=0)
    address: int = Field(default=0, ge=0, le=126)
    scbk_file: str = ""
    #: OSDP: talk to a factory-fresh reader with the default key and give it scbk_file's key (then set false)
    install_mode: bool = False
    #: serial readers: what the wire carries ("" = the driver's own: serial-ascii -> rdm6300, wiegand-serial ->
    #: wiegand); see drivers/serial_frames and docs/access.md "Reader formats"
    framing: Literal["", "auto", "rdm6300", "id12la", "wiegand", "wiegand-hex", "wiegand-decimal", "line"] = ""
    #: wiegand-hex / wiegand-decimal: the Wiegand frame the converter read (0 = by the hex digits; decimal: 26)
    wiegand_bits: Literal[0, 26, 34, 37] = 0

    @model_validator(mode="after")
    def _serial_keys(self) -> ReaderConfig:
        if self.driver == "osdp" and (self.framing or self.wiegand_bits):
            raise ValueError("framing and wiegand_bits are for serial readers; an OSDP reader reports its format")
        return self


class DoorConfig(Strict):
    id: str = Field(pattern=ANY_ID)
    name: str = ""
    building: str = ""
    reader: str
    output: int = Field(default=0, ge=0, le=255)
    input: int = Field(default=0, ge=0, le=255)  # door contact input number on the reader
    unlock_s: float = Field(default=5, gt=0, le=3600)
    held_open_s: float = Field(default=60, ge=0)
    #: the building-unit this door serves (e.g. "3-1"); "" = a building-wide or common door
    unit: str = ""


class AntiPassback(Strict):
    entry: str   # door id where people go in
    exit: str    # door id where they come out


class AccessSection(Strict):
    anti_passback: list[AntiPassback] = []
    #: holidays (YYYY-MM-DD) on which scheduled cards (workers) are not let in
    holidays: list[str] = []
    #: a pending enrolment waits this long for its swipe
    enrolment_timeout_s: float = Field(default=600, gt=0)
    #: renovation workers: default working hours (site time) and longest validity
    worker_hours: str = Field(default="08:00-18:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")
    worker_days: list[int] = [1, 2, 3, 4, 5]   # ISO weekdays, 1 = Monday
    worker_max_days: int = Field(default=90, ge=1)
    #: cards per unit that are free; issuing more emits card.fee_due
    free_cards_per_unit: int = Field(default=3, ge=0)
    #: a revoked card's holder name is erased this long after the revocation (personal data)
    holder_retention_days: float = Field(default=365, ge=0)


class BusConfig(Strict):
    id: str = Field(pattern=ANY_ID)
    transport: Literal["rtu", "tcp", "rtu-over-tcp"]
    port: str
    baud: int = Field(default=9600, gt=0)
    timeout_s: float = Field(default=0.3, gt=0, le=30)
    retries: int = Field(default=1, ge=0, le=10)

    @model_validator(mode="after")
    def _port_fits(self) -> BusConfig:
        if self.transport in ("tcp", "rtu-over-tcp"):
            _host_port(self.port)
        return self


class MeterConfig(Strict):
    id: str = Field(pattern=ANY_ID)
    bus: str
    device_id: int = Field(ge=0, le=247)
    profile: str = Field(pattern=ANY_ID)
    unit: str
    poll_s: float = Field(default=60, gt=0)


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


class AlarmReceiverConfig(Strict):
    id: str = Field(pattern=ANY_ID)
    protocol: Literal["sia-dc09", "contact-id-serial", "gb26875"]
    listen: str = ""
    port: str = ""
    baud: int = Field(default=9600, gt=0)
    accounts: list[str] = []
    key_file: str = ""
    supervision_s: float = Field(default=0, ge=0)  # 0 = panel liveness not supervised

    @model_validator(mode="after")
    def _where(self) -> AlarmReceiverConfig:
        if self.protocol == "sia-dc09":
            if not self.listen:
                raise ValueError("sia-dc09 needs listen = \"host:port\"")
            _host_port(self.listen)
        elif not (self.port or self.listen):
            raise ValueError(f"{self.protocol} needs port (serial) or listen (TCP)")
        if self.listen and self.protocol != "sia-dc09":
            _host_port(self.listen)
        return self


ALARM_KINDS = ("fire", "smoke", "burglary", "panic", "fault", "supervisory", "test", "other")


#: seconds unacknowledged before alarm.escalated, per kind (fire shortest); a config's escalate_s is merged over it
DEFAULT_ESCALATE_S: dict[str, float] = {"fire": 60, "smoke": 60, "panic": 60, "burglary": 120,
                                        "fault": 900, "supervisory": 900, "test": 3600, "other": 600}


class AlarmZoneConfig(Strict):
    receiver: str
    zone: int = Field(ge=0)
    building: str = ""
    name: str = ""
    unlock_doors: list[str] = []


class AlarmsSection(Strict):
    #: seconds an alarm may stay unacknowledged before alarm.escalated (and again each time after)
    escalate_s: dict[str, float] = dict(DEFAULT_ESCALATE_S)
    day_shift_starts: str = Field(default="08:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    night_shift_starts: str = Field(default="18:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    #: how often escalation and panel supervision are checked
    tick_s: float = Field(default=1.0, gt=0, le=60)
    #: how long a committed DC-09 block is remembered to recognise the panel's retries
    dedupe_keep_h: float = Field(default=48, gt=0)

    @field_validator("escalate_s")
    @classmethod
    def _escalate(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(ALARM_KINDS)
        if unknown:
            raise ValueError(f"unknown kind(s) {', '.join(sorted(unknown))} (kinds: {', '.join(ALARM_KINDS)})")
        # fire escalates first: kinds left out take their defaults, 0 (or less) turns a kind's escalation off
        merged = {**DEFAULT_ESCALATE_S, **value}
        fire = merged["fire"]
        shorter = sorted((s, k) for k, s in merged.items() if k != "fire" and s > 0 and (fire <= 0 or s < fire))
        if shorter:
            s, k = shorter[0]
            dflt = "" if k in value else " (default)"
            what = (f"fire = {fire:g} turns fire escalation off while {k} escalates after {s:g} s{dflt}" if fire <= 0
                    else f"fire = {fire:g} s is longer than {k} = {s:g} s{dflt}")
            raise ValueError(f"{what}: fire must escalate first (the shortest time of all kinds)")
        return value

    @model_validator(mode="after")
    def _kinds(self) -> AlarmsSection:
        if self.day_shift_starts >= self.night_shift_starts:
            raise ValueError("day_shift_starts must be before night_shift_starts")
        return self


class GatewayConfig(Strict):
    gateway: GatewaySection
    mqtt: MqttSection
    api: ApiSection = ApiSection()
    outbox: OutboxSection = OutboxSection()
    store: StoreSection = StoreSection()
    access: AccessSection = AccessSection()
    readers: list[ReaderConfig] = []
    doors: list[DoorConfig] = []
    buses: list[BusConfig] = []
    meters: list[MeterConfig] = []
    metering: MeteringSection = MeteringSection()
    alarm_receivers: list[AlarmReceiverConfig] = []
    alarm_zones: list[AlarmZoneConfig] = []
    alarms: AlarmsSection = AlarmsSection()

    #: folder of the config file: relative paths are relative to it (not a TOML key)
    base_dir: Path = Field(default=Path("."), exclude=True)

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(path)
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def data_path(self) -> Path:
        return self.resolve(self.gateway.data_dir)

    @property
    def db_path(self) -> Path:
        return self.data_path / "gateway.db"

    @property
    def topic_root(self) -> str:
        return f"{self.mqtt.topic_root}/{self.gateway.site}/{self.gateway.id}"

    def profile_dirs(self) -> list[Path]:
        return [self.resolve(d) for d in self.metering.profile_dirs] + [BUILTIN_PROFILE_DIR]
