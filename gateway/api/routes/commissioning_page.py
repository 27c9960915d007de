"""The technicians' commissioning page at ``/commissioning`` (phone first, desktop too), and its assets.

For browsers (not in the OpenAPI schema), signed in with the console's session cookie like the
console itself; the page draws itself from ``/api/v1/commissioning`` and polls the open walk every
two seconds, so what is left per building stays live. Mounted with the console's pages
(``routes/pages.py``), and only served when the commissioning area runs.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from gateway.api.auth import TokenBook, csrf_for
from gateway.api.deps import area
from gateway.api.i18n import catalogue, pick_lang, t
from gateway.commissioning import CommissioningComponent
from gateway.console.pages import (
    LANG_COOKIE,
    SESSION_COOKIE,
    asset,
    lang_redirect,
    load_template,
    page,
    render,
)

router = APIRouter(include_in_schema=False)
_commissioning = area(CommissioningComponent)

#: the page's own assets (a whitelist: no path reaches the filesystem)
ASSETS = {
    "commissioning.js": "text/javascript; charset=utf-8",
    "commissioning.css": "text/css; charset=utf-8",
}
#: who walks (starts, marks, finishes); the others follow
WALKERS = ("technician", "admin")


@router.get("/commissioning")
async def commissioning_page(request: Request, comp: CommissioningComponent = Depends(_commissioning)) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    book: TokenBook = request.app.state.tokens
    who = book.lookup(token) if token else None
    if who is None:
        return RedirectResponse("/login", status_code=303)
    lang = pick_lang(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    cfg = comp.ctx.config
    page_cfg = {"role": who.role, "lang": lang, "csrf": csrf_for(token), "can_walk": who.role in WALKERS,
                "labels": catalogue(lang)}
    values = {
        "lang": lang, "other_lang": "en" if lang == "zh" else "zh", "csrf": csrf_for(token), "who": who.name,
        "role_label": t(lang, f"role.{who.role}"), "site": cfg.gateway.site, "gateway": cfg.gateway.id,
        "walker": "walker" if who.role in WALKERS else "follower",
        "config_json": json.dumps(page_cfg, ensure_ascii=False).replace("<", "\\u003c"),
    }
    return page(render(load_template("commissioning.html"), values, lang))


@router.get("/commissioning/lang/{lang}")
async def commissioning_lang(lang: str) -> Response:
    return lang_redirect(lang, "/commissioning")


@router.get("/commissioning/static/{name}")
async def commissioning_asset(name: str) -> Response:
    return asset(name, ASSETS)
