"""Domain errors: what the estate's rules refuse, independent of the wire that asked.

An area raises these from its rules, register or component; it never builds an HTTP
status or an MQTT result itself. The HTTP layer maps the class to a status in one
table (``gateway.api.errors.STATUS_BY_ERROR``) and MQTT answers ``ok:false`` with the
same ``code`` and ``message`` (``gateway.commands``), so one refusal reads the same on
both wires.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal with a machine-readable ``code`` and a message in words (``extra`` goes into the body)."""

    default_code = "invalid"

    def __init__(self, code: str | None, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.extra = extra


class Invalid(DomainError):
    """The request breaks a rule (HTTP 422)."""


class NotFound(DomainError):
    """No such card, door, meter, alarm or enrolment (HTTP 404)."""

    default_code = "not_found"


class Conflict(DomainError):
    """Refused by the current state: the card exists, the reader is offline, already acknowledged (HTTP 409)."""

    default_code = "conflict"


class Unavailable(DomainError):
    """The gateway cannot do it now (HTTP 503), e.g. the area is not configured on this gateway."""

    default_code = "unavailable"
