"""The console's pages at / : the page itself, login/logout, language, static assets.

Not in the OpenAPI schema (they are for browsers). Login shares the API's wrong-token
throttle (failures only: a valid token always signs in), and both login and logout refuse
cross-site posts (login CSRF). The cookie holds a session id (gateway.api.sessions), rotated at
every sign-in, never the token.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from gateway.api.auth import AuthThrottle, Principal, TokenBook, client_address, csrf_for, session_principal
from gateway.api.deps import area
from gateway.api.errors import ApiError
from gateway.api.i18n import pick_lang, t
from gateway.console import ConsoleComponent
from gateway.console.pages import (
    LANG_COOKIE,
    SESSION_COOKIE,
    STATIC,
    STATIC_FILES,
    asset,
    lang_redirect,
    page,
    parse_form,
    render_login,
    same_origin,
)

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
_console = area(ConsoleComponent)


def _principal(request: Request) -> Principal | None:
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        return None
    book: TokenBook = request.app.state.tokens
    return session_principal(book, sid)


def _lang(request: Request) -> str:
    return pick_lang(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, console: ConsoleComponent = Depends(_console)) -> Response:
    who = _principal(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    token = request.cookies.get(SESSION_COOKIE, "")
    return page(console.render_console(who, _lang(request), csrf_for(token)))


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    if _principal(request) is not None:
        return RedirectResponse("/", status_code=303)
    return page(render_login(_lang(request), error=""))


@router.post("/login")
async def login(request: Request, console: ConsoleComponent = Depends(_console)) -> Response:
    lang = _lang(request)
    if not same_origin(request):
        return page(render_login(lang, error=t(lang, "login.bad")), status=403)
    token = parse_form(await request.body()).get("token", "").strip()
    book: TokenBook = request.app.state.tokens
    who = book.token(token) if token and len(token) <= 512 else None
    if who is None:  # a valid token always signs in; only failures are throttled
        console.count("console_login_failed_total")
        if token:
            throttle: AuthThrottle = request.app.state.auth_throttle
            try:
                throttle.refuse(client_address(request))
            except ApiError:
                return page(render_login(lang, error=t(lang, "login.wait")), status=429)
        return page(render_login(lang, error=t(lang, "login.bad")), status=401)
    assert book.sessions is not None
    sid = await book.sessions.open(token, replacing=request.cookies.get(SESSION_COOKIE))
    await console.audit(who, "console.login")
    log.info("console login: %s (%s)", who.name, who.role)
    resp = RedirectResponse("/", status_code=303)
    resp.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="strict", path="/",
                    secure=request.url.scheme == "https")
    return resp


@router.post("/logout")
async def logout(request: Request, console: ConsoleComponent = Depends(_console)) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    form = parse_form(await request.body())
    who = _principal(request)
    if who is not None and same_origin(request) and form.get("csrf") == csrf_for(token):
        book: TokenBook = request.app.state.tokens
        if book.sessions is not None:
            await book.sessions.close(token)
        await console.audit(who, "console.logout")
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
        return resp
    raise ApiError(403, "csrf", "logout needs the page's CSRF value")


@router.get("/lang/{lang}")
async def set_lang(lang: str) -> Response:
    return lang_redirect(lang, "/")


@router.get("/static/{name}")
async def static(name: str) -> Response:
    return asset(name, STATIC_FILES)


@router.get("/favicon.ico")
async def favicon() -> Response:
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


# the commissioning walk's page for technicians (its own module: gateway/api/routes/commissioning_page.py)
from gateway.api.routes.commissioning_page import router as _commissioning_page  # noqa: E402

router.include_router(_commissioning_page)
