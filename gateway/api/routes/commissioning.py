"""Commissioning walk routes (docs/commissioning.md): start a run, see what is left, mark, finish, the report.

Technicians (and admins) start, mark and finish; operators and central read. Refusals are domain errors
mapped by the app's one table: ``not_found`` 404; ``run_finished``, ``step_done`` 409;
``done_not_by_hand``, ``reason_required``, ``empty_scope``, ``unknown_building``, ``unknown_device``
422. The report answers HTML made for print (``?lang=zh|en``).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from gateway.api.auth import Principal, require_role
from gateway.api.deps import area
from gateway.api.errors import error_responses
from gateway.commissioning import CommissioningComponent
from gateway.commissioning.models import MAX_LIST, FinishBody, MarkBody, StartBody

router = APIRouter(tags=["commissioning"])
walkers = require_role("technician")
readers = require_role("technician", "operator", "central")
commissioning = area(CommissioningComponent)

RunId = Path(ge=1, le=2 ** 63 - 1)
#: the report is one self-contained page without scripts: inline styles only, nothing else loads
REPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class Counts(BaseModel):
    done: int
    failed: int
    na: int
    pending: int


class Summary(BaseModel):
    result: str                       # accepted | failed | incomplete
    devices: int
    steps: Counts
    buildings: dict[str, Counts]


class Scope(BaseModel):
    kind: str
    buildings: list[str]
    devices: list[str]


class RunItem(BaseModel):
    id: int
    scope: Scope
    state: str                        # open | finished
    started_at: str
    started_by: str
    note: str
    finished_at: str | None
    finished_by: str | None
    finish_note: str
    summary: Summary


class RunList(BaseModel):
    items: list[RunItem]


class StepView(BaseModel):
    step: str
    status: str                       # pending | done | failed | na
    at: str | None
    by: str | None
    reason: str
    seen: dict[str, Any]


class DeviceView(BaseModel):
    device: str
    kind: str                         # door | reader | meter | zone
    name: str
    steps: list[StepView]


class BuildingView(BaseModel):
    building: str
    done: int
    failed: int
    na: int
    pending: int
    devices: list[DeviceView]


class RunView(RunItem):
    site: str
    gateway: str
    buildings: list[BuildingView]


class MarkedStep(StepView):
    device: str
    kind: str
    building: str
    name: str


@router.post("/commissioning", response_model=RunView, status_code=201, responses=error_responses(422))
async def start_run(body: StartBody, who: Principal = Depends(walkers),
                    comp: CommissioningComponent = Depends(commissioning)) -> dict[str, Any]:
    """Start a walk over the whole site, some buildings or named devices."""
    return await comp.walk.start(body, who.name, who.role)


@router.get("/commissioning", response_model=RunList)
async def list_runs(limit: int = Query(default=50, ge=1, le=MAX_LIST), who: Principal = Depends(readers),
                    comp: CommissioningComponent = Depends(commissioning)) -> dict[str, Any]:
    """Walks, newest first, with their summaries (live for open ones)."""
    return {"items": comp.walk.runs(limit)}


@router.get("/commissioning/{run_id}", response_model=RunView, responses=error_responses(404))
async def get_run(run_id: int = RunId, who: Principal = Depends(readers),
                  comp: CommissioningComponent = Depends(commissioning)) -> dict[str, Any]:
    """One walk: every device's steps by building, what was seen and when, what is left."""
    return comp.walk.view(run_id)


@router.post("/commissioning/{run_id}/steps", response_model=MarkedStep, responses=error_responses(404, 409, 422))
async def mark_step(body: MarkBody, run_id: int = RunId, who: Principal = Depends(walkers),
                    comp: CommissioningComponent = Depends(commissioning)) -> dict[str, Any]:
    """Mark a step not applicable or failed, with a reason (``done`` is only ever seen by the gateway)."""
    return await comp.walk.mark(run_id, body, who.name, who.role)


@router.post("/commissioning/{run_id}/finish", response_model=RunView, responses=error_responses(404, 409))
async def finish_run(body: FinishBody, run_id: int = RunId, who: Principal = Depends(walkers),
                     comp: CommissioningComponent = Depends(commissioning)) -> dict[str, Any]:
    """Finish the walk: store the printed report and send ``site.commissioned`` to central."""
    return await comp.walk.finish(run_id, body, who.name, who.role)


@router.get("/commissioning/{run_id}/report", response_class=HTMLResponse, responses={
    **error_responses(404), 200: {"content": {"text/html": {"schema": {"type": "string"}}}}})
async def get_report(run_id: int = RunId, lang: Literal["zh", "en"] = Query(default="zh"),
                     who: Principal = Depends(readers),
                     comp: CommissioningComponent = Depends(commissioning)) -> HTMLResponse:
    """The acceptance report, HTML made for print (a draft while the walk is open)."""
    return HTMLResponse(comp.walk.report(run_id, lang), headers=REPORT_HEADERS)
