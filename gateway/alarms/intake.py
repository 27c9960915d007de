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

from drivers.listener import current_source
from drivers.quietlog import QuietLog
from gateway.alarms.lifecycle import Lifecycle, Outcome
from gateway.alarms.linkage import FireLinkage
from gateway.alarms.signals import Signal
from gateway.alarms.supervision import Supervision
from gateway.context import GatewayContext
from gateway.reasons import NONE, PANEL_SILENT, PLAIN_DC09_REFUSED

log = logging.getLogger(__name__)


class Intake:
    def __init__(self, ctx: GatewayContext, lifecycle: Lifecycle, supervision: Supervision,
                 linkage: FireLinkage) -> None:
        self.ctx = ctx
        self.lifecycle = lifecycle
        self.supervision = supervision
        self.linkage = linkage
        self.stats = {"signals": 0, "duplicates": 0, "errors": 0}
        #: refusals: one log line a minute per (receiver, reason, source or account), never one per block
        self.quiet = QuietLog(log)
        receivers = ctx.config.alarm_receivers
        #: accounts as metric labels and log keys: configured ones only (the wire's are "other")
        self.accounts = {a.upper() for rc in receivers for a in (*rc.accounts, *rc.account_keys)}
        ctx.metrics.known("receiver", [rc.id for rc in receivers])
        ctx.metrics.known("account", self.accounts)
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
        reason = what.split(":")[0][:40]
        self.ctx.devices.error(receiver, "receiver", reason)
        source = current_source()
        self.quiet.log((receiver, reason, source), "alarm receiver %s: refused input%s (%s)", receiver,
                       f" from {source}" if source else "", what[:200])

    def refused_plain(self, receiver: str, account: str) -> None:
        """A plain block from a keyed account: counted, logged once per account, a warning on the receiver."""
        acct = account.upper() if account.upper() in self.accounts else "other"
        self.ctx.metrics.inc("alarm_plain_refused_total", {"receiver": receiver, "account": acct})
        warning = PLAIN_DC09_REFUSED(account=acct)
        if self.quiet.log((receiver, "plain", acct), "alarm receiver %s: %s", receiver, warning):
            state = self.ctx.devices.declare(receiver, "receiver")
            state.extra["warning"] = str(warning)
            state.extra["warning_code"] = warning.code
            state.extra["warning_args"] = dict(warning.args)
            if state.online is not False:
                state.reason = warning

    def refused_connection(self, receiver: str, reason: str, source: str) -> None:
        """Logged by the listener (once a minute per source and reason); counted here."""
        self.ctx.metrics.inc("alarm_connections_refused_total", {"receiver": receiver, "reason": reason})

    async def listening(self, receiver: str) -> None:
        """A receiver is up: online, unless one of its panels is still silent from before a restart."""
        silent = self.supervision.still_silent(receiver)
        await self.ctx.devices.set_state(receiver, "receiver", not silent, PANEL_SILENT() if silent else NONE)
