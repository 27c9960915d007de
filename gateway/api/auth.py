"""Bearer tokens with roles, console sessions, and the wrong-token throttle.

Only the token's SHA-256 is in the config; compare in constant time. The console carries a
session id (see :mod:`gateway.api.sessions`), never the token. 401: no token or an unknown one
(or an ended session). 403: a valid token whose role may not do this. ``admin`` may do everything.

Throttling keys on the socket's address (``X-Forwarded-For`` only from ``[api] trusted_proxies``)
and slows *failures* only: a valid token is always accepted, so nobody behind the same NAT or proxy
is locked out by someone else's guessing. What stops guessing is the token's 256 random bits
(docs/security.md); the throttle makes guessing loud (metric, one log line a minute) and slow for
naive scripts.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from drivers.quietlog import QuietLog
from gateway.api.addresses import Network, in_networks, source_of
from gateway.api.errors import ApiError
from gateway.api.sessions import SessionBook

#: the console's cookie: a session id (gateway.api.sessions), never a token
SESSION_COOKIE = "egw_session"

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

    def __init__(self, entries: list[Any], sessions: SessionBook | None = None) -> None:
        self._entries = [(bytes.fromhex(e.sha256), Principal(e.name, e.role)) for e in entries]
        self.sessions = sessions

    @property
    def hashes(self) -> set[str]:
        return {stored.hex() for stored, _ in self._entries}

    def lookup(self, token: str) -> Principal | None:
        """The principal of a token -- or of a live console session id (what the audit middleware
        finds in the cookie); never extends a session."""
        found = self.by_hash(hashlib.sha256(token.encode("utf-8")).hexdigest())
        if found is None and self.sessions is not None:
            token_sha256 = self.sessions.token_hash(token, touch=False)
            found = self.by_hash(token_sha256) if token_sha256 else None
        return found

    def token(self, token: str) -> Principal | None:
        """The principal of an API token only."""
        return self.by_hash(hashlib.sha256(token.encode("utf-8")).hexdigest())

    def by_hash(self, token_sha256: str) -> Principal | None:
        digest = bytes.fromhex(token_sha256)
        found = None
        for stored, principal in self._entries:
            if hmac.compare_digest(stored, digest):
                found = principal
        return found


class AuthThrottle:
    """Slows token guessing per client address -- failures only, never a valid token.

    The first ``free`` wrong tokens cost nothing (a mistyped token at the console); after that
    every further wrong token from that address must wait 1, 2, 4 … ``max_wait_s`` seconds, and a
    wrong token inside the wait is answered 429 (not counted again). A *valid* token is never
    refused, from any address, whatever others there did; so the count is not reset by it either
    (someone else behind the same NAT may be the one guessing). A quiet ``forget_s`` forgets it.
    Missing tokens are not counted: they guess nothing.
    """

    def __init__(self, *, free: int = 5, max_wait_s: float = 60.0, forget_s: float = 900.0,
                 max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic,
                 on_metric: Callable[[str], Any] | None = None) -> None:
        self.free, self.max_wait_s, self.forget_s = free, max_wait_s, forget_s
        self.max_clients = max_clients
        self._clock = clock
        self._on_metric = on_metric or (lambda name: None)
        self._quiet = QuietLog(log)
        #: address -> (failures, time of the last failure)
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def wait_s(self, client: str) -> float:
        """Seconds ``client`` must still wait before its next wrong token counts (0 = go ahead)."""
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

    def failed(self, client: str, what: str = "API") -> None:
        count = self._failures.pop(client, (0, 0.0))[0] + 1
        self._failures[client] = (count, self._clock())
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
        self._on_metric("auth_failed_total")
        self._quiet.log((client, what), "auth: wrong token (%s) from %s (%d in a row)", what, client, count)

    def refuse(self, client: str) -> None:
        """A wrong token: 429 while ``client`` is made to wait, else counted (the caller answers 401)."""
        wait = self.wait_s(client)
        if wait > 0:
            self._on_metric("auth_throttled_total")
            raise ApiError(429, "too_many_attempts", f"too many wrong tokens from this address; retry in {wait:.0f} s",
                           headers={"Retry-After": str(max(1, round(wait + 0.5)))})
        self.failed(client)


def client_address(request: Request) -> str:
    """The address a request comes from, for throttling: the socket's peer; when that peer is a trusted
    proxy (``[api] trusted_proxies``), the right-most X-Forwarded-For address that is not one."""
    peer = request.client.host if request.client else "?"
    trusted: tuple[Network, ...] = getattr(request.app.state, "trusted_proxies", ())
    # counted per source like the connection caps: an IPv4 address, or an IPv6 /64 (one host may own a whole
    # /64, so rotating addresses inside it must not escape the throttle)
    return source_of(forwarded_client(peer, request.headers.getlist("x-forwarded-for"), trusted))


def forwarded_client(peer: str, forwarded: list[str], trusted: tuple[Network, ...]) -> str:
    if not in_networks(peer, trusted):
        return peer
    hops = [h.strip() for line in forwarded for h in line.split(",")][-32:]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # garbage from the client: fall back to the proxy, not to a made-up key
        if not in_networks(hop, trusted):
            return hop
    return peer


def _bearer_header(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


#: documents the bearer scheme in the OpenAPI schema; never refuses by itself (the console's cookie counts too)
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="bearer")


def authenticate(request: Request) -> Principal:
    """The caller (see :func:`identify`); a console session's writes must carry its CSRF value."""
    principal = identify(request)
    if _bearer_header(request) is None and request.method not in ("GET", "HEAD", "OPTIONS"):
        sid = request.cookies.get(SESSION_COOKIE, "")
        if not hmac.compare_digest(request.headers.get("x-csrf-token", ""), csrf_for(sid)):
            raise ApiError(403, "csrf", "missing or wrong X-CSRF-Token for a console session")
    return principal


