"""The duty room's shift calendar, as pure functions: when a shift changes, and when its handover is missed.

DOMAIN.md: customer service by day (about 08:30-18:30), monitoring-room duty at night, and "at
every shift change the outgoing operator hands over in writing". The gateway cannot make anyone
write, but it can notice that nobody did: a shift change with no handover recorded from
``grace`` before it until ``grace`` after it is a *missed handover*.

A gateway that was not running cannot have recorded one either, so the deadline is never
earlier than ``grace`` after the gateway's own start (the same grace a panel gets after a
restart). No I/O here: :mod:`.handover` applies these to the clock and the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta


@dataclass(frozen=True)
class ShiftChange:
    """A shift change: when (aware, the site's zone) and which shift started then."""

    at: datetime
    shift: str


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def last_change(local_now: datetime, day_starts: str, night_starts: str) -> ShiftChange:
    """The latest shift change at or before ``local_now`` (aware, in the site's zone)."""
    tz = local_now.tzinfo
    today = local_now.date()
    candidates = [ShiftChange(datetime.combine(d, _hhmm(hhmm), tz), shift)
                  for d in (today - timedelta(days=1), today)
                  for hhmm, shift in ((day_starts, "day"), (night_starts, "night"))]
    # yesterday's night change is always earlier; the shift it gives is the report's (rules.shift_at)
    return max((c for c in candidates if c.at <= local_now), key=lambda c: c.at)


def window_start(change: ShiftChange, grace: timedelta) -> datetime:
    """A handover recorded from here on counts for this change (the outgoing operator may write it a bit early)."""
    return change.at - grace


def due_at(change: ShiftChange, grace: timedelta, started: datetime) -> datetime:
    """When a handover still missing for ``change`` is reported: ``grace`` after the change, and never within
    ``grace`` of the gateway's start."""
    return max(change.at + grace, started + grace)


def missed(now: datetime, change: ShiftChange, grace: timedelta, started: datetime,
           last_handover: datetime | None) -> bool:
    """True once the handover for ``change`` is overdue and none was recorded in its window."""
    if grace <= timedelta(0) or now < due_at(change, grace, started):
        return False
    return last_handover is None or last_handover < window_start(change, grace)
