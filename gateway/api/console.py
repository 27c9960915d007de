"""The operator console and technician pages, served by the gateway itself.

Why it looks like this:

* No build step and no CDN (duty rooms are often cut off from the internet):
  the page is an HTML shell rendered here from ``templates/`` with labels from
  :mod:`gateway.api.i18n`, plus one plain JS file and one CSS file from
  ``static/`` that fetch the JSON routes the other components already serve.
* Login posts the token once; it is then kept in an HttpOnly, SameSite=Strict
  cookie (``egw_session``) that :mod:`gateway.api.auth` accepts like a bearer
  token. Writes from the page carry ``X-CSRF-Token`` (a one-way derivation of
  the session token, see :func:`gateway.api.auth.csrf_for`), checked by auth.
* What a role cannot do is not rendered at all: an operator's page has no
  enrolment form, a technician's has no door board or unlock button (and the
  API answers 403 if someone tries anyway).
* Live updates come over Server-Sent Events (``GET /api/v1/stream``) fed by
  ``ctx.events.subscribe``: each committed event is pushed to every connected
  page whose role may see its type, with ``id: seq`` so a reconnecting browser
  replays what it missed (``Last-Event-ID``) instead of losing an alarm.
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
import logging
import re
import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse

from gateway.api.auth import AuthThrottle, Principal, TokenBook, client_address, csrf_for, require_role
from gateway.api.errors import ApiError
from gateway.api.i18n import LANGS, catalogue, pick_lang, t
from gateway.context import GatewayContext
from gateway.events import Event

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
SESSION_COOKIE = "egw_session"
LANG_COOKIE = "egw_lang"

#: static files served, by name -> media type (a whitelist: no path ever reaches the filesystem)
STATIC_FILES = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

#: event type prefixes each role's page receives on the stream ("" = everything)
STREAM_TYPES: dict[str, tuple[str, ...]] = {
    "operator": ("alarm.", "door.", "device.", "access.", "gateway.", "shift.", "meter.", "card.revoked"),
    "technician": ("card.", "access.", "meter.", "device."),
    "central": ("meter.", "device."),
    "admin": ("",),
}

#: which parts of the page each role gets (admin gets all)
VIEWS: dict[str, tuple[str, ...]] = {
    "operator": ("duty", "meters"),
    "technician": ("tech", "meters"),
    "central": ("meters",),
    "admin": ("duty", "tech", "meters"),
}

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; media-src 'self' data:; frame-ancestors 'none'; "
                                "base-uri 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

QUEUE_SIZE = 1000
#: open streams at most (a duty room has a handful of pages; this bounds memory if something loops)
MAX_CLIENTS = 200
KEEPALIVE_S = 15.0
REPLAY_MAX = 500
_PLACEHOLDER = re.compile(r"\{\{(!?)\s*([a-zA-Z0-9_.]+)\s*\}\}")


# ---------------------------------------------------------------------- small pure helpers
def render(template: str, values: dict[str, Any], lang: str) -> str:
    """Fill ``{{ name }}`` from ``values`` or the label catalogue, HTML-escaped; ``{{! name }}`` is raw HTML.

    A dozen lines instead of a template engine: the pages have no loops on the
    server (lists are drawn by the JS from JSON), only labels and sections.
    """

    def sub(m: re.Match[str]) -> str:
        raw, key = m.group(1) == "!", m.group(2)
        value = values[key] if key in values else t(lang, key)
        return str(value) if raw else html.escape(str(value), quote=True)

    return _PLACEHOLDER.sub(sub, template)


@functools.lru_cache(maxsize=16)
def load_template(name: str) -> str:
    """Templates ship in the package and do not change while the daemon runs: read each once."""
    return (TEMPLATES / name).read_text(encoding="utf-8")


def parse_form(body: bytes, max_len: int = 8192) -> dict[str, str]:
    """An urlencoded form body -> first value per field; garbage gives {} (never raises)."""
    if len(body) > max_len:
        return {}
    try:
        text = body.decode("utf-8")
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    out: dict[str, str] = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


def parse_last_event_id(value: str | None) -> int | None:
    """The ``Last-Event-ID`` a reconnecting EventSource sends (our seq), or None if absent or not a seq."""
    if not value:
        return None
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def visible(role: str, type_: str) -> bool:
    """May a page of ``role`` see events of ``type_``?"""
    return any(type_.startswith(p) for p in STREAM_TYPES.get(role, ()))


def sse_frame(ev: Event) -> str:
    """One event as an SSE message; ``id`` is the seq, so a reconnect resumes after it."""
    return f"id: {ev.seq}\nevent: ev\ndata: {ev.to_json()}\n\n"


def same_origin(request: Request) -> bool:
    """A form post to /login or /logout must come from our own page (login CSRF).

    Browsers say where a request comes from in ``Sec-Fetch-Site``; older ones only in ``Origin``.
    Clients that send neither (scripts, tests) are not browsers and cannot be tricked into posting.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urllib.parse.urlsplit(origin).netloc == host


