"""Routes every gateway has, whatever areas it runs: health, metrics, the event log, audit, test events."""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway import __version__, gauges
from gateway.api.auth import Principal, require_role
from gateway.api.deps import context
from gateway.context import GatewayContext
from gateway.events import Emit
from gateway.store import StoreUnavailable, release_ride_along

#: test-event transactions (of 100) queued at a time: a commit of about 1,000 while the next is written
TEST_WINDOW = 20
#: the largest cursor SQLite can compare (a bigger int is a 422, not an OverflowError)
MAX_CURSOR = 2 ** 63 - 1

router = APIRouter()


class TestEventsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(1, ge=1, le=100_000)


class Page(BaseModel):
    items: list[dict[str, Any]]
    next: int


class TestEventsAccepted(BaseModel):
    accepted: int
    first_seq_at_least: int


@router.get("/health", responses={503: {"description": "degraded: the store cannot commit (the reason says why)"}})
async def health(ctx: GatewayContext = Depends(context)) -> JSONResponse:
    """``ok`` (200), or ``degraded`` (503, for a load balancer or a monitor) with the reason while the store
    cannot commit (a lock held by another process, an I/O error, a full disk); ``ok`` again by itself once
    writes commit."""
    uplink = ctx.uplink.state.as_dict() if ctx.uplink is not None else {"connected": False}
    trouble = ctx.store.condition()
    body: dict[str, Any] = {
        "status": "ok" if trouble is None else "degraded",
        "version": __version__,
        "gateway": ctx.config.gateway.id,
        "site": ctx.config.gateway.site,
        "uplink": uplink,
        "outbox": {"depth": ctx.events.outbox_depth, "max_events": ctx.events.max_outbox,
                   "shed": ctx.events.shed_total, **gauges.oldest_pending(ctx.events, ctx.clock.now())},
        "devices": ctx.devices.snapshot(),
        "tasks": ctx.supervisor.running(),
        "store": {"ok": trouble is None, "error": trouble[0] if trouble else None,
                  "since": trouble[1] if trouble else None},
    }
    if trouble is not None:
        body["reason"] = f"store: {trouble[0]} since {trouble[1]}"
    return JSONResponse(body, status_code=200 if trouble is None else 503,
                        headers={"Retry-After": "10"} if trouble is not None else None)


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
    """Send ``count`` gateway.test events through the whole path (store, outbox, MQTT) to central.

    202 only once every one of them is committed (then delivery to central is the uplink's promise); a
    store that cannot commit answers 503 ``storage_unavailable`` and the events committed before it are
    counted in the error's message."""
    first = ctx.events.last_seq() + 1
    await _record_test_events(ctx, body.count, who.name)
    return {"accepted": body.count, "first_seq_at_least": first}


@router.get("/audit", response_model=Page)
async def audit(after: int = Query(0, ge=0, le=MAX_CURSOR), limit: int = Query(100, ge=1, le=1000),
                who: Principal = Depends(require_role("admin")),
                ctx: GatewayContext = Depends(context)) -> dict[str, Any]:
    items = ctx.audit.query(after, limit)
    return {"items": items, "next": items[-1]["id"] if items else after}


async def _record_test_events(ctx: GatewayContext, count: int, by: str) -> None:
    """Record in transactions of 100, at most :data:`TEST_WINDOW` of them queued at a time, so they
    interleave with everything else, the writer still group-commits them, and the uplink sends one
    group while the next is being written (all queued at once, 20,000 events were one commit and the
    first left only after the last was on disk). Seq order is the order of ``n``. The last one runs in
    the request's own task, after the others: it carries the request's audit row, so a row saying 202
    is only ever written with the final chunk. If an earlier chunk fails, the row is written alone with
    the answer (503); if the last one fails after others committed, the row is released to be written
    alone too (the committed events are answered for)."""
    chunks = [(start, min(100, count - start)) for start in range(0, count, 100)]
    *head, (last, n_last) = chunks
    results = await _windowed([_test_write(ctx, start, n, count, by) for start, n in head])
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        done = sum(n for (_s, n), r in zip(head, results, strict=True) if not isinstance(r, BaseException))
        if not isinstance(failed[0], sqlite3.OperationalError):
            raise failed[0]
        raise StoreUnavailable(f"{done} of {count} test events committed, then: {failed[0]}") from failed[0]
    try:
        await ctx.events.transact(_test_batch(last, n_last, count, by))
    except BaseException as exc:
        if head:
            release_ride_along()
        if not isinstance(exc, sqlite3.OperationalError):
            raise
        raise StoreUnavailable(f"{count - n_last} of {count} test events committed, then: {exc}") from exc


async def _windowed(writes: list[Callable[[], Coroutine[Any, Any, None]]]) -> list[BaseException | None]:
    """Start ``writes`` in order with at most :data:`TEST_WINDOW` under way; each one's exception or None."""
    results: list[BaseException | None] = []
    running: collections.deque[asyncio.Task[None]] = collections.deque()
    try:
        for write in writes:
            if len(running) >= TEST_WINDOW:
                results.append(await _outcome(running.popleft()))
            running.append(asyncio.ensure_future(write()))
        while running:
            results.append(await _outcome(running.popleft()))
    finally:
        for task in running:   # the request was cancelled: as gather() would
            task.cancel()
    return results


def _test_write(ctx: GatewayContext, start: int, n: int, count: int, by: str) -> Callable[[], Coroutine[Any, Any, None]]:
    return lambda: ctx.events.transact(_test_batch(start, n, count, by))


async def _outcome(task: asyncio.Task[None]) -> BaseException | None:
    try:
        await task
    except Exception as exc:
        return exc
    return None


def _test_batch(start: int, n: int, count: int, by: str) -> Callable[[sqlite3.Connection, Emit], None]:
    def batch(conn: sqlite3.Connection, emit: Emit) -> None:
        for i in range(start, start + n):
            emit("gateway.test", {"n": i + 1, "of": count, "by": by})

    return batch
