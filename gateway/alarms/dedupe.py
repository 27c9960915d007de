"""DC-09 retries recognised in memory, every committed block appended to a table that only grows at its end.

A panel resends a block until it is ACKed; one resent after a crash between the commit and the ACK must be
ACKed again, not raised a second time. That was an upsert into a table keyed by (receiver, account, seq):
with ten panels sending at once every commit wrote ten of its leaves, scattered by account -- 16 of the 37
WAL pages of a ten-block commit and a quarter of the writer's time on the alarm path (measured with the
gateway's own transaction, 1,000 commits). Now each committed block is appended to ``alarm_blocks`` (one
page a commit, no index) and looked up here: the last :data:`KEEP` blocks of each panel, which is where a
retry comes from (a panel sends its next block only once the last one is ACKed), loaded from the table
when the gateway starts (blocks within ``dedupe_keep_h``; the table is pruned to that).

The memory follows the transaction: a transaction that rolls back (the store failed, or the batch raised)
leaves it stale and it is loaded again from the table before the next lookup, so a block that was never
committed is never taken for a retry. Only the writer's thread calls :meth:`RecentBlocks.seen`.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Callable

from gateway.alarms import store as db

#: blocks remembered per panel (receiver, account); a retry is of the last one or, after a reconnect, of
#: the few a panel buffered
KEEP = 32
#: panels remembered at most (the least recently heard is forgotten first): accounts come from the wire, so
#: this bounds the memory (~5 MB) whatever a stranger sends; a forgotten panel's retry would be a second
#: alarm, never a lost one
MAX_PANELS = 1_000
#: rows read back at start (and after a rollback): the newest, enough for KEEP blocks of a few hundred panels
LOAD_ROWS = 20_000


class RecentBlocks:
    """The blocks each panel sent last, as (receiver, account) -> {seq: digest}, newest last."""

    def __init__(self, cutoff: Callable[[], str]) -> None:
        #: the oldest ``received_at`` worth loading (now - dedupe_keep_h)
        self.cutoff = cutoff
        self._panels: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()
        self._stale = True   # loaded at start (:meth:`load`), or by the next lookup

    def seen(self, conn: sqlite3.Connection, receiver: str, dedupe: tuple[str, str, str], now: str) -> bool:
        """True if this block was committed before (a retry); otherwise it is appended and remembered."""
        if self._stale:
            self.load(conn)
        account, seq, digest = dedupe
        panel = self._panels.get((receiver, account))
        if panel is not None and panel.get(seq) == digest:
            self._panels.move_to_end((receiver, account))
            return True
        db.log_block(conn, receiver, account, seq, digest, now)
        self._remember(receiver, account, seq, digest)
        return False

    def rolled_back(self) -> None:
        """What was added since the last commit may not be in the table: read it again before the next lookup."""
        self._stale = True

    def _remember(self, receiver: str, account: str, seq: str, digest: str) -> None:
        key = (receiver, account)
        panel = self._panels.get(key)
        if panel is None:
            panel = self._panels[key] = {}
            if len(self._panels) > MAX_PANELS:
                self._panels.popitem(last=False)
        else:
            self._panels.move_to_end(key)
        panel.pop(seq, None)   # the same seq with other content: the panel wrapped or restarted
        panel[seq] = digest
        if len(panel) > KEEP:
            del panel[next(iter(panel))]

    def load(self, conn: sqlite3.Connection) -> None:
        """Read the recent blocks back from the table (the writer's thread: at start, and after a rollback)."""
        self._panels.clear()
        for receiver, account, seq, digest in db.recent_blocks(conn, self.cutoff(), LOAD_ROWS):
            self._remember(receiver, account, seq, digest)
        self._stale = False
