"""One error shape for every 4xx: {"error": {"code", "message"}}."""

from __future__ import annotations

from typing import Any

from gateway.errors import Conflict, DomainError, Invalid, NotFound, Unavailable


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


#: the one table from a domain refusal to its HTTP status (the most specific class wins; see gateway/errors.py)
STATUS_BY_ERROR: dict[type[DomainError], int] = {
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
    Unavailable: 503,
    DomainError: 422,
}


def status_of(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 422


#: what each documented error status means (the OpenAPI ``description``)
ERROR_DESCRIPTIONS = {
    400: "the body is not JSON",
    401: "no token, or an unknown one",
    403: "the token's role may not do this (or a console session without its CSRF value)",
    404: "no such object",
    409: "conflicts with the current state",
    413: "the request body is larger than [api] max_body_bytes (body_too_large); the connection is closed",
    422: "invalid input",
    429: "too many attempts; see Retry-After",
    503: "the local store refused the write (disk full, I/O error); see Retry-After",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: these statuses answer the one error shape (for the OpenAPI schema)."""
    return {status: {"description": ERROR_DESCRIPTIONS.get(status, "error"),
                     "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for status in statuses}


#: the error body as a JSON schema (``extra`` keys such as ``have_rev`` are allowed)
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"],
                             "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}},
}