@dataclass(frozen=True)
class _Frame:
    """An event ready to send: encoded once, however many pages receive it."""

    seq: int
    text: str


@dataclass(eq=False)
class _Client:
    role: str
    queue: asyncio.Queue[_Frame | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflow: bool = False


# ---------------------------------------------------------------------- the component
class ConsoleComponent:
    """The web console: pages at ``/`` (``page_router``) and the live stream under /api/v1."""

    name = "console"
    migrations: list[tuple[int, str]] = []

    def __init__(self) -> None:
        self.ctx: GatewayContext | None = None
        self._clients: set[_Client] = set()
        self._closing = False
        self._unsubscribe: Any = None
        self.page_router = self._pages()

    # ------------------------------------------------------------------ lifecycle
    async def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self._closing = False
        self._unsubscribe = ctx.events.subscribe(self._on_event)

    async def stop(self) -> None:
        """End every open stream so the HTTP server can stop without waiting for browsers."""
        self._closing = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for client in list(self._clients):
            _drain(client.queue)
            client.queue.put_nowait(None)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def _on_event(self, ev: Event) -> None:
        """Runs on the loop after each commit: hand the event to every page that may see it."""
        frame: _Frame | None = None
        for client in list(self._clients):
            if client.overflow or not visible(client.role, ev.type):
                continue
            if frame is None:
                frame = _Frame(ev.seq, sse_frame(ev))
            try:
                client.queue.put_nowait(frame)
            except asyncio.QueueFull:
                # a stalled browser: tell it to reload its lists rather than grow without bound
                client.overflow = True
        if self.ctx is not None and self._clients:
            self.ctx.metrics.inc("console_events_pushed_total")

    # ------------------------------------------------------------------ /api/v1 routes
    def routes(self) -> APIRouter:
        r = APIRouter(tags=["console"])
        any_role = require_role("operator", "technician", "central")
        readers = require_role("operator", "technician", "central")

        @r.get("/stream", include_in_schema=True)
        async def stream(request: Request, who: Principal = Depends(any_role)) -> StreamingResponse:
            """Server-Sent Events: every committed event the caller's role may see, live."""
            if len(self._clients) >= MAX_CLIENTS:
                raise ApiError(429, "too_many_streams", f"{MAX_CLIENTS} live streams are open already")
            last = parse_last_event_id(request.headers.get("last-event-id")
                                       or request.query_params.get("after"))
            headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
            return StreamingResponse(self._stream(who.role, last), media_type="text/event-stream", headers=headers)

        @r.get("/console/meters/{meter}/history")
        async def history(meter: str, limit: int = Query(48, ge=2, le=500),
                          who: Principal = Depends(readers)) -> dict[str, Any]:
            """Recent readings of one meter (for the page's small consumption chart)."""
            return {"meter": meter, "items": self.meter_history(meter, limit)}

        return r

    async def _stream(self, role: str, last_seq: int | None) -> AsyncIterator[str]:
        client = _Client(role)
        self._clients.add(client)
        self._gauge()
        try:
            yield "retry: 2000\n: estate-gateway live events\n\n"
            sent = 0
            if last_seq is not None:
                replay, complete = self._replay(role, last_seq)
                if replay:
                    yield "".join(sse_frame(ev) for ev in replay)
                    sent = replay[-1].seq
                if not complete:
                    yield "event: resync\ndata: {}\n\n"
            while not self._closing:
                if client.overflow:
                    _drain(client.queue)
                    client.overflow = False
                    yield "event: resync\ndata: {}\n\n"
                try:
                    first = await asyncio.wait_for(client.queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                # whatever else is already queued goes out in the same write (bursts cost one send, not n)
                batch, closing = _take_ready(client.queue, first)
                chunk = "".join(f.text for f in batch if f.seq > sent)
                if chunk:
                    yield chunk
                if closing:
                    break
        finally:
            self._clients.discard(client)
            self._gauge()

    def _gauge(self) -> None:
        if self.ctx is not None:
            self.ctx.metrics.set("console_streams", len(self._clients))

    def _replay(self, role: str, after: int) -> tuple[list[Event], bool]:
        """Events a reconnecting page missed; False when there were too many (it should reload instead)."""
        assert self.ctx is not None
        out: list[Event] = []
        cursor = after
        while len(out) < REPLAY_MAX:
            batch = self.ctx.events.query(cursor, 1000)
            if not batch:
                return out, True
            cursor = batch[-1].seq
            out.extend(ev for ev in batch if visible(role, ev.type))
        return out[:REPLAY_MAX], False

    def meter_history(self, meter: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` readings of a meter, oldest first.

        From the metering component's ``readings`` table (kept for billing pulls, indexed by
        meter); from the event log when that table does not exist.
        """
        assert self.ctx is not None
        try:
            rows = self.ctx.store.query("SELECT read_at, vals FROM readings WHERE meter=? ORDER BY id DESC LIMIT ?",
                                        (meter, limit))
            pairs = [(r["read_at"], r["vals"]) for r in rows]
        except sqlite3.OperationalError:
            rows = self.ctx.store.query(
                "SELECT ts, data FROM events WHERE type='meter.reading' AND json_extract(data, '$.meter') = ? "
                "ORDER BY seq DESC LIMIT ?", (meter, limit))
            pairs = [(r["ts"], r["data"]) for r in rows]
        out = []
        for read_at, text in reversed(pairs):
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if isinstance(data, dict) and isinstance(data.get("values"), dict):  # an event's data
                read_at, data = data.get("read_at") or read_at, data["values"]
            if isinstance(data, dict):
                out.append({"read_at": read_at, "values": data})
        return out

    # ------------------------------------------------------------------ pages at /
    def _principal(self, request: Request) -> Principal | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        book: TokenBook = request.app.state.tokens
        return book.lookup(token)

    def _lang(self, request: Request) -> str:
        return pick_lang(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))

    def _pages(self) -> APIRouter:
        r = APIRouter(include_in_schema=False)

        @r.get("/", response_class=HTMLResponse)
        async def index(request: Request) -> Response:
            who = self._principal(request)
            if who is None:
                return RedirectResponse("/login", status_code=303)
            token = request.cookies.get(SESSION_COOKIE, "")
            return _page(self.render_console(who, self._lang(request), csrf_for(token)))

        @r.get("/login", response_class=HTMLResponse)
        async def login_form(request: Request) -> Response:
            if self._principal(request) is not None:
                return RedirectResponse("/", status_code=303)
            return _page(self.render_login(self._lang(request), error=""))

        @r.post("/login")
        async def login(request: Request) -> Response:
            lang = self._lang(request)
            if not same_origin(request):
                return _page(self.render_login(lang, error=t(lang, "login.bad")), status=403)
            form = parse_form(await request.body())
            token = form.get("token", "").strip()
            book: TokenBook = request.app.state.tokens
            throttle: AuthThrottle = request.app.state.auth_throttle
            client = client_address(request)
            if throttle.wait_s(client) > 0:
                log.warning("console login from %s refused: too many wrong tokens", client)
                return _page(self.render_login(lang, error=t(lang, "login.wait")), status=429)
            who = book.lookup(token) if token and len(token) <= 512 else None
            if who is None:
                if token:
                    throttle.failed(client)
                if self.ctx is not None:
                    self.ctx.metrics.inc("console_login_failed_total")
                log.warning("console login refused (unknown token) from %s",
                            request.client.host if request.client else "?")
                return _page(self.render_login(lang, error=t(lang, "login.bad")), status=401)
            throttle.succeeded(client)
            if self.ctx is not None:
                await self.ctx.audit.record(who.name, who.role, "console.login", "/", {})
            log.info("console login: %s (%s)", who.name, who.role)
            resp = RedirectResponse("/", status_code=303)
            resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/")
            return resp

        @r.post("/logout")
        async def logout(request: Request) -> Response:
            token = request.cookies.get(SESSION_COOKIE, "")
            form = parse_form(await request.body())
            who = self._principal(request)
            if who is not None and same_origin(request) and form.get("csrf") == csrf_for(token):
                if self.ctx is not None:
                    await self.ctx.audit.record(who.name, who.role, "console.logout", "/", {})
                resp = RedirectResponse("/login", status_code=303)
                resp.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
                return resp
            raise ApiError(403, "csrf", "logout needs the page's CSRF value")

        @r.get("/lang/{lang}")
        async def set_lang(lang: str) -> Response:
            resp = RedirectResponse("/", status_code=303)
            if lang in LANGS:
                resp.set_cookie(LANG_COOKIE, lang, samesite="strict", path="/", max_age=3600 * 24 * 365)
            return resp

        @r.get("/static/{name}")
        async def static(name: str) -> Response:
            media = STATIC_FILES.get(name)
            if media is None:
                raise ApiError(404, "not_found", "no such asset")
            return FileResponse(STATIC / name, media_type=media, headers={"Cache-Control": "no-cache"})

        @r.get("/favicon.ico")
        async def favicon() -> Response:
            return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

        return r

    # ------------------------------------------------------------------ rendering
    def render_login(self, lang: str, *, error: str) -> str:
        other = "en" if lang == "zh" else "zh"
        error_html = f'<p class="error" role="alert" id="login-error">{html.escape(error)}</p>' if error else ""
        return render(load_template("login.html"), {"lang": lang, "other_lang": other, "error": error_html}, lang)

    def render_console(self, who: Principal, lang: str, csrf: str) -> str:
        """The page shell for one role: only the views (and buttons) that role may use are in it."""
        views = VIEWS.get(who.role, ())
        cfg = self.page_config(who, lang, csrf, views)
        sections = {
            "duty": render(load_template("duty.html"), {}, lang) if "duty" in views else "",
            "tech": render(load_template("tech.html"), {"door_options": self._door_options()}, lang)
            if "tech" in views else "",
            "meters": render(load_template("meters.html"), {}, lang) if "meters" in views else "",
        }
        tabs = "".join(
            f'<button type="button" class="tab" role="tab" data-view="{v}" id="tab-{v}">'
            f'{html.escape(t(lang, "tab." + v))}</button>' for v in views)
        other = "en" if lang == "zh" else "zh"
        values = {
            "lang": lang, "other_lang": other, "csrf": csrf, "who": who.name,
            "role_label": t(lang, f"role.{who.role}"), "role": who.role,
            "tabs": tabs, "duty_section": sections["duty"], "tech_section": sections["tech"],
            "meters_section": sections["meters"],
            # </ cannot end the JSON block early: every "<" is escaped
            "config_json": json.dumps(cfg, ensure_ascii=False).replace("<", "\\u003c"),
            "site": self.ctx.config.gateway.site if self.ctx else "",
            "gateway": self.ctx.config.gateway.id if self.ctx else "",
        }
        return render(load_template("console.html"), values, lang)

    def page_config(self, who: Principal, lang: str, csrf: str, views: tuple[str, ...]) -> dict[str, Any]:
        """What the page's JS needs: role, what it may do, labels, the site's doors."""
        access = getattr(self.ctx.config, "access", None) if self.ctx else None
        role = who.role
        return {
            "role": role,
            "lang": lang,
            "csrf": csrf,
            "views": list(views),
            "can": {
                "ack": role in ("operator", "admin"),
                "unlock": role in ("operator", "admin"),
                "handover": role in ("operator", "admin"),
                "enrol": role in ("technician", "admin"),
                "revoke": role in ("technician", "admin"),
            },
            "free_cards": getattr(access, "free_cards_per_unit", 3),
            "worker_days": list(getattr(access, "worker_days", [1, 2, 3, 4, 5])),
            "worker_hours": getattr(access, "worker_hours", "08:00-18:00"),
            "doors": self._doors(),
            "labels": catalogue(lang),
        }

    def _doors(self) -> list[dict[str, str]]:
        if self.ctx is None:
            return []
        return [{"id": d.id, "name": d.name or d.id, "building": d.building, "unit": getattr(d, "unit", "")}
                for d in self.ctx.config.doors]

    def _door_options(self) -> str:
        return "".join(f'<option value="{html.escape(d["id"])}">{html.escape(d["name"])} ({html.escape(d["id"])})'
                       f'</option>' for d in self._doors())


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def _take_ready(queue: asyncio.Queue[_Frame | None], first: _Frame | None,
                limit: int = 200) -> tuple[list[_Frame], bool]:
    """``first`` and up to ``limit`` frames already waiting; True when the stream is told to end."""
    batch: list[_Frame] = []
    item = first
    while True:
        if item is None:
            return batch, True
        batch.append(item)
        if len(batch) >= limit:
            return batch, False
        try:
            item = queue.get_nowait()
        except asyncio.QueueEmpty:
            return batch, False


def _drain(queue: asyncio.Queue[Any]) -> None:
    while True:
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            return
