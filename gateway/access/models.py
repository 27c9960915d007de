"""What comes in and goes out: request and command models, HTTP answers, and a door at runtime.

Requests (HTTP bodies) and MQTT command arguments are validated here, before any rule runs, so
the rest of the area works on typed values. The answer models pin the JSON the API has always
produced (same keys, same order): changing one is a contract change (docs/access.md).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.config.models import RelayOutputConfig

HOLDER_KINDS = ("resident", "family", "tenant", "worker", "staff")
#: household cards: the ones counted against the unit's free cards
FEE_KINDS = ("resident", "family", "tenant")
#: why the duty room revokes a card (``POST /cards/{card}/revoke``); ``other`` needs a note
REVOKE_REASONS = ("lost", "stolen", "moved_out", "damaged", "other")
#: a card revoked for one of these was lost to the household: its replacement is charged
LOST_REASONS = ("lost", "stolen")
UNIT_RE = r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$"
UNIT = re.compile(UNIT_RE)
HHMM = re.compile(r"^([01]\d|2[0-4]):[0-5]\d$")


# ---------------------------------------------------------------------- requests and commands
class Window(BaseModel):
    """A time window in site time on ISO weekdays (1 = Monday); ``to`` may be 24:00."""

    model_config = ConfigDict(extra="forbid")
    days: list[int] = [1, 2, 3, 4, 5]
    start: str = Field(alias="from")
    end: str = Field(alias="to")

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        if not v or any(d < 1 or d > 7 for d in v):
            raise ValueError("days are ISO weekdays 1..7")
        return sorted(set(v))

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not HHMM.match(v) or (v.startswith("24") and v != "24:00"):
            raise ValueError("time must be HH:MM")
        return v

    @model_validator(mode="after")
    def _forward(self) -> Window:
        # HH:MM strings compare in time order; a window that never opens would deny the card silently
        if self.start >= self.end:
            raise ValueError(f"window {self.start}-{self.end} never opens: 'from' must be before 'to' "
                             "(overnight: use two windows, e.g. 22:00-24:00 and 00:00-06:00)")
        return self


Schedule = list[Window] | Literal["working-hours"] | None


class CardSpec(BaseModel):
    """What a card may do (the body of POST /cards without the card, and of an enrolment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    unit: str = Field(pattern=UNIT_RE)
    holder: str = Field(default="", max_length=200)
    holder_kind: Literal["resident", "family", "tenant", "worker", "staff"]
    doors: list[str] = Field(default=[], max_length=2000)
    valid_from: str | None = None
    valid_until: str | None = None
    schedule: Schedule = None
    #: the revoked card of the same unit this one replaces (a lost card's successor): see the fee rule
    replaces: str | None = Field(default=None, max_length=64)


class CardIn(CardSpec):
    card: str
    status: Literal["active", "revoked"] = "active"


class CardPatch(BaseModel):
    """``PATCH /cards/{card}``: change what an issued card may do, in place (absent = unchanged, null = none)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    doors: list[str] | None = Field(default=None, max_length=2000)
    valid_from: str | None = None
    valid_until: str | None = None
    schedule: Schedule = None

    @model_validator(mode="after")
    def _something(self) -> CardPatch:
        if not self.model_fields_set:
            raise ValueError("nothing to change: give doors, valid_from, valid_until or schedule")
        if "doors" in self.model_fields_set and self.doors is None:
            raise ValueError("doors cannot be null: a card must open at least one door")
        return self


class RevokeIn(BaseModel):
    """Why the card is revoked, from a fixed list (``other`` needs a note). The note stays in the register."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: Literal["lost", "stolen", "moved_out", "damaged", "other"]
    note: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _note_for_other(self) -> RevokeIn:
        if self.reason == "other" and not self.note:
            raise ValueError("reason 'other' needs a note saying why")
        return self


class UnitIn(BaseModel):
    """A household as central registers it: how many occupants live there (the free cards follow from it)."""

    model_config = ConfigDict(extra="forbid")
    unit: str = Field(pattern=UNIT_RE)
    occupants: int = Field(ge=0, le=100)


class UnitsArgs(BaseModel):
    """``units.apply``: occupants per unit (absolute numbers, so a repeat does no harm)."""

    model_config = ConfigDict(extra="forbid")
    units: list[UnitIn] = Field(max_length=100_000)


class EnrolmentIn(CardSpec):
    door: str


class UnlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float | None = Field(default=None, gt=0, le=3600)


class DoorUnlockArgs(UnlockIn):
    door: str


class RelockIn(BaseModel):
    """An operator ends a door's release (fire hold or unlock): audited with ``reason``; ``confirm`` while the
    fire that holds it is still active."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: str = Field(min_length=1, max_length=500)
    confirm: bool = False


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: Literal["upsert", "revoke"]
    card: CardIn | str
    reason: str = "revoked"


class ApplyArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_rev: int = Field(ge=0)
    rev: int = Field(ge=0)
    changes: list[Change] = []
    #: occupants of units, applied in the same transaction as the changes (see ``units.apply``)
    units: list[UnitIn] = Field(default=[], max_length=100_000)

    @model_validator(mode="after")
    def _forward(self) -> ApplyArgs:
        if self.rev <= self.base_rev:
            raise ValueError(f"rev ({self.rev}) must be after base_rev ({self.base_rev})")
        return self


class SnapshotArgs(BaseModel):
    """``cards`` are validated one by one while rows are built: 100,000 models at once would cost ~130 MB."""

    model_config = ConfigDict(extra="forbid")
    rev: int = Field(ge=0)
    cards: list[Any] = Field(default=[], max_length=2_000_000)
    units: list[UnitIn] = Field(default=[], max_length=100_000)


# ---------------------------------------------------------------------- HTTP answers
class CardOut(BaseModel):
    card: str
    bits: int
    format: str | None
    facility: int | None
    number: int | None
    unit: str
    holder: str
    holder_kind: str
    doors: list[str]
    valid_from: str | None
    valid_until: str | None
    schedule: list[dict[str, Any]] | None
    status: str
    revoke_reason: str | None
    rev: int
    source: str
    issued_at: str
    updated_at: str
    replaces: str | None = None
    revoke_note: str | None = None


class CardPage(BaseModel):
    items: list[CardOut]
    rev: int
    next: str | None


class VerificationRefusal(BaseModel):
    reason: str
    at: str


class VerificationSwipe(BaseModel):
    door: str
    ok: bool
    reason: str | None
    at: str


class DoorVerification(BaseModel):
    door: str
    name: str
    verified: bool
    at: str | None
    #: the last refusal at this door while it is not verified (kept in the store: survives a page reload)
    refused: VerificationRefusal | None = None


class VerificationOut(BaseModel):
    card: str
    unit: str
    status: str
    doors: list[DoorVerification]
    verified: int
    total: int
    complete: bool
    #: the newest counted swipe: a door's first grant, or a refusal
    last: VerificationSwipe | None = None


class EnrolmentOut(BaseModel):
    id: str
    door: str
    state: str
    card: str | None
    error: str | None
    unit: str | None
    holder_kind: str | None
    doors: list[str] | None
    created_at: str
    expires_at: str
    done_at: str | None


class HoldOut(BaseModel):
    """Why a door is held released: the hold and, for a fire, its alarm (``active`` until the panel restores it)."""

    model_config = ConfigDict(extra="allow")
    token: str
    reason: str
    alarm: int | None = None
    kind: str | None = None
    since: str | None = None
    state: str | None = None
    active: bool | None = None
    placed: str | None = None


class DoorStateOut(BaseModel):
    id: str
    name: str
    building: str
    reader: str
    state: str
    since: str
    contact: Literal["open", "closed"] | None
    reader_online: bool | None
    #: on an escape route (released by a fire in its building and by any fire not placed)
    egress: bool
    #: what moves its lock: {kind: osdp, reader, number, online} or {kind: relay, bus, device_id, coil, device, online}
    output: dict[str, Any]
    #: the holds keeping it released, first one first (empty: none)
    holds: list[HoldOut]


class DoorList(BaseModel):
    items: list[DoorStateOut]


class RelockOut(BaseModel):
    door: str
    relocked: bool
    #: holds the door was taken out of (their other doors stay released)
    holds: list[str]
    #: a fire holding it was still active (the relock was confirmed)
    fire_active: bool
    relay_command_sent: bool


class UnlockOut(BaseModel):
    door: str
    unlocked: bool
    seconds: int | float  # as given, or the door's unlock_s (an int in the config stays one)
    relay_command_sent: bool


# ---------------------------------------------------------------------- doors at runtime
@dataclass
class Door:
    """A configured door and what the gateway knows of it now (monotonic times, its timers)."""

    id: str
    name: str
    building: str
    unit: str
    reader: str
    output: int | RelayOutputConfig   # OSDP output number on its reader, or a relay board coil
    input: int
    unlock_s: float
    held_open_s: float
    contact_open: bool | None = None   # None = not reported yet
    authorized_until: float = 0.0      # monotonic: a grant/unlock window for opening
    unlock_until: float = 0.0          # monotonic: released by an operator unlock
    forced: bool = False
    held_open: bool = False
    state: str = "closed"
    since: str = ""
    held_task: asyncio.Task[None] | None = field(default=None, repr=False)
    relock_task: asyncio.Task[None] | None = field(default=None, repr=False)
    egress: bool = True                 # on an escape route
