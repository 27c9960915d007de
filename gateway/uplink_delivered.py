"""PUBACKed events leave the outbox in batches: one commit (an fsync) a batch, not one a PUBACK.

The uplink hands every seq whose PUBACK came back to :class:`Delivered`; they are deleted from the
outbox together after :data:`ACK_FLUSH_S`, or at once when :data:`ACK_FLUSH_MAX` are waiting. A crash
before a batch commits only means its events are sent again (central dedupes by ``id``); a clean stop
flushes what is waiting (:meth:`Delivered.flush`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.events import EventLog
from gateway.metrics import Metrics
from gateway.uplink_nodes import UplinkState

ACK_FLUSH_S = 0.5  # deleting delivered rows costs a commit (an fsync): batch them; a crash only means re-sends
ACK_FLUSH_MAX = 5000


class Delivered:
    def __init__(self, events: EventLog, state: UplinkState, metrics: Metrics,
                 spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[Any]]) -> None:
        self.events, self.state, self.metrics, self._spawn = events, state, metrics, spawn
        #: PUBACKed seqs not deleted from the outbox yet
        self.seqs: list[int] = []
        self._later: asyncio.Task[Any] | None = None

    def acked(self, seqs: list[int]) -> None:
        """On the loop: these seqs were PUBACKed."""
        self.seqs += seqs
        if len(self.seqs) >= ACK_FLUSH_MAX:
            self._spawn(self.flush())
        elif self._later is None or self._later.done():
            self._later = self._spawn(self._flush_later())

    async def _flush_later(self) -> None:
        # Loop until nothing is left: acks that arrive while a flush is being committed
        # must not wait for some later ack to be flushed (the last acks of a burst would
        # otherwise stay in the outbox, delivered but never marked).
        while self.seqs:
            await asyncio.sleep(ACK_FLUSH_S)
            await self.flush()

    async def flush(self) -> None:
        seqs, self.seqs = self.seqs, []
        if not seqs:
            return
        await self.events.mark_delivered(seqs)
        self.state.delivered += len(seqs)
        self.metrics.inc("events_delivered_total", n=len(seqs))
