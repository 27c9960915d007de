"""The config's shape: one pydantic model per TOML section, with its defaults and limits.

Unknown keys are errors (``extra="forbid"``): a typo must not silently become a
default on a door controller. References between sections are checked in
:mod:`gateway.config.references`; files and lines in :mod:`gateway.config.loader`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from gateway.config.alarms import (
    AlarmReceiverConfig,
    AlarmsSection,
    AlarmZoneConfig,
)
from gateway.config.base import ANY_ID, BUILTIN_PROFILE_DIR, ID, Strict, host_port
from gateway.config.meters import BusConfig, MeterConfig, MeteringSection


# ---------------------------------------------------------------------- sections
# (metering's buses and meters are in gateway/config/meters.py)
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
            from gateway.config.advice import suggest_timezone

            near = suggest_timezone(v)
            hint = f": did you mean '{near}'?" if near else " (use an IANA name such as 'Asia/Shanghai')"
            raise ValueError(f"unknown timezone {v!r}{hint}") from None
        return v


MQTT_URL = r"^mqtts?://[^/\s]+$"


def url_host(url: str) -> str:
    """``mqtts://n1:8883`` -> ``n1``; ``mqtt://[::1]:1883`` -> ``::1``."""
    rest = url.split("://", 1)[1]
    if rest.startswith("[") and "]" in rest:
        return rest[1:rest.index("]")]
    return rest.rsplit(":", 1)[0] if ":" in rest else rest


def url_port(url: str) -> int:
    rest = url.split("://", 1)[1]
    tail = rest.rsplit("]", 1)[-1]
    if ":" in tail and tail.rsplit(":", 1)[1].isdigit():
        return int(tail.rsplit(":", 1)[1])
    return 8883 if url.startswith("mqtts://") else 1883


class MqttSection(Strict):
    #: one broker; or ``urls``: the nodes of one broker cluster (set exactly one of the two)
    url: str | None = Field(default=None, pattern=MQTT_URL)
    username: str = ""
    password_file: str = ""
    ca_file: str = ""
    client_cert_file: str = ""   # mutual TLS: the gateway's certificate (PEM)
    client_key_file: str = ""    # and its key
    topic_root: str = Field(default="estate", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    keepalive_s: int = Field(default=30, ge=5, le=600)
    inflight: int = Field(default=500, ge=1, le=65000)  # QoS 1 messages awaiting PUBACK
    command_hmac_key_file: str = ""  # set: commands must carry a valid HMAC (see README)
    # a command larger than this answers too_large before it is parsed (a 100k-card snapshot is 12-15 MB)
    max_command_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    max_command_depth: int = Field(default=32, ge=4, le=512)   # deeper nesting answers too_deep, never parsed

    #: a broker cluster: the uplink uses one node and fails over to the next (same TLS and credentials on all)
    urls: list[Annotated[str, Field(pattern=MQTT_URL)]] = Field(default=[], max_length=16)
    #: the broker's packet limit: larger command answers are split into parts that fit
    max_packet_bytes: int = Field(default=262144, ge=4096, le=268435455)

    @model_validator(mode="after")
    def _one_broker_or_one_cluster(self) -> MqttSection:
        if self.url is not None and self.urls:
            raise ValueError("set either url (one broker) or urls (the nodes of one broker cluster), not both")
        if self.url is None and not self.urls:
            raise ValueError('set url = "mqtt://host:1883" (one broker) or urls = ["mqtt://n1:1883", '
                             '"mqtt://n2:1883", ...] (the nodes of one broker cluster)')
        if len({u.split("://", 1)[0] for u in self.nodes}) > 1:
            raise ValueError("urls mixes mqtt:// and mqtts://: the nodes of one cluster share TLS and credentials")
        if len(set(self.nodes)) != len(self.nodes):
            raise ValueError("urls names a node twice")
        return self

    @property
    def nodes(self) -> list[str]:
        """The broker url(s) to use, in failover order."""
        return list(self.urls) if self.urls else [self.url or ""]

    @property
    def tls(self) -> bool:
        return self.nodes[0].startswith("mqtts://")

    @property
    def host(self) -> str:
        return url_host(self.nodes[0])

    @property
    def port(self) -> int:
        return url_port(self.nodes[0])


class TokenEntry(Strict):
    name: str = Field(pattern=ANY_ID)
    role: Literal["operator", "technician", "central", "admin"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class ApiSection(Strict):
    listen: str = "127.0.0.1:8080"
    tokens: list[TokenEntry] = []
    #: HTTPS: both or neither (``estate-gateway tls new`` makes a site certificate; make install does it)
    tls_cert_file: str = ""
    tls_key_file: str = ""
    #: plain HTTP beyond loopback sends every token in clear on the site network: only when the site says so
    allow_plain_http: bool = False

    _v = field_validator("listen")(classmethod(lambda cls, v: host_port(v)))

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file)

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]") or "127.0.0.1"

    @model_validator(mode="after")
    def _https_beyond_loopback(self) -> ApiSection:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file go together: set both (HTTPS) or neither")
        if not self.tls and not self.allow_plain_http and self.host not in LOOPBACK_HOSTS:
            raise ValueError(f"plain HTTP on {self.host} would send every token in clear on the site network: set "
                             "tls_cert_file and tls_key_file (make one with `estate-gateway tls new`), listen on "
                             "127.0.0.1, or set allow_plain_http = true")
        return self

    # ---- issue 18: bounded connections, bodies, throttling behind proxies, console sessions
    #: connections the HTTP listener holds at once; a newcomer over it evicts the oldest idle one (or is closed)
    max_connections: int = Field(default=256, ge=4, le=65536)
    #: connections one source address may hold (a trusted proxy is exempt); same eviction rule
    max_per_source: int = Field(default=64, ge=1, le=65536)
    #: a connection must finish its request head this many seconds after connecting or sending its first byte
    header_timeout_s: float = Field(default=10, gt=0, le=600)
    #: a request body must arrive completely within this many seconds after its head
    body_timeout_s: float = Field(default=30, gt=0, le=3600)
    #: an idle keep-alive connection is closed after this many seconds
    keepalive_s: float = Field(default=5, gt=0, le=600)
    #: requests served on one connection before it is closed (the client opens a new one)
    max_requests_per_connection: int = Field(default=1000, ge=1)
    #: largest request body accepted (413 body_too_large beyond; nothing is read before the token is checked)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=1 << 30)
    #: reverse proxies whose X-Forwarded-For is believed (CIDRs); others' header is ignored
    trusted_proxies: list[str] = []
    #: a console session ends after this many hours without a request (and at sign-out)
    session_idle_h: float = Field(default=12, gt=0, le=24 * 30)

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        import ipaddress

        for cidr in v:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {cidr!r} is not an address or CIDR (e.g. \"10.0.0.0/24\")") from None
        return v


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
    #: how long a write waits for another process's lock before the attempt fails and is retried
    busy_timeout_s: float = Field(default=2, gt=0, le=600)
    #: how long a caller (a DC-09 block, an HTTP request) waits for a failing store before it is refused
    #: (NAK / 503 storage_unavailable); the writer keeps retrying the write itself
    fail_after_s: float = Field(default=5, gt=0, le=600)
    #: /health says degraded ("disk full") when the data_dir's file system has less free than this
    min_free_mb: float = Field(default=16, ge=0)


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


