"""Ademco Contact ID: the event line, its checksum, and the event-code -> kind table.

Receivers and dialers print one line per event::

    ACCT 18 QEEE GG ZZZ [S]          e.g.  "1234 18 1110 01 012"
    ACCT18QEEEGGZZZS                 the 16-digit DTMF form, S = checksum

``Q`` is 1 new event / opening, 3 restore / closing, 6 previously reported still present;
``EEE`` the event code, ``GG`` the partition, ``ZZZ`` zone or user. In the 16-digit form
digits are hex (0 is sent as A) and the sum of all digits (0 counting 10) is a multiple of 15.

The same ``QEEE GG ZZZ`` is the data of a DC-09 ``ADM-CID`` block. What a code *means* (kind,
raise/restore/log) is decided in one place per code system: :mod:`drivers.cid_codes` (Contact
ID, SIA DC-05) and :mod:`drivers.sia_codes` (SIA DC-03), both answering with a
:class:`drivers.alarm_codes.Meaning`; a code neither knows is an ``unknown code`` alarm, never a
guess. No gateway imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from drivers import cid_codes, sia_codes
from drivers.alarm_codes import Kind, Meaning
from drivers.sia_dc09.sia_dcs import SiaDcsError
from drivers.sia_dc09.sia_dcs import parse as parse_sia_dcs


@dataclass(frozen=True)
class ContactIdEvent:
    """One Contact ID event, decoded."""

    account: str
    qualifier: int        # 1 new, 3 restore, 6 still present
    code: int
    group: int
    zone: int
    kind: Kind
    text: str
    meaning: Meaning | None = None

    def _meaning(self) -> Meaning:
        return self.meaning or cid_codes.describe(self.code, self.qualifier)

    @property
    def restore(self) -> bool:
        return self._meaning().restore

    @property
    def informational(self) -> bool:
        """Not an alarm (opening/closing, bypass, periodic test...): logged, refreshes liveness."""
        return self._meaning().informational

    @property
    def liveness_only(self) -> bool:
        return self._meaning().liveness


class ContactIdError(ValueError):
    pass


_SPACED = re.compile(r"^\s*([0-9A-Fa-f]{3,16})\s+18\s+([136])([0-9A-Fa-f]{3})\s+([0-9A-Fa-f]{2})\s+([0-9A-Fa-f]{3})(?:\s+([0-9A-Fa-f]))?\s*$")
_QEEE = re.compile(r"^\s*([136])(\d{3})\s+(\d{2})\s+(\d{3})\s*$")
_DTMF = re.compile(r"^\s*([0-9A-Fa-f]{4})(18|98)([0-9A-Fa-f])([0-9A-Fa-f]{3})([0-9A-Fa-f]{2})([0-9A-Fa-f]{3})([0-9A-Fa-f])\s*$")


def _digit_value(ch: str) -> int:
    v = int(ch, 16)
    return 10 if v == 0 else v


def checksum_ok(digits: str) -> bool:
    """Contact ID: the sum of the 16 digits (0 counted as 10) is a multiple of 15."""
    return sum(_digit_value(c) for c in digits) % 15 == 0


def checksum_digit(first15: str) -> str:
    """The 16th digit that makes ``first15`` a valid message (0 is sent as A)."""
    s = sum(_digit_value(c) for c in first15)
    d = (15 - s % 15) % 15
    return "F" if d == 0 else format(d, "X")


def _num(text: str) -> int:
    """DTMF digits use A for 0."""
    return int(text.upper().replace("A", "0"))


def make_event(account: str, qualifier: int, code: int, group: int, zone: int) -> ContactIdEvent:
    m = cid_codes.describe(code, qualifier)
    return ContactIdEvent(account.upper(), qualifier, code, group, zone, m.kind, m.text, m)


def parse_line(line: str) -> ContactIdEvent:
    """A receiver's printed line (spaced or 16-digit DTMF form). Raises ContactIdError."""
    if len(line) > 64:
        raise ContactIdError("line too long")
    m = _SPACED.match(line)
    if m:
        acct, q, eee, gg, zzz, _s = m.groups()
        try:
            return make_event(acct, int(q), _num(eee), _num(gg), _num(zzz))
        except ValueError:
            raise ContactIdError("non-decimal event fields") from None
    m = _DTMF.match(line)
    if m:
        digits = "".join(m.groups())
        if not checksum_ok(digits):
            raise ContactIdError("checksum")
        acct, _mt, q, eee, gg, zzz, _s = m.groups()
        try:
            qual = int(q)
            if qual not in (1, 3, 6):
                raise ValueError
            return make_event(acct.replace("A", "0").replace("a", "0"), qual, _num(eee), _num(gg), _num(zzz))
        except ValueError:
            raise ContactIdError("bad event fields") from None
    raise ContactIdError("not a Contact ID line")


def parse_payload(account: str, payload: str) -> ContactIdEvent:
    """The ``QEEE GG ZZZ`` data of a DC-09 ADM-CID block."""
    m = _QEEE.match(payload)
    if m is None:
        raise ContactIdError("not a Contact ID payload")
    q, eee, gg, zzz = m.groups()
    return make_event(account, int(q), int(eee), int(gg), int(zzz))


def format_line(account: str, qualifier: int, code: int, group: int, zone: int, *, dtmf: bool = False) -> str:
    """The line a receiver prints (simulator): spaced, or 16-digit DTMF with its checksum."""
    if dtmf:
        body = f"{account[-4:]:0>4}18{qualifier}{code:03d}{group:02d}{zone:03d}".replace("0", "A")
        return body + checksum_digit(body)
    return f"{account} 18 {qualifier}{code:03d} {group:02d} {zone:03d}"


@dataclass(frozen=True)
class SiaEvent:
    """One event of a SIA-DCS payload (``Nri1/FA012``)."""

    code: str
    zone: int
    kind: Kind
    text: str
    restore: bool
    informational: bool
    liveness_only: bool


def parse_sia(payload: str) -> list[SiaEvent]:
    """The events in SIA-DCS data, each with its kind. The syntax (modifiers, texts, separators or
    none) is :func:`drivers.sia_dc09.sia_dcs.parse`'s; this only maps codes to kinds."""
    try:
        data = parse_sia_dcs(payload)
    except SiaDcsError as exc:
        raise ContactIdError(str(exc)) from None
    out: list[SiaEvent] = []
    for e in data.events:
        mean = sia_codes.describe(e.code)   # the code -> kind table (drivers.sia_codes)
        out.append(SiaEvent(e.code, e.zone, mean.kind, e.text or mean.text, mean.restore, mean.informational,
                            mean.liveness))
    if not out:   # text only (an "A" block): logged, not an alarm
        out.append(SiaEvent("A", 0, "other", data.text, False, True, False))
    return out
