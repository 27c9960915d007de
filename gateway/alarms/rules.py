"""The alarm lifecycle's decisions, as pure functions (no store, no I/O): testable on their own.

Lifecycle: ``raised -> acknowledged`` (an operator, with a note) and ``restored`` (from the
panel) in either order; ``closed`` once both happened -- a test alarm, and one whose code no panel ever
restores (an event such as Contact ID 303 or SIA RT, marked ``once`` in the code tables), closes on
acknowledgement alone. :mod:`.lifecycle` applies these inside one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from gateway.alarms.signals import RESET_CODE, SILENT_CODE, Signal, never_restored
from gateway.config import DEFAULT_ESCALATE_S

STATES = ("raised", "acknowledged", "restored", "closed")
FIRE_KINDS = ("fire", "smoke")
#: kinds that never get a restore from the panel: acknowledging closes them
NO_RESTORE_KINDS = ("test",)
#: walk-test reports: a zone tested, logged only (no alarm), recorded as ``alarm.test_received`` so a
#: commissioning walk can see the zone work: Contact ID 611 point tested OK, 613/614/615 intrusion, fire,
#: panic zone walk tested; SIA TP walk test point
WALK_TEST_CODES = frozenset({"611", "613", "614", "615", "TP"})
#: escalation interval of a kind missing from the table
FALLBACK_ESCALATE_S = 600.0

Disposition = Literal["log", "restore", "reset", "raise"]


def disposition(s: Signal) -> Disposition:
    """What a signal does, decided in this order: informational -> only logged; a GB/T 26875.3 system
    reset -> restores every open component alarm of its transmitter; restore -> restores the matching
    open alarms; anything else -> raises (or repeats) an alarm."""
    if s.informational:
        return "log"
    if s.restore and s.code == RESET_CODE:
        return "reset"
    if s.restore:
        return "restore"
    return "raise"


def walk_test(s: Signal) -> bool:
    """A panel's report that one zone was walk-tested (not its restore)."""
    return not s.restore and s.code in WALK_TEST_CODES


def restores_silence_only(s: Signal) -> bool:
    """The gateway's silence alarm ends only by its own restore; a panel's restore never ends it."""
    return s.code == SILENT_CODE


def logs_unmatched_restore(s: Signal) -> bool:
    """A restore with no open alarm is still logged -- except GB frames, which restore every clear bit."""
    return not s.code.startswith("GB-")


def state_after_restore(acknowledged: bool) -> Literal["restored", "closed"]:
    return "closed" if acknowledged else "restored"


def closes_on_ack(state: str, kind: str, code: str = "") -> bool:
    """Acknowledging closes an alarm the panel already restored, and one no panel ever restores: a test
    alarm, or a code the tables mark ``once`` (Contact ID 303 RAM checksum bad, SIA RT data lost...)."""
    return state == "restored" or kind in NO_RESTORE_KINDS or never_restored(code)


def escalation_limits(configured: Mapping[str, float]) -> dict[str, float]:
    """Seconds unacknowledged before ``alarm.escalated``, per kind (the site's table over the defaults)."""
    return {**DEFAULT_ESCALATE_S, **configured}


def shift_at(local_hhmm: str, day_starts: str, night_starts: str) -> Literal["day", "night"]:
    """The shift on duty at a local ``HH:MM`` (day from ``day_starts`` until ``night_starts``)."""
    return "day" if day_starts <= local_hhmm < night_starts else "night"
