"""What the metering area holds in memory: one :class:`MeterRuntime` per meter, urgent bus jobs, command models.

A meter's runtime is the only mutable per-meter state. The scheduler, the readings
writer, the rules and the views all read and update it on the event loop, so it needs
no lock; what must survive a restart is in the register (``register.py``) and seeded
back at start.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from pydantic import Field as PField

from drivers.modbus import Profile, ReadBlock
from gateway.config import MeterConfig


@dataclass
class SupplyTrack:
    """The "no hot water" rule's memory of a meter's recent supply-temperature samples."""

    cold_since: datetime | None = None
    cold: int = 0       # consecutive samples below the floor
    warm: int = 0       # consecutive samples above floor + hysteresis while the fault is active


@dataclass
class MeterRuntime:
    cfg: MeterConfig
    profile: Profile | None
    plan: tuple[ReadBlock, ...]
    error: str = ""                    # profile problem: never polled
    next_due: float = 0.0
    misses: int = 0
    online: bool | None = None
    last_error: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    read_at: str | None = None
    prev_total: float | None = None
    prev_at: datetime | None = None
    expected_since_change: float = 0.0
    flow_since: datetime | None = None
    anomalies: dict[str, str] = field(default_factory=dict)   # kind -> since
    valve: str | None = None           # commanded: open | closed | restricted (None: never commanded here)
    offline_since: str | None = None
    valve_read: str | None = None      # as read back by the last poll: open | closed | restricted | unknown
    valve_raw: int | None = None
    valve_misreads: int = 0            # consecutive polls reading another state than the commanded one
    valve_mismatch: str | None = None  # since (meter.valve_mismatch raised)
    faults: dict[str, str] = field(default_factory=dict)       # kind -> since (meter.fault raised)
    supply: SupplyTrack = field(default_factory=SupplyTrack)

    @property
    def id(self) -> str:
        return self.cfg.id

    @property
    def has_valve(self) -> bool:
        return bool(self.profile and self.profile.valve) or (self.cfg.protocol == "cjt188" and self.cfg.valve)

    @property
    def pollable(self) -> bool:
        """A Modbus meter with a usable profile, or a CJ/T 188 meter (it needs none)."""
        return not self.error and (self.profile is not None or self.cfg.protocol == "cjt188")

    @property
    def state(self) -> str:
        """``error`` (profile unusable), ``pending`` (not read yet), ``online`` or ``offline``."""
        if self.error:
            return "error"
        if self.online is None:
            return "pending"
        return "online" if self.online else "offline"

    def view(self) -> dict[str, Any]:
        """This meter's live state for GET /meters, the console and the handover report."""
        return {
            "id": self.id, "unit": self.cfg.unit, "bus": self.cfg.bus, "device_id": self.cfg.device_id,
            "profile": self.cfg.profile, "poll_s": self.cfg.poll_s,
            "protocol": self.cfg.protocol, "address": self.cfg.address or None,
            "online": self.online, "state": self.state,
            "values": self.values, "read_at": self.read_at,
            "anomalies": [{"kind": k, "since": s} for k, s in self.anomalies.items()],
            "valve": self.valve if self.has_valve else None,
            "has_valve": self.has_valve,
            "valve_states": list(self.profile.valve.states) if self.profile and self.profile.valve else [],
            "valve_read": self.valve_read if self.has_valve else None,
            "valve_mismatch": self.valve_mismatch,
            "faults": [{"kind": k, "since": s} for k, s in self.faults.items()],
            "misses": self.misses, "last_error": self.last_error or self.error, "offline_since": self.offline_since,
        }


@dataclass
class Job:
    """Urgent work for a bus: a valve write or an immediate poll."""

    kind: Literal["valve", "poll"]
    meter: MeterRuntime
    action: str = ""          # valve: the target state (open | closed | restricted)
    future: asyncio.Future[Any] | None = None


ValveAction = Literal["open", "close", "restrict"]
#: what each valve action brings the valve to
ACTION_STATE: dict[str, str] = {"open": "open", "close": "closed", "restrict": "restricted"}


class ValveArgs(BaseModel):
    """MQTT ``valve`` {meter, action}."""

    meter: str = PField(max_length=64)
    action: ValveAction


class ValveBody(BaseModel):
    """HTTP ``POST /meters/{id}/valve`` body."""

    action: ValveAction


class ReadingsNowArgs(BaseModel):
    """MQTT ``readings.now`` {meters?}: no list = every meter."""

    meters: list[str] | None = None


class ReadingsPullArgs(BaseModel):
    """MQTT ``readings.pull`` {after: CURSOR|null, limit}: ``GET /readings`` for a site central cannot reach."""

    after: str | int | None = PField(default=None, union_mode="left_to_right")
    limit: int = PField(default=500, ge=1, le=5000)

    def cursor(self) -> int | None:
        """The cursor as a number, or None when it is not one ``next`` could have been (cursors are < 2**63)."""
        text = "0" if self.after is None else str(self.after)
        return int(text) if text.isascii() and text.isdigit() and len(text) <= 19 and int(text) < 2 ** 63 else None


class BillingExportArgs(BaseModel):
    """MQTT ``billing.export`` {quarter}: ``GET /billing?quarter=`` for a site central cannot reach."""

    quarter: str = PField(max_length=16)
