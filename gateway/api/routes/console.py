"""The console's data routes under /api/v1: the live event stream, the latest events and a meter's chart data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from gateway.api.auth import Principal, require_role
from gateway.api.deps import area
from gateway.api.errors import ApiError
from gateway.console import ConsoleComponent
from gateway.console.stream import MAX_CLIENTS, parse_last_event_id

router = APIRouter(tags=["console"])
_readers = require_role("operator", "technician", "central")
_console = area(ConsoleComponent)


class MeterPoint(BaseModel):
    read_at: str | None
    values: dict[str, Any]


class MeterHistory(BaseModel):
    meter: str
    items: list[MeterPoint]


class RecentEvents(BaseModel):
    items: list[dict[str, Any]]


@router.get("/stream", include_in_schema=True)
async def stream(request: Request, who: Principal = Depends(_readers),
                 console: ConsoleComponent = Depends(_console)) -> StreamingResponse:
    """Server-Sent Events: every committed event the caller's role may see, live."""
    if console.hub.full:
        raise ApiError(429, "too_many_streams", f"{MAX_CLIENTS} live streams are open already")
    last = parse_last_event_id(request.headers.get("last-event-id") or request.query_params.get("after"))
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(console.stream(who.role, last), media_type="text/event-stream", headers=headers)


@router.get("/console/meters/{meter}/history", response_model=MeterHistory)
async def history(meter: str, limit: int = Query(48, ge=2, le=500), who: Principal = Depends(_readers),
                  console: ConsoleComponent = Depends(_console)) -> dict[str, Any]:
    """Recent readings of one meter (for the page's small consumption chart)."""
    return {"meter": meter, "items": console.meter_history(meter, limit)}


@router.get("/console/events", response_model=RecentEvents)
async def recent(limit: int = Query(40, ge=1, le=200), who: Principal = Depends(_readers),
                 console: ConsoleComponent = Depends(_console)) -> dict[str, Any]:
    """The newest events the caller's role may see on the stream (meter readings left out), newest first:
    what a page lists under "Latest events" right after it opens."""
    return {"items": console.recent_events(who.role, limit)}