def identify(request: Request) -> Principal:
    """The caller: a Bearer token, or else a live console session; 401 (429 while throttled) if neither."""
    book: TokenBook = request.app.state.tokens
    token = _bearer_header(request)
    if token is not None:
        principal = book.token(token) if len(token) <= 512 else None
        if principal is None:
            throttle: AuthThrottle = request.app.state.auth_throttle
            throttle.refuse(client_address(request))
            raise ApiError(401, "unauthenticated", "unknown token")
        return principal
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        raise ApiError(401, "unauthenticated", "missing bearer token")
    principal = session_principal(book, sid)
    if principal is None:  # 256 random bits: nothing to throttle, and an ended session is no guess
        raise ApiError(401, "unauthenticated", "the console session has ended; sign in again")
    return principal


def session_principal(book: TokenBook, sid: str) -> Principal | None:
    """Who a live console session belongs to (extends it); None once it ended or its token was removed."""
    token_sha256 = book.sessions.token_hash(sid) if book.sessions is not None else None
    return book.by_hash(token_sha256) if token_sha256 else None


async def current_principal(request: Request,
                      _documented: HTTPAuthorizationCredentials | None = Security(bearer_scheme)) -> Principal:
    return authenticate(request)


def csrf_for(session: str) -> str:
    """The CSRF value of a console session: derived one-way from its id (rotates with it, unforgeable without it)."""
    return hmac.new(hashlib.sha256(session.encode("utf-8")).digest(), b"egw-csrf-v1", hashlib.sha256).hexdigest()


def require_role(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """FastAPI dependency: the caller's principal if its role is one of ``roles`` (or admin)."""
    allowed = set(roles) | {"admin"}

    # the roles travel into the OpenAPI schema as the bearer requirement's role list (OpenAPI 3.1)
    # async: a plain def would run in a worker thread on every request
    async def dep(principal: Principal = Security(current_principal, scopes=sorted(allowed))) -> Principal:
        if principal.role not in allowed:
            raise ApiError(403, "forbidden", f"role '{principal.role}' may not do this (needs {' or '.join(sorted(allowed))})")
        return principal

    return dep
