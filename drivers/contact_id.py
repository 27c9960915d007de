"""Ademco Contact ID: the event line, its checksum, and the event-code -> kind table.

Receivers and dialers print one line per event::

    ACCT 18 QEEE GG ZZZ [S]          e.g.  "1234 18 1110 01 012"
    ACCT18QEEEGGZZZS                 the 16-digit DTMF form, S = checksum

``Q`` is 1 new event / opening, 3 restore / closing, 6 previously reported still present;
``EEE`` the event code, ``GG`` the partition, ``ZZZ`` zone or user. In the 16-digit form
digits are hex (0 is sent as A) and the sum of all digits (0 counting 10) is a multiple of 15.

The same ``QEEE GG ZZZ`` is the data of a DC-09 ``ADM-CID`` block. The kind table here is
the one place that decides what an event code means for the duty room; SIA-DCS two-letter
codes are mapped alongside so both paths agree. No gateway imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from drivers.sia_dc09.sia_dcs import SiaDcsError
from drivers.sia_dc09.sia_dcs import parse as parse_sia_dcs

Kind = Literal["fire", "smoke", "burglary", "panic", "fault", "supervisory", "test", "other"]

#: exact Contact ID codes: (kind, text). Ranges below fill the gaps.
CID_CODES: dict[int, tuple[Kind, str]] = {
    100: ("panic", "medical"), 101: ("panic", "personal emergency"), 110: ("fire", "fire"),
    111: ("smoke", "smoke"), 112: ("fire", "combustion"), 113: ("fire", "water flow"), 114: ("fire", "heat"),
    115: ("fire", "pull station"), 116: ("fire", "duct"), 117: ("fire", "flame"), 118: ("fire", "near alarm"),
    120: ("panic", "panic"), 121: ("panic", "duress"), 122: ("panic", "silent panic"), 123: ("panic", "audible panic"),
    130: ("burglary", "burglary"), 131: ("burglary", "perimeter"), 132: ("burglary", "interior"),
    133: ("burglary", "24 hour"), 134: ("burglary", "entry/exit"), 137: ("burglary", "tamper"),
    150: ("other", "24 hour non-burglary"), 151: ("other", "gas detected"), 154: ("other", "water leakage"),
    158: ("other", "high temperature"),
    200: ("supervisory", "fire supervisory"), 201: ("supervisory", "low water pressure"),
    300: ("fault", "system trouble"), 301: ("fault", "AC loss"), 302: ("fault", "low system battery"),
    305: ("fault", "system reset"), 308: ("fault", "system shutdown"), 309: ("fault", "battery test failure"),
    311: ("fault", "battery missing"), 321: ("fault", "bell trouble"), 350: ("fault", "communication trouble"),
    354: ("fault", "failure to communicate"), 373: ("fault", "fire trouble"), 380: ("fault", "sensor trouble"),
    383: ("fault", "sensor tamper"), 384: ("fault", "RF low battery"),
    601: ("test", "manual test"), 602: ("test", "periodic test"), 607: ("test", "walk test"),
}

_CID_RANGES: list[tuple[int, int, Kind, str]] = [
    (100, 109, "panic", "medical"), (110, 119, "fire", "fire"), (120, 129, "panic", "panic"),
    (130, 149, "burglary", "burglary"), (150, 199, "other", "24 hour non-burglary"),
    (200, 299, "supervisory", "supervisory"), (300, 399, "fault", "trouble"),
    (600, 699, "test", "test"),
]

#: codes that are news but not alarms: openings/closings, bypasses, periodic test
CID_INFO = set(range(400, 600)) | {602, 603, 604, 605, 606, 608, 609} | set(range(610, 700))
#: codes that only prove the panel is alive
CID_LIVENESS = {602, 603}


def cid_kind(code: int) -> tuple[Kind, str]:
    """What a Contact ID event code means: (kind, short text)."""
    if code in CID_CODES:
        return CID_CODES[code]
    for lo, hi, kind, text in _CID_RANGES:
        if lo <= code <= hi:
            return kind, text
    return "other", f"event {code:03d}"


#: SIA-DCS two-letter codes: code -> (kind, text, restore?, alarm code it restores)
SIA_CODES: dict[str, tuple[Kind, str, bool]] = {
    "FA": ("fire", "fire alarm", False), "FR": ("fire", "fire restoral", True),
    "FH": ("fire", "fire alarm restore", True), "KA": ("fire", "heat alarm", False), "KH": ("fire", "heat restore", True),
    "SA": ("fire", "sprinkler alarm", False), "SH": ("fire", "sprinkler restore", True),
    "GA": ("other", "gas alarm", False), "GH": ("other", "gas restore", True),
    "BA": ("burglary", "burglary alarm", False), "BR": ("burglary", "burglary restoral", True),
    "BH": ("burglary", "burglary alarm restore", True), "TA": ("burglary", "tamper", False),
    "TR": ("burglary", "tamper restoral", True),
    "PA": ("panic", "panic alarm", False), "PR": ("panic", "panic restoral", True), "PH": ("panic", "panic restore", True),
    "HA": ("panic", "holdup alarm", False), "HR": ("panic", "holdup restoral", True), "HH": ("panic", "holdup restore", True),
    "MA": ("panic", "medical alarm", False), "MR": ("panic", "medical restoral", True), "MH": ("panic", "medical restore", True),
    "FT": ("fault", "fire trouble", False), "FJ": ("fault", "fire trouble restore", True),
    "AT": ("fault", "AC trouble", False), "AR": ("fault", "AC restoral", True),
    "YT": ("fault", "battery trouble", False), "YR": ("fault", "battery restoral", True),
    "YC": ("fault", "communication fail", False), "YK": ("fault", "communication restoral", True),
    "ET": ("fault", "expansion trouble", False), "ER": ("fault", "expansion restoral", True),
    "FS": ("supervisory", "fire supervisory", False), "FV": ("supervisory", "fire supervisory restore", True),
    "SS": ("supervisory", "sprinkler supervisory", False), "SR": ("supervisory", "sprinkler supervisory restore", True),
    "RX": ("test", "manual test", False), "TX": ("test", "test report", False),
    "RP": ("test", "automatic test", False),
}
SIA_LIVENESS = {"RP"}
#: openings/closings, bypasses, access: logged, never alarms
SIA_INFO_PREFIXES = ("O", "C", "U", "B")  # checked after SIA_CODES, so "BA"/"BR" stay alarms


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

    @property
    def restore(self) -> bool:
        return self.qualifier == 3

    @property
    def informational(self) -> bool:
        """Not an alarm (opening/closing, periodic test...): logged, refreshes liveness."""
        return self.code in CID_INFO

    @property
    def liveness_only(self) -> bool:
        return self.code in CID_LIVENESS


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
    kind, text = cid_kind(code)
    return ContactIdEvent(account.upper(), qualifier, code, group, zone, kind, text)


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
        code, zone = e.code, e.zone
        if code in SIA_CODES:
            kind, what, restore = SIA_CODES[code]
            out.append(SiaEvent(code, zone, kind, e.text or what, restore, False, code in SIA_LIVENESS))
        else:
            info = code.startswith(SIA_INFO_PREFIXES)
            out.append(SiaEvent(code, zone, "other", e.text or f"SIA {code}", code.endswith(("R", "H")) and not info,
                                info, False))
    if not out:   # text only (an "A" block): logged, not an alarm
        out.append(SiaEvent("A", 0, "other", data.text, False, True, False))
    return out
