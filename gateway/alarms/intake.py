"""Where every receiver hands what a panel said: commit first, then act.

The order is the point: signals (and a DC-09 block's dedupe row) are committed in one
transaction, and only then does the gateway act on them -- the panel is marked alive, fire
doors are held or released, and the receiver may ACK. A crash before the commit means the
panel resends; a crash after it means doors are reconciled at the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from gateway.alarms.lifecycle import Lifecycle, Outcome
from gateway.alarms.linkage import FireLinkage
from gateway.alarms.signals import Signal
from gateway.alarms.supervision import Supervision
from gateway.context import GatewayContext

log = logging.getLogger(__name__)


class Intake:
    def __init__(self, ctx: GatewayContext, lifecycle: Lifecycle, supervision: Supervision,
                 linkage: FireLinkage) -> None:
        self.ctx = ctx
        self.lifecycle = lifecycle
        self.supervision = supervision
        self.linkage = linkage
        self.stats = {"signals": 0, "duplicates": 0, "errors": 0}
        #: hook for tests/benchmarks: called (and awaited if it returns a coroutine) after each committed outcome
        self.on_outcome: Callable[[Outcome], Any] | None = None

    async def process(self, receiver: str, signals: list[Signal], *,
                      dedupe: tuple[str, str, str] | None = None, account: str | None = None) -> Outcome:
        """Commit signals (and the dedupe row) in one transaction, then act: liveness, fire linkage."""
        outcome = await self.lifecycle.record(signals, dedupe)
        await self._acted(receiver, signals, account, outcome)
        return outcome

    async def process_batch(self, receiver: str,
                            items: list[tuple[list[Signal], tuple[str, str, str] | None, str]]) -> list[Outcome]:
        """Like :meth:`process` for several messages (signals, dedupe, account) in one transaction."""
        outcomes = await self.lifecycle.record_batch([(signals, dedupe) for signals, dedupe, _a in items])
        for (signals, _d, account), outcome in zip(items, outcomes, strict=True):
            await self._acted(receiver, signals, account, outcome)
        return outcomes

    async def _acted(self, receiver: str, signals: list[Signal], account: str | None, outcome: Outcome) -> None:
        """After the commit: the panel is alive, fire doors follow, hooks hear of it."""
        self.heard(receiver, account if account is not None else (signals[0].account if signals else ""))
        if outcome.duplicate:
            self.stats["duplicates"] += 1
        self.stats["signals"] += len(signals)
        for alarm_id, doors in outcome.holds:
            await self.linkage.hold(alarm_id, doors)
        for alarm_id in outcome.closed:
            await self.linkage.release(alarm_id)
        if self.on_outcome is not None:
            res = self.on_outcome(outcome)
            if asyncio.iscoroutine(res):
                await res

    async def process_internal(self, sig: Signal) -> None:
        """Like :meth:`process` for what the gateway itself detects (does not count as hearing the panel)."""
        outcome = await self.lifecycle.record([sig])
        for alarm_id in outcome.closed:
            await self.linkage.release(alarm_id)

    def heard(self, receiver: str, account: str = "") -> None:
        self.supervision.heard(receiver, account)

    def count_error(self, receiver: str, what: str) -> None:
        self.stats["errors"] += 1
        self.ctx.devices.error(receiver, "receiver", what.split(":")[0][:40])
        log.warning("alarm receiver %s: refused input (%s)", receiver, what)

    async def listening(self, receiver: str) -> None:
        """A receiver is up: online, unless one of its panels is still silent from before a restart."""
        silent = self.supervision.still_silent(receiver)
        await self.ctx.devices.set_state(receiver, "receiver", not silent, "panel silent" if silent else "")
