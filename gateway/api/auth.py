"""Bearer tokens with roles. Only the token's SHA-256 is in the config; compare in constant time.

401: no token or an unknown one. 403: a valid token whose role may not do this.
``admin`` may do everything.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Callable

from fastapi import Depends, Request

from gateway.api.errors import ApiError

ROLES = ("operator", "technician", "central", "admin")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "egw_" + secrets.token_urlsafe(32)


class TokenBook:
    """Looks a presented token up among the configured hashes (every entry compared: no timing leak)."""

    def __init__(self, entries: list[Any]) -> None:
        self._entries = [(bytes.fromhex(e.sha256), Principal(e.name, e.role)) for e in entries]

    def lookup(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        found = None
        for stored, principal in self._entries:
            if hmac.compare_digest(stored, digest):
                found = principal
        return found


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    # the console keeps the token in an HttpOnly session cookie
    cookie = request.cookies.get("egw_session")
    return cookie or None


def current_principal(request: Request) -> Principal:
    book: TokenBook = request.app.state.tokens
    token = _bearer(request)
    if token is None:
        raise ApiError(401, "unauthenticated", "missing bearer token")
    principal = book.lookup(token)
    if principal is None:
        raise ApiError(401, "unauthenticated", "unknown token")
    if request.method not in ("GET", "HEAD", "OPTIONS") and not _has_bearer_header(request):
        # a console (cookie) session: writes must carry the session's CSRF value
        if not hmac.compare_digest(request.headers.get("x-csrf-token", ""), csrf_for(token)):
            raise ApiError(403, "csrf", "missing or wrong X-CSRF-Token for a console session")
    return principal


def _has_bearer_header(request: Request) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(value.strip())


def csrf_for(token: str) -> str:
    """The CSRF value of a console session: derived one-way from its token (survives restarts, unforgeable without it)."""
    return hmac.new(hashlib.sha256(token.encode("utf-8")).digest(), b"egw-csrf-v1", hashlib.sha256).hexdigest()


def require_role(*roles: str) -> Callable[..., Principal]:
    """FastAPI dependency: the caller's principal if its role is one of ``roles`` (or admin)."""
    allowed = set(roles) | {"admin"}

    def dep(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role not in allowed:
            raise ApiError(403, "forbidden", f"role '{principal.role}' may not do this (needs {' or '.join(sorted(allowed))})")
        return principal

    return dep
