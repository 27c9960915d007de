"""Metering routes: meter states, valve commands, the readings pull (CONTRACT.md section 4).

Refusals are the area's domain errors (``not_found`` 404; ``no_valve``,
``meter_unreachable``, ``valve_not_confirmed`` 409; ``invalid_cursor`` 422), mapped to
statuses by the app's one table.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from gateway.api.auth import Principal, require_role
from gateway.api.deps import area
from gateway.api.errors import error_responses
from gateway.errors import Invalid
from gateway.metering import MeteringComponent
from gateway.metering.models import ValveBody

router = APIRouter(tags=["metering"])
readers = require_role("technician", "operator", "central")
writers = require_role("technician", "central")
central = require_role("central")
metering = area(MeteringComponent)

#: the largest cursor SQLite can compare
MAX_CURSOR = 2 ** 63


class Anomaly(BaseModel):
    kind: str
    since: str


class MeterView(BaseModel):
    id: str
    unit: str
    bus: str
    device_id: int
    profile: str
    poll_s: float
    protocol: str = "modbus"
    address: str | None = None
    online: bool | None
    state: str
    values: dict[str, Any]
    read_at: str | None
    anomalies: list[Anomaly]
    valve: str | None
    has_valve: bool
    misses: int
    last_error: str
    offline_since: str | None


class MeterList(BaseModel):
    items: list[MeterView]


class ValveState(BaseModel):
    meter: str
    state: str


class Reading(BaseModel):
    meter: str
    unit: str
    values: dict[str, Any]
    read_at: str


class ReadingPage(BaseModel):
    items: list[Reading]
    next: str


@router.get("/meters", response_model=MeterList)
async def get_meters(who: Principal = Depends(readers),
                     comp: MeteringComponent = Depends(metering)) -> dict[str, Any]:
    return {"items": comp.meter_states()}


@router.post("/meters/{meter_id}/valve", response_model=ValveState, responses=error_responses(404, 409))
async def post_valve(meter_id: str, body: ValveBody, who: Principal = Depends(writers),
                     comp: MeteringComponent = Depends(metering)) -> dict[str, Any]:
    return await comp.set_valve(meter_id, body.action, who.name, who.role)


@router.get("/readings", response_model=ReadingPage)
async def get_readings(after: str = Query(default="0", max_length=20),
                       limit: int = Query(default=500, ge=1, le=5000),
                       who: Principal = Depends(central),
                       comp: MeteringComponent = Depends(metering)) -> dict[str, Any]:
    if not (after.isascii() and after.isdigit()) or int(after) >= MAX_CURSOR:
        raise Invalid("invalid_cursor", "after must be a cursor returned as next")
    return comp.readings_after(int(after), limit)
