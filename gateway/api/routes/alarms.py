"""HTTP routes of the alarms area: the alarm list, one alarm, acknowledgement (operators).

Refusals are domain errors from the area (``AlarmNotFound`` -> 404 ``not_found``,
``AlarmAlreadyAcknowledged`` -> 409 ``already_acknowledged``, ``UnknownState`` -> 422
``bad_state``), mapped to statuses in one table by the app.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query

from gateway.alarms import AlarmNotFound, AlarmsComponent
from gateway.alarms.models import AckIn, AlarmList, AlarmOut
from gateway.api.auth import Principal, require_role
from gateway.api.deps import area
from gateway.api.errors import error_responses

router = APIRouter(tags=["alarms"])
operator = require_role("operator")
#: central reconciles its alarm list with the gateway's (issue 15); acknowledging stays with the duty room
readers = require_role("operator", "central")
alarms = area(AlarmsComponent)

#: an alarm id is a SQLite rowid: a positive int64 (a bigger one is a 422, not an OverflowError)
ALARM_ID = Path(ge=1, le=2 ** 63 - 1)


@router.get("/alarms", response_model=AlarmList, response_model_exclude_unset=True)
async def list_alarms(state: str = Query(default="open", max_length=20),
                      limit: int = Query(default=500, ge=1, le=5000),
                      p: Principal = Depends(readers),
                      comp: AlarmsComponent = Depends(alarms)) -> dict[str, Any]:
    return {"items": comp.list_alarms(state, limit)}


@router.get("/alarms/{alarm_id}", response_model=AlarmOut, response_model_exclude_unset=True, responses=error_responses(404))
async def get_alarm(alarm_id: int = ALARM_ID, p: Principal = Depends(readers),
                    comp: AlarmsComponent = Depends(alarms)) -> dict[str, Any]:
    alarm = comp.get_alarm(alarm_id)
    if alarm is None:
        raise AlarmNotFound(alarm_id)
    return alarm


@router.post("/alarms/{alarm_id}/ack", response_model=AlarmOut, response_model_exclude_unset=True, responses=error_responses(404, 409))
async def acknowledge(body: AckIn, alarm_id: int = ALARM_ID, p: Principal = Depends(operator),
                      comp: AlarmsComponent = Depends(alarms)) -> dict[str, Any]:
    return await comp.acknowledge(alarm_id, p.name, p.role, body.note)
