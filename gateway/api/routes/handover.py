"""HTTP routes of the shift handover (mounted with the alarms area, whose duty room hands over).

``GET /handover`` is the report gathered from every area; ``POST /handover`` records one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from gateway.alarms import AlarmsComponent
from gateway.alarms.models import HandoverIn, HandoverOut, HandoverReport
from gateway.api.auth import Principal, require_role
from gateway.api.deps import area

router = APIRouter(tags=["alarms"])
operator = require_role("operator")
alarms = area(AlarmsComponent)


@router.get("/handover", response_model=HandoverReport, response_model_exclude_unset=True)
async def handover_report(p: Principal = Depends(operator),
                          comp: AlarmsComponent = Depends(alarms)) -> dict[str, Any]:
    return comp.handover.report()


@router.post("/handover", status_code=201, response_model=HandoverOut, response_model_exclude_unset=True)
async def record_handover(body: HandoverIn, p: Principal = Depends(operator),
                          comp: AlarmsComponent = Depends(alarms)) -> dict[str, Any]:
    return await comp.handover.record(body, p.name, p.role)
