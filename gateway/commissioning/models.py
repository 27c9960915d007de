"""The commissioning walk's vocabulary: device kinds, steps, statuses, and the bodies the API takes.

A *run* is one walk of technicians over part of the site (the whole site, some buildings, or a
list of devices). It holds one *step* per thing to prove on each device; a step is ``pending``
until the gateway sees it happen (``done``), or a technician marks it ``na`` (not applicable) or
``failed`` with a reason. ``done`` is never set by hand: everything a run asks for is something
the gateway can see for itself, so a hand-made ``done`` would be a claim without proof.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: what a run checks on each kind of device, in the order a technician walks them
DOOR_STEPS = ("grant", "granted", "contact", "refuse", "held_open")
READER_STEPS = ("online", "secure")
METER_STEPS = ("reading", "valve")
ZONE_STEPS = ("signal",)
STEPS_BY_KIND: dict[str, tuple[str, ...]] = {
    "door": DOOR_STEPS, "reader": READER_STEPS, "meter": METER_STEPS, "zone": ZONE_STEPS,
}
KINDS = tuple(STEPS_BY_KIND)

STATUSES = ("pending", "done", "failed", "na")
#: what a technician may set by hand (``done`` only ever comes from what the gateway saw)
MARKS = ("na", "failed")

#: most devices one run may name, and most runs a list returns
MAX_DEVICES = 2000
MAX_LIST = 200
#: failures listed in the ``site.commissioned`` event (the report has them all)
EVENT_FAILURES_MAX = 50


@dataclass
class Step:
    """One thing to prove on one device, and what the gateway saw of it."""

    device: str
    kind: str
    building: str
    name: str
    step: str
    status: str = "pending"
    at: str | None = None          # when it was done / marked
    by: str | None = None          # "gateway" (seen) or who marked it
    reason: str = ""               # why na / failed
    #: what was seen: {"events": [{"type", "seq", "at", ...}], "parts": {...}} (bounded)
    seen: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.device, self.step)

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "kind": self.kind, "building": self.building, "name": self.name,
                "step": self.step, "status": self.status, "at": self.at, "by": self.by, "reason": self.reason,
                "seen": self.seen}


@dataclass(frozen=True)
class Planned:
    """A device the run covers, with the steps it needs (``rules.plan``)."""

    device: str
    kind: str
    building: str
    name: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class Observation:
    """What one event proves (``rules.observe``): ``part`` of ``step`` on ``device``; ``done`` when it alone completes
    the step, otherwise the tracker completes it once the step's parts are all seen (``rules.complete``)."""

    device: str
    step: str
    part: str
    evidence: dict[str, Any]


class StartBody(BaseModel):
    """``POST /commissioning``: what the walk covers."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["site", "building", "devices"] = "site"
    buildings: list[str] = Field(default=[], max_length=100)
    devices: list[str] = Field(default=[], max_length=MAX_DEVICES)
    note: str = Field(default="", max_length=500)


class MarkBody(BaseModel):
    """``POST /commissioning/{id}/steps``: a step not applicable here, or failed, always with a reason."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(min_length=1, max_length=100)
    step: str = Field(min_length=1, max_length=32)
    status: Literal["na", "failed", "done"]
    reason: str = Field(default="", max_length=500)


class FinishBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=1000)
