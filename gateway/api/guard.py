"""Nothing is read before it is allowed: the token is checked, and the body's size, before the body.

Why: FastAPI reads (and buffers) a request's body before it resolves the route's dependencies, so
a 150 MB body without any token was read into memory before the 401 (RSS 503 MB, 144 MB after).
This pure ASGI middleware sits in front of the app and, for a request that carries a body:

* refuses a missing or wrong credential at once (401/429; a console session's CSRF value is
  checked later by the route) -- except on ``/login`` and ``/logout``, whose small forms carry no
  token header and have their own small cap;
* then refuses a ``Content-Length`` over the cap at once (``413 body_too_large``);
* counts a chunked body as the app reads it (Starlette's ``RequestBodyLimitMiddleware``) and
  refuses it once it grows past the cap (413 in the one error shape, from the app's handler).

A refusal before the body answers ``Connection: close``: the server closes the connection instead
of draining an unread body, so a rejected huge body costs no memory (uvicorn holds at most 64 KB of
it before it stops reading). Over HTTPS every response carries HSTS.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.auth import identify
from gateway.api.errors import ApiError

#: console form posts: no token header (the token is the form, or the session cookie), a small body
FORM_PATHS = frozenset({"/login", "/logout"})
FORM_MAX_BYTES = 16 * 1024
HSTS = (b"strict-transport-security", b"max-age=31536000")


def body_too_large(cap: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the request body is larger than {cap} bytes",
                    headers={"Connection": "close"})


class Guard:
    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("scheme") == "https":
            send = _with_hsts(send)
        headers = Headers(scope=scope)
        if not _has_body(headers):
            await self.app(scope, receive, send)
            return
        form = scope["path"] in FORM_PATHS
        cap = FORM_MAX_BYTES if form else self.max_body
        if not form:
            try:
                identify(Request(scope))
            except ApiError as exc:
                exc.headers = {**exc.headers, "Connection": "close"}
                await _refuse(exc, scope, receive, send)
                return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > cap:
            await _refuse(body_too_large(cap), scope, receive, send)
            return
        await RequestBodyLimitMiddleware(self.app, cap)(scope, receive, send)


def _has_body(headers: Headers) -> bool:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return True
    length = headers.get("content-length")
    return length is not None and length.strip() not in ("", "0")


async def _refuse(exc: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    await JSONResponse(exc.body(), status_code=exc.status, headers={**headers, **exc.headers})(scope, receive, send)


def _with_hsts(send: Send) -> Send:
    async def send_with_hsts(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), HSTS]}
        await send(message)

    return send_with_hsts
