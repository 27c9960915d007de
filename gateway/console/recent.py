"""The newest events a page may see, for "Latest events" after a (re)load.

``GET /api/v1/events`` pages forward from a cursor (what central needs); a page that just
opened wants the opposite: the last few things that happened, newest first, only of the types
its role may see, and without the meter readings that would bury everything else. Read-only on
the event log (the same table the stream replays from).
"""

from __future__ import annotations

from typing import Any

from gateway.console.stream import visible
from gateway.events import Event
from gateway.store import Store

#: event types left out: frequent and not news for a person (the meters view shows readings)
QUIET = ("meter.reading", "gateway.test")
#: rows looked at per request at most (a role that sees few types still gets its newest ones quickly)
SCAN = 2000


def recent_events(store: Store, role: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` events ``role`` may see (meter readings left out), newest first, as envelopes."""
    marks = ",".join("?" * len(QUIET))
    rows = store.query(f"SELECT seq, id, ts, type, historical, data FROM events WHERE type NOT IN ({marks}) "
                       "ORDER BY seq DESC LIMIT ?", (*QUIET, SCAN))
    out: list[dict[str, Any]] = []
    for row in rows:
        if visible(role, row["type"]):
            out.append(Event.from_row(row).envelope())
            if len(out) >= limit:
                break
    return out
