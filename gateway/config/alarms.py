"""Alarms' config sections: the panel receivers (their keys, sources and connection limits), zones, and [alarms].

Apart from the other sections because the receivers carry most of the per-key rules (which keys each protocol
takes, keys and plain blocks, who may connect) and grew with the hostile-network defences.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from drivers.listener import host_address, parse_networks
from gateway.config.base import ANY_ID, Strict, host_port

#: seconds a panel may stay silent before a ``fault`` alarm, per protocol, where ``supervision_s`` is not given:
#: DC-09 link tests (NULL) and GB/T 26875.3 heartbeats come every minute or two, so five minutes of silence is a
#: dead panel or a cut line; a Contact ID receiver only prints what the panel reports, and a panel's periodic test
#: (602) is usually daily, so 25 hours. ``supervision_s = 0`` turns supervision off (explicitly, per receiver).
DEFAULT_SUPERVISION_S: dict[str, float] = {"sia-dc09": 300.0, "gb26875": 300.0, "contact-id-serial": 90_000.0}


class AlarmReceiverConfig(Strict):
    id: str = Field(pattern=ANY_ID)
    protocol: Literal["sia-dc09", "contact-id-serial", "gb26875"]
    listen: str = ""
    port: str = ""
    baud: int = Field(default=9600, gt=0)
    #: a fire this panel reports that no [[alarm_zones]] places (unmapped zone, system level, the transmitter's
    #: own status) releases every egress door of the site, or only those of ``building`` (the panel's)
    unplaced_fire: Literal["site", "building"] = "site"
    building: str = ""
    accounts: list[str] = []
    key_file: str = ""
    #: sia-dc09: how key files hold the AES key -- "hex" digits, or "ascii" (the 16/24/32 characters themselves)
    key_format: Literal["hex", "ascii"] = "hex"
    #: sia-dc09: per-account key files (account -> file), over key_file for those accounts
    account_keys: dict[str, str] = {}
    #: sia-dc09: NAK plain blocks whose timestamp is outside the window too (encrypted ones always are)
    plain_timestamp_window: bool = False
    #: supervised by default (DEFAULT_SUPERVISION_S for the protocol); 0 = panel liveness not supervised
    supervision_s: float = Field(default=300.0, ge=0)
    #: sia-dc09: take plain blocks from accounts that have a key too (a mixed site); default: DUH them
    allow_plain: bool = False
    #: TCP: sources (CIDR or address) allowed to connect; others are closed unread. Empty = anyone
    allow_from: list[str] = []
    #: TCP: open connections at once on this listener, and from one source address (IPv6: one /64)
    max_connections: int = Field(default=256, ge=1)
    max_per_source: int = Field(default=32, ge=1)
    #: TCP: seconds a connection may stay silent before it is closed
    idle_timeout_s: float = Field(default=120.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _supervised_by_default(cls, data: object) -> object:
        if isinstance(data, dict) and "supervision_s" not in data and data.get("protocol") in DEFAULT_SUPERVISION_S:
            data = {**data, "supervision_s": DEFAULT_SUPERVISION_S[data["protocol"]]}
        return data

    @model_validator(mode="after")
    def _where(self) -> AlarmReceiverConfig:
        if self.protocol == "sia-dc09":
            if not self.listen:
                raise ValueError("sia-dc09 needs listen = \"host:port\"")
            host_port(self.listen)
        elif not (self.port or self.listen):
            raise ValueError(f"{self.protocol} needs port (serial) or listen (TCP)")
        if self.listen and self.protocol != "sia-dc09":
            host_port(self.listen)
        if self.unplaced_fire == "building" and not self.building:
            raise ValueError('unplaced_fire = "building" needs building = "<the panel\'s building>"')
        parse_networks(self.allow_from)
        return self

    @property
    def encrypted(self) -> bool:
        """sia-dc09 with a key for every account (key_file) or for each configured one."""
        if self.protocol != "sia-dc09" or self.allow_plain:
            return False
        if self.key_file:
            return True
        keyed = {a.upper() for a in self.account_keys}
        return bool(self.accounts) and all(a.upper() in keyed for a in self.accounts)

    @property
    def open_to_anyone(self) -> bool:
        """TCP, listening beyond loopback, with neither encryption nor ``allow_from``: anyone who reaches the
        port can send a fire, which releases the escape doors. check-config warns and the daemon logs it at
        start, from this one test. Loopback is 127.0.0.0/8, ``::1`` (also IPv4-mapped) and ``localhost``;
        an empty host or a name may be reachable from anywhere."""
        if not self.listen or self.allow_from or self.encrypted:
            return False
        host = self.listen.rpartition(":")[0].strip("[]")
        addr = host_address(host)
        return host != "localhost" and not (addr is not None and addr.is_loopback)


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
    #: a shift change with no handover recorded this long after it (nor this long before) emits
    #: shift.handover_missed; 0 = not watched
    handover_grace_s: float = Field(default=1800, ge=0, le=4 * 3600)

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
