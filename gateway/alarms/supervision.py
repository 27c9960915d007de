"""Supervision: every alarm is seen by a person, and every panel is known to be alive.

* **Escalation.** An alarm unacknowledged past ``[alarms] escalate_s[kind]`` emits
  ``alarm.escalated``, and again each interval after, until someone acknowledges it.
* **Panel liveness** ("fire and alarm systems must be running normally at all times", DOMAIN.md).
  On by default (``supervision_s`` per protocol, see ``DEFAULT_SUPERVISION_S``). Any valid
  message (NULL poll, periodic test 602/RP, a GB/T 26875.3 heartbeat, events) refreshes a panel's
  liveness; silence past ``supervision_s`` raises a ``fault`` alarm (code ``silent``) that goes
  through the lifecycle like any other, and marks the receiver offline; the next real message
  restores both. A restart neither forgets a silence (it is read back from the store) nor ends
  it, and gives every panel one interval of grace before it can be called silent.

Each configured account is a panel of its own (one receiver often serves several); a receiver
without accounts is one panel (account ``""``). One asyncio loop owns this in-memory state.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from gateway.alarms import rules
from gateway.alarms import store as db
from gateway.alarms.signals import KINDS, Signal, silence
from gateway.config import AlarmReceiverConfig
from gateway.context import GatewayContext
from gateway.events import Emit, format_ts
from gateway.reasons import PANEL_HEARD_AGAIN, PANELS_SILENT

log = logging.getLogger(__name__)

Panel = tuple[str, str]   # (receiver id, account); account "" = the receiver as a whole
PRUNE_EVERY_S = 3600


def panels_of(rc: AlarmReceiverConfig) -> list[str]:
    """The panels a receiver supervises: each configured account, or the receiver as a whole."""
    return [a.upper() for a in rc.accounts] or [""]


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Supervision:
    def __init__(self, ctx: GatewayContext, report: Callable[[Signal], Awaitable[None]]) -> None:
        """``report(signal)`` commits what the gateway itself detects (a silence and its end)."""
        self.ctx = ctx
        self.report = report
        self.last_heard: dict[Panel, float] = {}
        self.silent: set[Panel] = set()
        self._heard_again: set[Panel] = set()

    async def start(self) -> None:
        """Every supervised panel counts as heard now: the grace after a start (no fault within its first
        interval, however long the gateway was down). Silences from before a restart stay open until the panel
        is actually heard; one of a panel no longer supervised (receiver or account removed, ``supervision_s =
        0``) is restored now, since nothing else could ever end it."""
        now = time.monotonic()
        supervised: set[Panel] = set()
        for rc in self.ctx.config.alarm_receivers:
            for acct in panels_of(rc):
                self.last_heard[(rc.id, acct)] = now
                if rc.supervision_s > 0:
                    supervised.add((rc.id, acct))
        silent = db.silent_panels(self.ctx.store)
        self.silent = silent & supervised
        for receiver, account in sorted(silent - supervised):
            log.warning("supervision: %s/%s is no longer supervised; its silence alarm is restored", receiver,
                        account or "-")
            await self.report(silence(receiver, account, "no longer supervised", restore=True))

    def still_silent(self, receiver: str) -> bool:
        return any(r == receiver for r, _a in self.silent)

    def heard(self, receiver: str, account: str = "") -> None:
        """A valid message: that panel is alive (the watch loop restores a silence alarm)."""
        now = time.monotonic()
        for key in ((receiver, account.upper()), (receiver, "")):
            if key in self.last_heard:
                self.last_heard[key] = now
                if key in self.silent:
                    self._heard_again.add(key)

    async def watch(self) -> None:
        tick = self.ctx.config.alarms.tick_s
        last_prune = 0.0
        while True:
            await asyncio.sleep(tick)
            await self.check_escalations()
            await self.check_supervision()
            if time.monotonic() - last_prune > PRUNE_EVERY_S:
                last_prune = time.monotonic()
                await self.prune()

    # ------------------------------------------------------------------ escalation
    async def check_escalations(self) -> list[int]:
        """Emit alarm.escalated for alarms unacknowledged past their kind's interval."""
        ctx = self.ctx
        now = ctx.clock.now()
        limits = rules.escalation_limits(ctx.config.alarms.escalate_s)
        due: list[tuple[int, str, int, float, str]] = []
        for kind in KINDS:
            limit = limits.get(kind, rules.FALLBACK_ESCALATE_S)
            if limit <= 0:
                continue
            cutoff = format_ts(now - timedelta(seconds=limit))
            for r in db.due_for_escalation(ctx.store, kind, cutoff):
                open_s = (now - _parse_ts(r["raised_at"])).total_seconds()
                due.append((r["id"], kind, r["escalations"] + 1, open_s, cutoff))
        if not due:
            return []
        stamp = format_ts(now)

        def txn(conn: sqlite3.Connection, emit: Emit) -> list[int]:
            done = []
            for alarm_id, kind, count, open_s, cutoff in due:
                if db.mark_escalated(conn, alarm_id, count, stamp, cutoff):
                    emit("alarm.escalated", {"alarm": alarm_id, "kind": kind, "count": count,
                                             "unacknowledged_s": round(open_s)})
                    done.append(alarm_id)
                    log.warning("alarm %d (%s) unacknowledged for %.0f s: escalated (%d)", alarm_id, kind, open_s,
                                count)
            return done

        return await ctx.events.transact(txn)

    # ------------------------------------------------------------------ panel liveness
    async def check_supervision(self) -> None:
        """A panel silent past its supervision interval raises a fault alarm; hearing it restores it.

        The receiver is reported offline while any of its panels is silent.
        """
        now = time.monotonic()
        for rc in self.ctx.config.alarm_receivers:
            if rc.supervision_s <= 0:
                continue
            changed = False
            for acct in panels_of(rc):
                changed = await self._check_panel(rc, acct, now) or changed
            if changed:
                silent = sorted(a or rc.id for r, a in self.silent if r == rc.id)
                await self.ctx.devices.set_state(rc.id, "receiver", not silent,
                                                 PANELS_SILENT(panels=", ".join(silent)) if silent else PANEL_HEARD_AGAIN())

    async def _check_panel(self, rc: AlarmReceiverConfig, acct: str, now: float) -> bool:
        key = (rc.id, acct)
        if key not in self.silent:
            quiet = now - self.last_heard.get(key, now)
            if quiet <= rc.supervision_s:
                return False
            who = f"panel {acct}" if acct else "panel"
            await self.report(silence(rc.id, acct, f"{who} silent for {quiet:.0f} s"))
            self.silent.add(key)
            return True
        if key in self._heard_again:   # only a real message ends a silence (not a restart)
            await self.report(silence(rc.id, acct, "panel heard again", restore=True))
            self._heard_again.discard(key)
            self.silent.discard(key)
            return True
        return False

    # ------------------------------------------------------------------ for the handover
    def handover_items(self) -> dict[str, Any]:
        """Open supervision faults (panels still silent, oldest first) and receivers not supervised at all."""
        faults = [{"alarm": a["id"], "receiver": a["receiver"], "account": a["account"], "since": a["raised_at"],
                   "state": a["state"], "acknowledged": a["acked_at"] is not None, "text": a["text"]}
                  for a in db.active_silences(self.ctx.store)]
        off = [rc.id for rc in self.ctx.config.alarm_receivers if rc.supervision_s <= 0]
        return {"supervision_faults": faults, "supervision_off": off}

    async def prune(self) -> None:
        """Forget DC-09 blocks older than ``dedupe_keep_h`` (a retry comes within minutes), and panel log rows
        older than the event log keeps its events (``[outbox] retention_days``)."""
        now = self.ctx.clock.now()
        await db.prune_dedupe(self.ctx.store, format_ts(now - timedelta(hours=self.ctx.config.alarms.dedupe_keep_h)))
        await db.prune_panel_log(self.ctx.store, format_ts(now - timedelta(days=self.ctx.config.outbox.retention_days)))
