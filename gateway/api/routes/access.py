"""HTTP routes of the access area (``/api/v1``): cards, enrolments, doors.

Roles: the register is read by staff and central; technicians issue, change and enrol; the
duty room (operator) and technicians revoke; operators unlock doors; admin may do everything.

Handlers only translate: they get the running :class:`~gateway.access.AccessComponent` through
``Depends(area(...))``, call its parts, and let domain refusals (:mod:`gateway.access.errors`)
propagate; the app maps them to statuses in one table. The answer models pin today's JSON.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from gateway.access import AccessComponent
from gateway.access.errors import card_key
from gateway.access.models import (
    CardIn,
    CardOut,
    CardPage,
    CardPatch,
    DoorList,
    EnrolmentIn,
    EnrolmentOut,
    RelockIn,
    RelockOut,
    RevokeIn,
    UnlockIn,
    UnlockOut,
    VerificationOut,
)
from gateway.api.auth import Principal, require_role
from gateway.api.deps import area
from gateway.api.errors import error_responses
from gateway.errors import Invalid, NotFound

router = APIRouter(tags=["access"])
access = area(AccessComponent)
staff = require_role("technician", "operator")
#: who may read the register: staff, and central, which reconciles its own register against it
readers = require_role("technician", "operator", "central")
#: who may revoke: technicians, and the duty room (a card lost at night is revoked at once)
revokers = require_role("technician", "operator")
technician = require_role("technician")
operator = require_role("operator")


@router.get("/cards", response_model=CardPage)
async def list_cards(unit: str | None = Query(default=None, max_length=64),
                     after: str = Query(default="", max_length=300),
                     limit: int = Query(default=500, ge=1, le=5000),
                     who: Principal = Depends(readers), comp: AccessComponent = Depends(access)) -> dict[str, Any]:
    items = comp.cards.list_cards(unit, limit, after)
    return {"items": items, "rev": comp.cards.rev(), "next": items[-1]["card"] if len(items) == limit else None}


@router.post("/cards", status_code=201, response_model=CardOut, responses=error_responses(409))
async def post_card(body: CardIn, who: Principal = Depends(technician),
                    comp: AccessComponent = Depends(access)) -> dict[str, Any]:
    if body.status != "active":
        raise Invalid("invalid", "a new card is issued active; revoke it with /cards/{card}/revoke")
    return await comp.cards.issue_card(body, who.name, who.role)


@router.get("/cards/{card}", response_model=CardOut, responses=error_responses(404))
async def get_card(card: str, who: Principal = Depends(readers),
                   comp: AccessComponent = Depends(access)) -> dict[str, Any]:
    result = comp.cards.card_view(card_key(card))
    if result is None:
        raise NotFound("not_found", f"no card {card}")
    return result


@router.patch("/cards/{card}", response_model=CardOut, responses=error_responses(404, 409))
async def patch_card(card: str, body: CardPatch, who: Principal = Depends(technician),
                     comp: AccessComponent = Depends(access)) -> dict[str, Any]:
    return await comp.cards.update_card(card, body, who.name, who.role)


@router.post("/cards/{card}/revoke", response_model=CardOut, responses=error_responses(404))
async def revoke(card: str, body: RevokeIn, who: Principal = Depends(revokers),
                 comp: AccessComponent = Depends(access)) -> dict[str, Any]:
    return await comp.cards.revoke_card(card, body.reason, who.name, who.role, body.note)


@router.get("/cards/{card}/verification", response_model=VerificationOut, responses=error_responses(404))
async def verification(card: str, who: Principal = Depends(technician),
                       comp: AccessComponent = Depends(access)) -> dict[str, Any]:
    result = comp.cards.verification(card_key(card))
    if result is None:
        raise NotFound("not_found", f"no card {card}")
    return result


@router.post("/enrolments", status_code=201, response_model=EnrolmentOut, responses=error_responses(404, 409))
async def post_enrolment(body: EnrolmentIn, who: Principal = Depends(technician),
                         comp: AccessComponent = Depends(access)) -> dict[str, Any]:
    return await comp.enrolments.start_enrolment(body, who.name, who.role)


@router.get("/enrolments/{enrol_id}", response_model=EnrolmentOut, responses=error_responses(404))
async def get_enrolment(enrol_id: str, who: Principal = Depends(technician),
                        comp: AccessComponent = Depends(access)) -> dict[str, Any]:
    result = comp.enrolments.view(enrol_id)
    if result is None:
        raise NotFound("not_found", f"no enrolment {enrol_id}")
    return result


@router.delete("/enrolments/{enrol_id}", response_model=EnrolmentOut, responses=error_responses(404, 409))
async def delete_enrolment(enrol_id: str, who: Principal = Depends(technician),
                           comp: AccessComponent = Depends(access)) -> dict[str, Any]:
    return await comp.enrolments.cancel(enrol_id, who.name, who.role)


@router.post("/enrolments/{enrol_id}/cancel", response_model=EnrolmentOut, responses=error_responses(404, 409))
async def cancel_enrolment(enrol_id: str, who: Principal = Depends(technician),
                           comp: AccessComponent = Depends(access)) -> dict[str, Any]:
    return await comp.enrolments.cancel(enrol_id, who.name, who.role)


@router.get("/doors", response_model=DoorList)
async def doors(who: Principal = Depends(operator), comp: AccessComponent = Depends(access)) -> dict[str, Any]:
    return {"items": comp.doors.states()}


@router.post("/doors/{door_id}/unlock", response_model=UnlockOut, responses=error_responses(404, 409))
async def unlock(door_id: str, body: UnlockIn | None = None, who: Principal = Depends(operator),
                 comp: AccessComponent = Depends(access)) -> dict[str, Any]:
    return await comp.doors.unlock(door_id, (body or UnlockIn()).seconds, who.name, who.role)


@router.post("/doors/{door_id}/relock", response_model=RelockOut, responses=error_responses(404, 409))
async def relock(door_id: str, body: RelockIn, who: Principal = Depends(operator),
                 comp: AccessComponent = Depends(access)) -> dict[str, Any]:
    """End a door's release (a fire hold or an unlock), audited with the reason; 409 ``fire_active`` while the
    fire holding it is still active unless ``confirm``."""
    return await comp.doors.relock(door_id, body.reason, body.confirm, who.name, who.role)
