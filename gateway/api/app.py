"""The HTTP API (FastAPI), served by uvicorn inside the daemon's loop.

Every 4xx has the shape ``{"error": {"code", "message"}}``; bad input is never a
5xx. Every state-changing request that passed authentication leaves an audit row
(who, role, method and path, status), on top of the detailed rows the
components write with the change itself.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from gateway import __version__
from gateway.api.addresses import networks
from gateway.api.auth import AuthThrottle, TokenBook
from gateway.api.errors import ERROR_SCHEMA, ApiError, error_responses, status_of
from gateway.api.guard import Guard
from gateway.api.routes import area_routers, core, pages
from gateway.api.sessions import SessionBook
from gateway.context import GatewayContext
from gateway.errors import DomainError
from gateway.store import RideAlong, ride_along

log = logging.getLogger(__name__)

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def create_app(ctx: GatewayContext) -> FastAPI:
    app = FastAPI(title="estate-gateway", version=__version__, docs_url="/api/docs",
                  openapi_url="/api/v1/openapi.json", redoc_url=None)
    app.state.ctx = ctx
    api = ctx.config.api
    sessions = SessionBook(ctx.store, api.session_idle_h * 3600)
    app.state.tokens = TokenBook(api.tokens, sessions)
    sessions.load(app.state.tokens.hashes)  # sessions whose token left the config end here
    app.state.auth_throttle = AuthThrottle(on_metric=ctx.metrics.inc)
    app.state.trusted_proxies = networks(api.trusted_proxies)
    _install_error_handlers(app)
    _install_audit(app, ctx)
    app.include_router(core.router, prefix="/api/v1")
    app.include_router(_root_router(ctx))
    routers = area_routers()
    for name in ctx.components:
        for router in routers.get(name, ()):
            app.include_router(router, prefix="/api/v1")
    if "console" in ctx.components:
        app.include_router(pages.router)
    else:
        app.include_router(_placeholder_console())
    _install_openapi(app)
    # outermost of our middleware: the token and the body's size are checked before the body is read
    app.add_middleware(Guard, max_body=api.max_body_bytes)
    return app


def _install_openapi(app: FastAPI) -> None:
    """The schema tells the truth about errors: 401/403/429 on every route that needs a token (FastAPI
    documents the bearer scheme and its roles from ``require_role``), 503 on writes, and the one error
    shape for every 4xx."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for item in schema.get("paths", {}).values():
            for method, op in item.items():
                responses = op.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = error_responses(422)[422]
                if "requestBody" in op:  # a body that is not JSON at all, or too large
                    responses.setdefault("400", error_responses(400)[400])
                    responses.setdefault("413", error_responses(413)[413])
                if not op.get("security"):
                    continue
                extra = (401, 403, 429, 503) if method.upper() in WRITE_METHODS else (401, 403, 429)
                for status, body in error_responses(*extra).items():
                    responses.setdefault(str(status), body)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Error"] = ERROR_SCHEMA
        # FastAPI's own 422 body is never sent (ours replaces it)
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _storage_unavailable(message: str) -> JSONResponse:
    """503: the disk refused a write (full, I/O error): not the client's fault, not a crash; retry later."""
    response = _error(503, "storage_unavailable", message)
    response.headers["Retry-After"] = "30"
    return response


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return JSONResponse(exc.body(), status_code=exc.status, headers={**headers, **exc.headers})

    @app.exception_handler(DomainError)
    async def refused(request: Request, exc: DomainError) -> JSONResponse:
        body = {"error": {"code": exc.code, "message": exc.message, **exc.extra}}
        return JSONResponse(body, status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
            for e in exc.errors()
        )
        return _error(422, "invalid", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        if exc.status_code == 413:  # a chunked body grew past the cap (gateway.api.guard): close, do not drain
            cap = request.scope.get("starlette.max_body_size", "the allowed")
            response = _error(413, "body_too_large", f"the request body is larger than {cap} bytes")
            response.headers["Connection"] = "close"
            return response
        return _error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(ClientDisconnect)
    async def gone(request: Request, exc: ClientDisconnect) -> Response:
        # the client left (or its connection was closed at the body deadline) while its body was read:
        # nobody hears an answer, and it is no crash (counted by gateway.api.limits, never one line each)
        return Response(status_code=400)

    @app.exception_handler(sqlite3.OperationalError)
    async def storage(request: Request, exc: sqlite3.OperationalError) -> JSONResponse:
        # disk full, I/O error: not the client's fault, and not a crash either; retry later
        log.error("HTTP %s %s: storage error: %s", request.method, request.url.path, exc)
        return _storage_unavailable(f"the local store refused the write: {exc}")

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("HTTP %s %s failed", request.method, request.url.path)
        return _error(500, "internal", f"{type(exc).__name__}")


def _install_audit(app: FastAPI, ctx: GatewayContext) -> None:
    """Every state-changing request by a known token leaves one audit row, committed with its action.

    Why a ride-along row (:data:`gateway.store.ride_along`) and not a row written after the response:
    written afterwards, an action could commit and its row fail (a full disk) -- a change nobody
    answers for -- and the answer could only be a 503 saying so. Instead the middleware hands the
    store a pending row before the route runs; the store commits it in the same transaction as the
    request's first write. Either both are on disk or neither is. A request that wrote nothing (a
    refusal, a 4xx) gets its row written alone afterwards, with the status, as before (a row committed
    with the action carries the status the route answers on success); a request whose
    carrying transaction failed changed nothing, so no row claims it did (the failure is logged)."""
    book: TokenBook = app.state.tokens
    app.add_middleware(_RouteOwnsRideAlong)  # added first: innermost, in the task that runs the route

    @app.middleware("http")
    async def audit_writes(request: Request, call_next: Any) -> Any:
        who = _writer_of(request, book)
        emitted: list[Any] = []
        path, action = request.url.path, f"{request.method} {request.url.path}"
        ride = None
        if who is not None:
            def row(conn: sqlite3.Connection) -> None:
                # in the action's transaction the answer is not known yet: the route's success status
                status = getattr(request.scope.get("route"), "status_code", None) or 200
                # [:] = : a batch the store retries runs this again; only the committed attempt counts
                emitted[:] = [ctx.audit.insert(conn, who.name, who.role, action, path, {"status": status})]

            ride = RideAlong(row)
        reset = ride_along.set(ride)
        try:
            response = await call_next(request)
        finally:
            ride_along.reset(reset)
        ctx.metrics.inc("http_requests_total", {"status": f"{response.status_code // 100}xx"})
        if ride is None or who is None or response.status_code in (401, 403):
            return response
        if ride.committed:
            ctx.events.dispatch(emitted)
            return response
        if ride.failed:
            log.error("HTTP %s: its transaction failed (answered %d): neither the action nor its audit row "
                      "was stored", action, response.status_code)
            return response
        ride.failed = True  # no later write may carry it now
        try:
            await ctx.audit.record(who.name, who.role, action, path, {"status": response.status_code})
        except sqlite3.OperationalError as exc:  # a refusal that changed nothing, unrecorded: say so (503)
            log.error("HTTP %s: answered %d, changed nothing, but its audit row was not stored: %s", action,
                      response.status_code, exc)
            return _storage_unavailable(f"refused ({response.status_code}), and the audit row of the refusal "
                                        f"could not be stored ({exc}); nothing was changed")
        return response


class _RouteOwnsRideAlong:
    """Pure ASGI, innermost: the task that runs the route owns the request's pending audit row.

    ``call_next`` runs the app in a task of its own, so the middleware cannot name the owner itself;
    tasks the route starts inherit the row but never carry it (:data:`gateway.store.ride_along`)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (ride := ride_along.get()) is not None:
            ride.claim()
        await self.app(scope, receive, send)


def _writer_of(request: Request, book: TokenBook) -> Any:
    """Who makes this state-changing request (None: not a write, or no known token)."""
    if request.method not in WRITE_METHODS:
        return None
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get("egw_session", "")
    return book.lookup(token) if token else None


def _placeholder_console() -> APIRouter:
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return ("<!doctype html><meta charset=utf-8><title>estate-gateway</title>"
                "<h1>estate-gateway</h1><p>API: <a href=/api/docs>/api/docs</a>, "
                "<a href=/api/v1/health>health</a>, <a href=/metrics>metrics</a></p>")

    return router


def _root_router(ctx: GatewayContext) -> APIRouter:
    """Prometheus scrapes /metrics at the root by convention; no token needed."""
    router = APIRouter()

    @router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
    async def metrics() -> str:
        return ctx.metrics.render()

    return router
