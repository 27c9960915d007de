"""The alarm area's request and response shapes (HTTP bodies; the JSON keys are the external contract).

Field order is the order of the keys in today's JSON (an alarm is its table row in column
order, ``hold_released`` turned into ``doors_held``). Routes answer with ``response_model_exclude_unset=True``
so a key the area leaves out stays out.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    note: str = Field(min_length=1, max_length=1000)


class HandoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)
    from_: str = Field(alias="from", min_length=1, max_length=100)
    to: str = Field(min_length=1, max_length=100)
    notes: str = Field(default="", max_length=10_000)


class AlarmOut(BaseModel):
    """One alarm as the console and the central see it."""

    id: int
    receiver: str
    account: str
    zone: int
    code: str
    kind: str
    building: str
    name: str
    text: str
    state: str
    raised_at: str
    acked_at: str | None
    acked_by: str | None
    note: str | None
    restored_at: str | None
    closed_at: str | None
    repeats: int
    escalations: int
    escalated_at: str | None
    unlock_doors: list[str]
    #: today's JSON carries the raw column only for alarms without doors (``doors_held`` replaces it otherwise);
    #: kept for byte-compatibility: the routes answer with ``response_model_exclude_unset``, so it is absent when unset
    hold_released: int | None = None
    doors_held: bool


class AlarmList(BaseModel):
    items: list[AlarmOut]


class _Handover(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: int
    ts: str
    shift: str
    from_: str = Field(alias="from")
    to: str
    notes: str
    open_alarms: list[int]


class HandoverOut(_Handover):
    """A handover just recorded (``POST /handover``)."""

    unacknowledged_alarms: list[int]


class LastHandover(_Handover):
    """The previous handover, as the report shows it."""

    recorded_by: str


class HandoverReport(BaseModel):
    """What the outgoing shift hands over (``GET /handover``); other areas' keys (``doors``, ``meters``, ...)
    come from their ``handover_items`` and are passed through as they are."""

    model_config = ConfigDict(extra="allow")
    now: str
    shift: str
    since: str | None
    last_handover: LastHandover | None
    open_alarms: list[AlarmOut]
    unacknowledged_alarms: list[AlarmOut]
    alarms_since: list[AlarmOut]
    events_since: list[dict[str, Any]]
    events_since_truncated: bool
    doors: list[Any] = []
    meters: list[Any] = []
    devices_offline: list[dict[str, Any]]