class RelayOutputConfig(Strict):
    """A door's lock on a coil of a Modbus relay board: ``output = { bus = "relays", device_id = 3, coil = 2 }``."""

    bus: str = Field(pattern=ANY_ID)
    device_id: int = Field(ge=1, le=247)   # 0 is broadcast: a board never answers it, so nothing could be checked
    coil: int = Field(ge=0, le=65535)      # coil address as on the wire (relay 1 is usually coil 0)


OUTPUT_FORMS = "output is an OSDP output number 0-255, or a relay board coil { bus, device_id, coil }"


class DoorConfig(Strict):
    id: str = Field(pattern=ANY_ID)
    name: str = ""
    #: the building the door belongs to: its egress building (a fire there releases it when ``egress``)
    building: str = ""
    reader: str
    #: what unlocks it: an OSDP output number on its reader (default 0), or a relay board coil
    output: int | RelayOutputConfig = 0
    #: on an escape route: released by a fire in its building and by any fire the gateway cannot place
    egress: bool = True
    input: int = Field(default=0, ge=0, le=255)  # door contact input number on the reader
    unlock_s: float = Field(default=5, gt=0, le=3600)
    held_open_s: float = Field(default=60, ge=0)
    #: the building-unit this door serves (e.g. "3-1"); "" = a building-wide or common door
    unit: str = ""

    @field_validator("output", mode="before")
    @classmethod
    def _output(cls, v: object) -> object:
        """One problem in words per mistake, not one per form the value could have taken."""
        if isinstance(v, dict):
            try:
                return RelayOutputConfig.model_validate(v)
            except ValidationError as exc:
                words = {"extra_forbidden": "unknown key", "missing": "required key is missing"}
                what = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {words.get(e['type'], e['msg'])}"
                                 for e in exc.errors())
                raise ValueError(f"{OUTPUT_FORMS}: {what}") from None
        number = isinstance(v, int) and not isinstance(v, bool)
        if not (isinstance(v, RelayOutputConfig) or (number and 0 <= v <= 255)):  # type: ignore[operator]
            raise ValueError(f"{OUTPUT_FORMS}, not {v!r}")
        return v


class AntiPassback(Strict):
    entry: str   # door id where people go in
    exit: str    # door id where they come out


class AccessSection(Strict):
    anti_passback: list[AntiPassback] = []
    #: holidays (YYYY-MM-DD) on which scheduled cards (workers) are not let in
    holidays: list[str] = []
    #: a pending enrolment waits this long for its swipe
    enrolment_timeout_s: float = Field(default=600, gt=0)
    #: renovation workers: their working hours (site time; a worker's own schedule must lie within them,
    #: ``worker_hours`` error otherwise) and longest validity (``worker_validity``)
    worker_hours: str = Field(default="08:00-18:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")
    worker_days: list[int] = [1, 2, 3, 4, 5]   # ISO weekdays, 1 = Monday
    worker_max_days: int = Field(default=90, ge=1)
    #: free household cards per unit: one per registered occupant (from central), at most this many, and
    #: this many where central has not said; issuing beyond them emits card.fee_due (docs/access.md "Fees")
    free_cards_per_unit: int = Field(default=3, ge=0)
    #: a revoked card's holder name is erased this long after the revocation (personal data)
    holder_retention_days: float = Field(default=365, ge=0)


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
