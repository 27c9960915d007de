"""Routes every gateway has, whatever areas it runs: health, metrics, the event log, audit, test events."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway import __version__, gauges
from gateway.api.auth import Principal, require_role
from gateway.api.deps import context
from gateway.context import GatewayContext
from gateway.events import Emit

#: the largest cursor SQLite can compare (a bigger int is a 422, not an OverflowError)
MAX_CURSOR = 2 ** 63 - 1

router = APIRouter()
_background: set[asyncio.Task[Any]] = set()


class TestEventsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(1, ge=1, le=100_000)


class Page(BaseModel):
    items: list[dict[str, Any]]
    next: int


class TestEventsAccepted(BaseModel):
    accepted: int
    first_seq_at_least: int


@router.get("/health")
async def health(ctx: GatewayContext = Depends(context)) -> dict[str, Any]:
    uplink = ctx.uplink.state.as_dict() if ctx.uplink is not None else {"connected": False}
    return {
        "status": "ok",
        "version": __version__,
        "gateway": ctx.config.gateway.id,
        "site": ctx.config.gateway.site,
        "uplink": uplink,
        "outbox": {"depth": ctx.events.outbox_depth, "max_events": ctx.events.max_outbox,
                   "shed": ctx.events.shed_total, **gauges.oldest_pending(ctx.events, ctx.clock.now())},
        "devices": ctx.devices.snapshot(),
        "tasks": ctx.supervisor.running(),
    }


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(ctx: GatewayContext = Depends(context)) -> str:
    return ctx.metrics.render()


@router.get("/events", response_model=Page)
async def events(after: int = Query(0, ge=0, le=MAX_CURSOR), limit: int = Query(100, ge=1, le=1000),
                 type: list[str] | None = Query(None),
                 who: Principal = Depends(require_role("central", "operator")),
                 ctx: GatewayContext = Depends(context)) -> dict[str, Any]:
    items = [e.envelope() for e in ctx.events.query(after, limit, type)]
    return {"items": items, "next": items[-1]["seq"] if items else after}


@router.post("/test-events", status_code=202, response_model=TestEventsAccepted)
async def test_events(body: TestEventsBody, who: Principal = Depends(require_role("admin")),
                      ctx: GatewayContext = Depends(context)) -> dict[str, Any]:
    """Send ``count`` gateway.test events through the whole path (store, outbox, MQTT) to central."""
    first = ctx.events.last_seq() + 1
    task = asyncio.get_running_loop().create_task(_record_test_events(ctx, body.count, who.name))
    _background.add(task)
    task.add_done_callback(_background.discard)
    return {"accepted": body.count, "first_seq_at_least": first}


@router.get("/audit", response_model=Page)
async def audit(after: int = Query(0, ge=0, le=MAX_CURSOR), limit: int = Query(100, ge=1, le=1000),
                who: Principal = Depends(require_role("admin")),
                ctx: GatewayContext = Depends(context)) -> dict[str, Any]:
    items = ctx.audit.query(after, limit)
    return {"items": items, "next": items[-1]["id"] if items else after}


async def _record_test_events(ctx: GatewayContext, count: int, by: str) -> None:
    """Record in small transactions so the burst interleaves with everything else."""
    done = 0
    while done < count:
        n = min(100, count - done)
        await ctx.events.transact(_test_batch(done, n, count, by))
        done += n


def _test_batch(start: int, n: int, count: int, by: str) -> Callable[[sqlite3.Connection, Emit], None]:
    def batch(conn: sqlite3.Connection, emit: Emit) -> None:
        for i in range(start, start + n):
            emit("gateway.test", {"n": i + 1, "of": count, "by": by})

    return batch
