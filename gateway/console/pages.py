"""Rendering the console's pages: one HTML shell per role, labels from the catalogue.

A dozen lines of placeholder filling instead of a template engine: the pages have no
loops on the server (lists are drawn by the JS from JSON), only labels and sections.
What a role cannot do is left out of its page entirely.
"""

from __future__ import annotations

import functools
import html
import json
import re
import urllib.parse
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from gateway.api.auth import Principal
from gateway.api.errors import ApiError
from gateway.api.i18n import LANGS, alarm_texts, catalogue, t
from gateway.config import AccessSection, GatewayConfig

API_DIR = Path(__file__).resolve().parent.parent / "api"
TEMPLATES = API_DIR / "templates"
STATIC = API_DIR / "static"
SESSION_COOKIE = "egw_session"
LANG_COOKIE = "egw_lang"

#: static files served, by name -> media type (a whitelist: no path ever reaches the filesystem)
STATIC_FILES = {
    "dom.js": "text/javascript; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "duty.js": "text/javascript; charset=utf-8",
    "tech.js": "text/javascript; charset=utf-8",
    "meters.js": "text/javascript; charset=utf-8",
    "start.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

#: which parts of the page each role gets (admin gets all); an operator's "cards" view is the register only
#: (to revoke a lost card at night), a technician's "tech" view adds enrolment and verification
VIEWS: dict[str, tuple[str, ...]] = {
    "operator": ("duty", "cards", "meters"),
    "technician": ("tech", "meters"),
    "central": ("meters",),
    "admin": ("duty", "tech", "meters"),
}

#: what each role's page offers (the API refuses the rest with 403 anyway)
CAN: dict[str, tuple[str, ...]] = {
    "ack": ("operator", "admin"),
    "unlock": ("operator", "admin"),
    "relock": ("operator", "admin"),
    "handover": ("operator", "admin"),
    "enrol": ("technician", "admin"),
    "edit": ("technician", "admin"),
    # a card lost at night is revoked by the duty room at once
    "revoke": ("technician", "operator", "admin"),
    "valve": ("technician", "admin"),
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

PLACEHOLDER = re.compile(r"\{\{(!?)\s*([a-zA-Z0-9_.]+)\s*\}\}")


def render(template: str, values: dict[str, Any], lang: str) -> str:
    """Fill ``{{ name }}`` from ``values`` or the label catalogue, HTML-escaped; ``{{! name }}`` is raw HTML."""

    def sub(m: re.Match[str]) -> str:
        raw, key = m.group(1) == "!", m.group(2)
        value = values[key] if key in values else t(lang, key)
        return str(value) if raw else html.escape(str(value), quote=True)

    return PLACEHOLDER.sub(sub, template)


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


def lang_redirect(lang: str, to: str) -> RedirectResponse:
    """Remember the page language (a known one) in its cookie and go back to ``to``."""
    resp = RedirectResponse(to, status_code=303)
    if lang in LANGS:
        resp.set_cookie(LANG_COOKIE, lang, samesite="strict", path="/", max_age=3600 * 24 * 365)
    return resp


def asset(name: str, allowed: dict[str, str]) -> FileResponse:
    """A static file named in ``allowed`` (name -> media type; a whitelist: no path reaches the filesystem)."""
    media = allowed.get(name)
    if media is None:
        raise ApiError(404, "not_found", "no such asset")
    return FileResponse(STATIC / name, media_type=media, headers={"Cache-Control": "no-cache"})


def page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def render_login(lang: str, *, error: str) -> str:
    other = "en" if lang == "zh" else "zh"
    error_html = f'<p class="error" role="alert" id="login-error">{html.escape(error)}</p>' if error else ""
    return render(load_template("login.html"), {"lang": lang, "other_lang": other, "error": error_html}, lang)


class PageRenderer:
    """The page shell for one role, from the site's config (doors, worker rules)."""

    def __init__(self, config: GatewayConfig | None) -> None:
        self.config = config

    def render_console(self, who: Principal, lang: str, csrf: str) -> str:
        """Only the views (and buttons) the role may use are in it."""
        views = VIEWS.get(who.role, ())
        cfg = self.page_config(who, lang, csrf, views)
        enrol = render(load_template("enrol.html"), {"door_options": self.door_options()}, lang) \
            if cfg["can"]["enrol"] else ""
        cards = render(load_template("cards.html"), {}, lang)
        sections = {
            "duty": render(load_template("duty.html"), {}, lang) if "duty" in views else "",
            "tech": render(load_template("tech.html"), {"enrol_panels": enrol, "cards_panel": cards}, lang)
            if "tech" in views else
            render(load_template("register.html"), {"cards_panel": cards}, lang) if "cards" in views else "",
            "meters": render(load_template("meters.html"), {}, lang) if "meters" in views else "",
            # the alarm, uplink and missed-handover banners stay on every tab of a duty-room page
            "banners": render(load_template("banners.html"), {}, lang) if "duty" in views else "",
        }
        tabs = "".join(
            f'<button type="button" class="tab" role="tab" data-view="{v}" id="tab-{v}">'
            f'{html.escape(t(lang, "tab." + v))}</button>' for v in views)
        other = "en" if lang == "zh" else "zh"
        values = {
            "lang": lang, "other_lang": other, "csrf": csrf, "who": who.name,
            "role_label": t(lang, f"role.{who.role}"), "role": who.role,
            "tabs": tabs, "duty_section": sections["duty"], "tech_section": sections["tech"],
            "meters_section": sections["meters"], "banners": sections["banners"],
            # </ cannot end the JSON block early: every "<" is escaped
            "config_json": json.dumps(cfg, ensure_ascii=False).replace("<", "\\u003c"),
            "site": self.config.gateway.site if self.config else "",
            "gateway": self.config.gateway.id if self.config else "",
        }
        return render(load_template("console.html"), values, lang)

    def page_config(self, who: Principal, lang: str, csrf: str, views: tuple[str, ...]) -> dict[str, Any]:
        """What the page's JS needs: role, what it may do, labels, the site's doors."""
        access = self.config.access if self.config else AccessSection()
        return {
            "role": who.role,
            "lang": lang,
            "csrf": csrf,
            "views": list(views),
            "can": {action: who.role in roles for action, roles in CAN.items()},
            "free_cards": access.free_cards_per_unit,
            "worker_days": list(access.worker_days),
            "worker_hours": access.worker_hours,
            "doors": self.doors(),
            "labels": catalogue(lang),
            "alarm_texts": alarm_texts(lang),
        }

    def doors(self) -> list[dict[str, str]]:
        if self.config is None:
            return []
        return [{"id": d.id, "name": d.name or d.id, "building": d.building, "unit": d.unit}
                for d in self.config.doors]

    def door_options(self) -> str:
        return "".join(f'<option value="{html.escape(d["id"])}">{html.escape(d["name"])} ({html.escape(d["id"])})'
                       f'</option>' for d in self.doors())
