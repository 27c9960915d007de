"""The outbox's bound: its depth, the 80 % warning, and what is shed when it is full.

Why a module of its own: the bound is the part of the event log that decides what may be lost, and it says so in
the log and in ``/health``; the event log (:mod:`gateway.events`) only tells it that a row went in or out.

When the outbox (``[outbox] max_events``) is full, ``meter.reading`` rows are shed oldest first (the readings stay
in their own table for the HTTP pull); alarms, access and card events never are. With nothing left to shed the
outbox goes over its bound and keeps every event: said once when that begins, again every 1,000 events kept over
it, and once more the next time it begins, not once per event (a full outbox during a long broker outage on a
busy site would otherwise write a log line per door swipe).

Shedding reads on from the seq where it last stopped (no row below it is sheddable, and a row's type never
changes), so a full outbox of alarms is not read from its start for each new event. All of it runs in the writer
thread, inside the transaction of the event that went in, except :meth:`OutboxBound.rolled_back` and the
depth a failed write restores (the event loop, while the writer does not touch it).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

log = logging.getLogger("gateway.events")   # the lines operators know, under the logger they always came from

SHEDDABLE_TYPES = ("meter.reading",)
NEAR_FULL_RATIO = 0.8
REARM_RATIO = 0.7
#: shedding and keeping over the bound are logged at the first event and then one line per this many
KEPT_OVER_EVERY = 1000

_FIRST_SHEDDABLE = (f"SELECT seq FROM outbox WHERE seq > ? AND type IN ({','.join('?' * len(SHEDDABLE_TYPES))}) "
                    "ORDER BY seq LIMIT 1")


class OutboxBound:
    """The outbox's depth in memory and what to do when a new row takes it over ``max_events``."""

    def __init__(self, depth: int, max_events: int, on_metric: Callable[[str, int], None],
                 on_shed: Callable[[], None]) -> None:
        self.max_events = max_events
        self.depth = depth
        self.near_full_raised = depth >= max_events * NEAR_FULL_RATIO
        self.shed_total = 0
        #: events kept over the bound in the current spell with nothing to shed (0: not over it)
        self.kept_over = 0
        #: shedding reads on above this seq (none below is sheddable)
        self.shed_from = 0
        self.stale = False   # a rolled-back attempt counted rows that are not there
        self._on_metric = on_metric
        self._on_shed = on_shed   # the row shed may be one the uplink would take from memory

    def added(self, conn: sqlite3.Connection, seq: int) -> bool:
        """Row ``seq`` went in (writer thread): shed if over the bound. True when the 80 % warning is due now."""
        if self.stale:
            self.recount(conn)   # counts the row just inserted
        else:
            self.depth += 1
        if self.depth > self.max_events:
            self._over(conn, seq)
        self._settle()
        if not self.near_full_raised and self.depth >= self.max_events * NEAR_FULL_RATIO:
            self.near_full_raised = True
            log.warning("outbox at %d of %d events (80 %%)", self.depth, self.max_events)
            return True
        return False

    def removed(self, n: int) -> None:
        """``n`` delivered rows went out (writer thread)."""
        self.depth -= n
        self._settle()

    def _settle(self) -> None:
        """Back under the bound: the next spell over it is said again; under 70 %: the warning re-arms."""
        if self.depth <= self.max_events:
            self.kept_over = 0
        if self.near_full_raised and self.depth < self.max_events * REARM_RATIO:
            self.near_full_raised = False

    def recount(self, conn: sqlite3.Connection) -> None:
        self.depth = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        self.stale = False

    def rolled_back(self) -> None:
        self.stale = True
        self.shed_from = 0   # the rows it passed may be gone, their seqs taken again by other types

    def _over(self, conn: sqlite3.Connection, seq: int) -> None:
        """Shed the oldest sheddable row, or keep every event and say so."""
        row = conn.execute(_FIRST_SHEDDABLE, (self.shed_from, *SHEDDABLE_TYPES)).fetchone()
        if row is None:
            self.shed_from = seq   # nothing sheddable up to the event just recorded
            self.kept_over += 1
            if _said_at(self.kept_over):
                log.error("outbox over its bound (%d > %d) with nothing sheddable: keeping every event "
                          "(%d kept over it so far)", self.depth, self.max_events, self.kept_over)
            return
        self.shed_from = row[0]
        conn.execute("DELETE FROM outbox WHERE seq=?", (row[0],))
        self.depth -= 1
        self._on_shed()
        self.shed_total += 1
        self._on_metric("outbox_shed", 1)
        if _said_at(self.shed_total):
            log.warning("outbox full (%d): shed %d meter.reading events so far", self.max_events, self.shed_total)


def _said_at(count: int) -> bool:
    """Whether the ``count``-th event of a kind is logged: the first, then one in :data:`KEPT_OVER_EVERY`."""
    return count == 1 or count % KEPT_OVER_EVERY == 0
