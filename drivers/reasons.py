"""Why a device or the uplink is down: a stable code, its parameters, and the English words.

The duty room reads these on a Chinese page, central reads them in events and logs are read in
English. A reason is therefore a code (``no_reply``, ``driver_crashed``...) with parameters
(seconds, an account, the OS error as a detail nobody translates), and the console renders the
code's text in the page's language from ``gateway/api/i18n_reasons.py``. A :class:`Reason` *is*
its English text (a ``str``), so logs, ``/health`` and the events' ``reason`` stay readable words
while ``reason_code``/``reason_args`` ride beside them.

Every code is made with :func:`define` into one :data:`REGISTRY`; call sites use the returned
:class:`Code` objects (never a bare string), so a test can check that every code the code base can
emit has a Chinese and an English text. The driver's codes are defined here (``drivers/`` never
imports ``gateway/``); the gateway's own codes are in ``gateway/reasons.py``.
"""

from __future__ import annotations

from typing import Any

#: code -> its definition; filled by :func:`define` at import
REGISTRY: dict[str, Code] = {}


class Reason(str):
    """The English text of a reason, carrying its ``code`` and ``args`` (for the page's language)."""

    code: str
    args: dict[str, Any]

    def __new__(cls, text: str, code: str, args: dict[str, Any]) -> Reason:
        self = super().__new__(cls, text)
        self.code, self.args = code, args
        return self

    def fields(self) -> dict[str, Any]:
        """``reason_code`` and ``reason_args`` (when there are any), to put beside ``reason``."""
        out: dict[str, Any] = {"reason_code": self.code}
        if self.args:
            out["reason_args"] = dict(self.args)
        return out


class Code:
    """One reason code and its English template (``str.format`` slots named as the args)."""

    def __init__(self, code: str, english: str) -> None:
        self.code, self.english = code, english

    def __call__(self, **args: Any) -> Reason:
        plain = {k: v if isinstance(v, (int, float, bool)) else str(v) for k, v in args.items()}
        return Reason(self.english.format(**plain), self.code, plain)


def define(code: str, english: str) -> Code:
    """A new code (once: a second definition of the same code is a programming error)."""
    if code in REGISTRY:
        raise ValueError(f"reason code {code!r} defined twice")
    REGISTRY[code] = c = Code(code, english)
    return c


def reason_fields(text: str) -> dict[str, Any]:
    """``reason_code``/``reason_args`` of ``text`` when it is a :class:`Reason`, else nothing."""
    return text.fields() if isinstance(text, Reason) and text else {}


#: no reason (a device online, or not heard from yet): empty text, empty code
NONE = Reason("", "", {})

# ---------------------------------------------------------------- the drivers' codes
DRIVER_CRASHED = define("driver_crashed", "driver crashed: {error}; restarting in {seconds:g} s")
OPEN_FAILED = define("open_failed", "open failed: {error}")
READ_FAILED = define("read_failed", "read failed: {error}")
PORT_ERROR = define("port_error", "{error}")
NO_REPLY = define("no_reply", "no reply")
SECURE_CHANNEL_FAILED = define("secure_channel_failed",
                               "OSDP secure channel refused: {detail} (check scbk_file {key_file})")
SECURE_CHANNEL_KEY_MISMATCH = define(
    "secure_channel_key_mismatch",
    "OSDP secure channel refused: {detail} (check scbk_file {key_file}; "
    "a factory-fresh reader needs install_mode = true once)")
PLAIN_REFUSED = define("plain_refused", "OSDP plain link refused: {detail}")
BUS_ERROR = define("bus_error", "{kind}: {error}")

__all__ = ["NONE", "REGISTRY", "Code", "Reason", "define", "reason_fields", "DRIVER_CRASHED", "OPEN_FAILED",
           "READ_FAILED", "PORT_ERROR", "NO_REPLY", "SECURE_CHANNEL_FAILED", "SECURE_CHANNEL_KEY_MISMATCH",
           "PLAIN_REFUSED", "BUS_ERROR"]
