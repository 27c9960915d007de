"""The uplink's pages of the outbox: read from the table, or taken from memory when the uplink is caught up.

Why the memory: at ten panels back to back (issue 20) every round of ten alarm blocks ended with the uplink
reading the ten events it had just been told of back out of the outbox (a join of ``outbox`` and ``events``:
the reader's page cache is dropped at every commit, so the pages came back through the WAL: 60-200 us a
read, the biggest single cost of a round on the event loop). The events dispatched last are kept here as
the rows that query would return, and :meth:`OutboxPages.page` serves them when they are exactly the next
ones: the first is ``after_seq + 1`` and they rise by one without a gap, so no committed event can sit
between them. Anything else reads the table: an event committed without being dispatched (an audit row a
transaction inserts beside its own events, a write from a thread, a batch committed and not yet dispatched:
:attr:`OutboxPages.committed_seq` is past what memory holds), an uplink sent back to its oldest row by a
reconnect, or a memory made stale by the writer (a row shed from a full outbox, the historical flag
rewritten at a reconnect). A page is therefore always the one the table gives; the test holds it to that
(tests/core/test_outbox_pages.py). While the uplink is down nothing is kept (:meth:`OutboxPages.dispatched`
clears the memory instead): a reconnect starts from the table, and an outage must not hold a thousand events in RAM.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gateway.store import Store

if TYPE_CHECKING:   # events.py imports this module
    from gateway.events import Event

#: events kept in memory for the uplink's next page (a page is at most 1,000)
FRESH_MAX = 1000

PAGE_SQL = ("SELECT e.seq, e.id, e.ts, e.type, o.historical, e.data "
            "FROM outbox o JOIN events e ON e.seq = o.seq WHERE o.seq > ? ORDER BY o.seq LIMIT ?")


class OutboxPages:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.fresh: deque[tuple[int, str, str, str, bool, str]] = deque(maxlen=FRESH_MAX)
        #: set by the writer when an outbox row was shed or rewritten: memory no longer mirrors the table
        self.stale = False
        #: the highest seq committed (set by the writer after each commit, before anyone hears of it)
        self.committed_seq = 0

    def mark_stale(self) -> None:
        """The writer shed or rewrote an outbox row: the next page comes from the table."""
        self.stale = True

    def dispatched(self, events: Iterable[Event], *, uplink_up: bool) -> None:
        """On the loop, after a commit: the events as the page query would return their rows."""
        fresh = self.fresh
        if not uplink_up:   # it starts from the table when it is back: memory would only hold RAM
            fresh.clear()
            return
        for ev in events:
            if not ev.body or (fresh and ev.seq != fresh[-1][0] + 1):
                fresh.clear()   # a gap (an event committed but not dispatched, or out of order): the table decides
            if ev.body:
                fresh.append((ev.seq, ev.id, ev.ts, ev.type, ev.historical, ev.body))

    def page(self, after_seq: int, limit: int) -> list[tuple[int, str, str]]:
        """Outbox rows after ``after_seq`` in seq order, at most ``limit``, as (seq, type, JSON envelope).

        The envelope is assembled from the stored JSON text without decoding it: the uplink's hot path,
        where a decode/encode per event would halve throughput.
        """
        fresh = self.fresh
        if self.stale:
            self.stale = False
            fresh.clear()
        while fresh and fresh[0][0] <= after_seq:
            fresh.popleft()
        rows: list[Any] = []
        if fresh and fresh[0][0] == after_seq + 1:
            rows = [fresh.popleft() for _ in range(min(limit, len(fresh)))]
            after_seq, limit = rows[-1][0], limit - len(rows)
        if limit > 0 and (not rows or after_seq < self.committed_seq):   # committed, not in memory: the table
            rows += self.store.reader.execute(PAGE_SQL, (after_seq, limit)).fetchall()
        return [
            (seq, type_, f'{{"id":"{id_}","seq":{seq},"ts":"{ts}","type":{json.dumps(type_)},'
                         f'"historical":{"true" if hist else "false"},"data":{data}}}')
            for seq, id_, ts, type_, hist, data in rows
        ]
