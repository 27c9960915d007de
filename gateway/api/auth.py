"""Bearer tokens with roles. Only the token's SHA-256 is in the config; compare in constant time.

401: no token or an unknown one. 403: a valid token whose role may not do this.
``admin`` may do everything.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.api.errors import ApiError

ROLES = ("operator", "technician", "central", "admin")

log = logging.getLogger(__name__)


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


class AuthThrottle:
    """Slows token guessing per client address.

    The first ``free`` wrong tokens cost nothing (a mistyped token at the console); after that
    every further attempt from that address must wait 1, 2, 4 … ``max_wait_s`` seconds, and any
    attempt inside the wait (right or wrong) is answered 429 without looking the token up, so a
    guesser learns nothing faster. A right token resets the count; a quiet ``forget_s`` forgets it.
    Missing tokens are not counted: they guess nothing.
    """

    def __init__(self, *, free: int = 5, max_wait_s: float = 60.0, forget_s: float = 900.0,
                 max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic,
                 on_metric: Callable[[str], Any] | None = None) -> None:
        self.free, self.max_wait_s, self.forget_s = free, max_wait_s, forget_s
        self.max_clients = max_clients
        self._clock = clock
        self._on_metric = on_metric or (lambda name: None)
        #: address -> (failures, time of the last failure)
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def wait_s(self, client: str) -> float:
        """Seconds ``client`` must still wait before its next attempt counts (0 = go ahead)."""
        entry = self._failures.get(client)
        if entry is None:
            return 0.0
        count, last = entry
        now = self._clock()
        if now - last > self.forget_s:
            del self._failures[client]
            return 0.0
        return max(0.0, last + self._penalty(count) - now)

    def _penalty(self, count: int) -> float:
        over = count - self.free
        return 0.0 if over <= 0 else min(self.max_wait_s, 2.0 ** (over - 1))

    def failed(self, client: str) -> None:
        count = self._failures.pop(client, (0, 0.0))[0] + 1
        self._failures[client] = (count, self._clock())
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
        self._on_metric("auth_failed_total")
        if count == self.free + 1:
            log.warning("auth: %d wrong tokens from %s; slowing that address down", count, client)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def check(self, client: str) -> None:
        """Raise 429 while ``client`` is made to wait."""
        wait = self.wait_s(client)
        if wait > 0:
            self._on_metric("auth_throttled_total")
            raise ApiError(429, "too_many_attempts", f"too many wrong tokens from this address; retry in {wait:.0f} s",
                           headers={"Retry-After": str(max(1, round(wait + 0.5)))})


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    # the console keeps the token in an HttpOnly session cookie
    cookie = request.cookies.get("egw_session")
    return cookie or None


#: documents the bearer scheme in the OpenAPI schema; never refuses by itself (the console's cookie counts too)
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="bearer")


def current_principal(request: Request,
                      _documented: HTTPAuthorizationCredentials | None = Security(bearer_scheme)) -> Principal:
    book: TokenBook = request.app.state.tokens
    token = _bearer(request)
    if token is None:
        raise ApiError(401, "unauthenticated", "missing bearer token")
    throttle: AuthThrottle = request.app.state.auth_throttle
    client = client_address(request)
    throttle.check(client)
    principal = book.lookup(token)
    if principal is None:
        throttle.failed(client)
        raise ApiError(401, "unauthenticated", "unknown token")
    throttle.succeeded(client)
    # a console (cookie) session: writes must carry the session's CSRF value
    if (request.method not in ("GET", "HEAD", "OPTIONS") and not _has_bearer_header(request)
            and not hmac.compare_digest(request.headers.get("x-csrf-token", ""), csrf_for(token))):
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

    # the roles travel into the OpenAPI schema as the bearer requirement's role list (OpenAPI 3.1)
    def dep(principal: Principal = Security(current_principal, scopes=sorted(allowed))) -> Principal:
        if principal.role not in allowed:
            raise ApiError(403, "forbidden", f"role '{principal.role}' may not do this (needs {' or '.join(sorted(allowed))})")
        return principal

    return dep
