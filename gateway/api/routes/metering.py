"""Metering routes: meter states, valve commands, the readings pull, the quarter's billing (CONTRACT.md section 4).

Refusals are the area's domain errors (``not_found`` 404; ``no_valve``,
``restrict_unsupported``, ``meter_unreachable``, ``valve_not_confirmed`` 409;
``invalid_cursor``, ``invalid_time``, ``invalid_range``, ``too_many_filters``,
``invalid_quarter`` 422), mapped to statuses by the app's one table. The billing report
answers CSV instead of JSON to ``Accept: text/csv`` (a spreadsheet for the billing clerk).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, tzinfo
from typing import Any

import pydantic_core
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from gateway.api.auth import Principal, require_role
from gateway.api.deps import area
from gateway.api.errors import error_responses
from gateway.errors import Invalid
from gateway.events import format_ts
from gateway.metering import MeteringComponent
from gateway.metering.models import ValveBody
from gateway.metering.rules import parse_quarter

router = APIRouter(tags=["metering"])
readers = require_role("technician", "operator", "central")
writers = require_role("technician", "central")
central = require_role("central")
billing_roles = require_role("central", "admin")
metering = area(MeteringComponent)

#: the largest cursor SQLite can compare
MAX_CURSOR = 2 ** 63
#: meters or units one pull may name
MAX_FILTER_VALUES = 100


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
    valve_states: list[str]
    valve_read: str | None
    valve_mismatch: str | None
    faults: list[Anomaly]
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


class BillingItem(BaseModel):
    meter: str
    unit: str
    status: str                       # read | missing
    reason: str | None                # why missing (rules.missing_reason)
    read_at: str | None
    values: dict[str, Any] | None
    last_read_at: str | None


class BillingReport(BaseModel):
    quarter: str
    window: dict[str, str]            # {"from", "to"}: the billing window, RFC 3339 UTC
    read: int
    missing: int
    items: list[BillingItem]


@router.get("/meters", response_model=MeterList)
async def get_meters(who: Principal = Depends(readers),
                     comp: MeteringComponent = Depends(metering)) -> dict[str, Any]:
    return {"items": comp.meter_states()}


@router.post("/meters/{meter_id}/valve", response_model=ValveState, responses=error_responses(404, 409))
async def post_valve(meter_id: str, body: ValveBody, who: Principal = Depends(writers),
                     comp: MeteringComponent = Depends(metering)) -> dict[str, Any]:
    return await comp.set_valve(meter_id, body.action, who.name, who.role)


@router.get("/readings", response_model=ReadingPage, responses=error_responses(422))
async def get_readings(after: str = Query(default="0", max_length=20),
                       limit: int = Query(default=500, ge=1, le=5000),
                       meter: list[str] | None = Query(default=None),
                       unit: list[str] | None = Query(default=None),
                       start: str | None = Query(default=None, alias="from", max_length=40),
                       end: str | None = Query(default=None, alias="to", max_length=40),
                       who: Principal = Depends(central),
                       comp: MeteringComponent = Depends(metering)) -> Response:
    """Readings after a cursor, optionally only some meters / units / a time range ([from, to)).

    The page is written straight to JSON (pydantic's serializer, the same bytes as through ``ReadingPage``):
    validating 5,000 ``Reading`` models a page of rows the register just built cost more than the query."""
    if not (after.isascii() and after.isdigit()) or int(after) >= MAX_CURSOR:
        raise Invalid("invalid_cursor", "after must be a cursor returned as next")
    if len(meter or []) > MAX_FILTER_VALUES or len(unit or []) > MAX_FILTER_VALUES:
        raise Invalid("too_many_filters", f"name at most {MAX_FILTER_VALUES} meters and {MAX_FILTER_VALUES} units")
    tz = comp.ctx.clock.tz
    lo, hi = _bound("from", start, tz), _bound("to", end, tz)
    if lo and hi and lo >= hi:
        raise Invalid("invalid_range", "from must be before to")
    page = comp.readings_after(int(after), limit, meters=meter, units=unit, start=lo, end=hi)
    return Response(pydantic_core.to_json(page), media_type="application/json")


def _bound(name: str, text: str | None, tz: tzinfo) -> str | None:
    """A time bound as stored (RFC 3339 UTC): RFC 3339 with Z/offset, or a site-local date or date-time."""
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Invalid("invalid_time", f"{name} must be a time like 2026-12-25T00:00:00+08:00, "
                      "2026-12-24T16:00:00Z or a date 2026-12-25 (site time)") from None
    return format_ts(ts if ts.tzinfo is not None else ts.replace(tzinfo=tz))


@router.get("/billing", response_model=BillingReport, responses={
    **error_responses(422), 200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
async def get_billing(request: Request, quarter: str | None = Query(default=None, max_length=16),
                      who: Principal = Depends(billing_roles),
                      comp: MeteringComponent = Depends(metering)) -> Any:
    """Every meter's quarter-end billing reading, or why it has none; CSV to ``Accept: text/csv``."""
    period = parse_quarter(quarter or "")
    if period is None:
        raise Invalid("invalid_quarter", "quarter must be a year and quarter like 2026Q4 (Q1..Q4)", quarter=quarter)
    report = comp.billing_report(period)
    if "text/csv" in request.headers.get("accept", ""):
        return Response(billing_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="billing-{period}.csv"'})
    return report


def billing_csv(report: dict[str, Any]) -> str:
    """The report as CSV: one row per meter, total_m3 in its own column, all values as JSON."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["quarter", "meter", "unit", "status", "reason", "read_at", "total_m3", "values", "last_read_at"])
    for i in report["items"]:
        values = i["values"] or {}
        w.writerow([report["quarter"], _cell(i["meter"]), _cell(i["unit"]), i["status"], i["reason"] or "",
                    i["read_at"] or "", values.get("total_m3", ""),
                    json.dumps(values, separators=(",", ":")) if i["values"] is not None else "",
                    i["last_read_at"] or ""])
    return out.getvalue()


def _cell(text: str) -> str:
    """No formula injection: a spreadsheet would run a cell starting with = + - @ (a unit named by central)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
