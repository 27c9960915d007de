"""The alarms component: wires receivers, lifecycle, supervision, fire linkage and handover together.

Nothing here decides anything; each part is its own module:

* :mod:`.receivers` -- one module per panel protocol, all behind one interface;
* :mod:`.signals` / :mod:`.rules` -- what a message means and what it does (pure);
* :mod:`.lifecycle` + :mod:`.store` -- raise/restore/acknowledge, state and event in one transaction;
* :mod:`.intake` -- commit first, then act (liveness, doors), then answer the panel;
* :mod:`.supervision` -- escalation and panel liveness; :mod:`.linkage` -- fire door holds;
* :mod:`.handover` -- the shift handover report across all areas, and the missed-handover watch
  (:mod:`.shifts` -- the shift calendar, pure).
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.alarms.handover import Handover, MissedHandoverWatch, alarm_items
from gateway.alarms.intake import Intake
from gateway.alarms.lifecycle import Lifecycle
from gateway.alarms.linkage import FireLinkage
from gateway.alarms.receivers import RECEIVERS, AlarmReceiver
from gateway.alarms.schema import MIGRATIONS
from gateway.alarms.supervision import Supervision
from gateway.context import GatewayContext

log = logging.getLogger(__name__)


class AlarmsComponent:
    name = "alarms"
    migrations: list[tuple[int, str]] = MIGRATIONS

    # the parts, built in start (they need the context)
    linkage: FireLinkage
    lifecycle: Lifecycle
    supervision: Supervision
    intake: Intake
    handover: Handover
    missed_handover: MissedHandoverWatch

    def __init__(self) -> None:
        self.ctx: GatewayContext | None = None
        self.receivers: dict[str, AlarmReceiver] = {}

    async def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.linkage = FireLinkage(ctx)
        ctx.hold_causes = self.linkage
        self.lifecycle = Lifecycle(ctx, self.linkage)
        self.supervision = Supervision(ctx, report=lambda sig: self.intake.process_internal(sig))
        self.intake = Intake(ctx, self.lifecycle, self.supervision, self.linkage)
        self.handover = Handover(ctx, self.lifecycle, own=self)
        self.missed_handover = MissedHandoverWatch(ctx)
        ctx.handover_sources.append(self)
        for rc in ctx.config.alarm_receivers:
            ctx.devices.declare(rc.id, "receiver")
        await self.supervision.start()
        await self.linkage.reconcile()
        await self.lifecycle.close_acknowledged_once()
        if any(rc.protocol == "sia-dc09" for rc in ctx.config.alarm_receivers):
            await ctx.store.write(self.lifecycle.blocks.load)   # before a panel connects, not in its first commit
        for rc in ctx.config.alarm_receivers:
            receiver = RECEIVERS[rc.protocol](rc, ctx, self.intake)
            self.receivers[rc.id] = receiver
            await receiver.start()
        ctx.supervisor.spawn("alarms.watch", self.supervision.watch)
        ctx.supervisor.spawn("alarms.handover", self.missed_handover.watch)
        ctx.supervisor.spawn("alarms.gauges", self.lifecycle.watch_gauges)

    async def stop(self) -> None:
        for receiver in self.receivers.values():
            try:
                await receiver.stop()
            except Exception:
                log.exception("alarms: closing a receiver failed")

    # ------------------------------------------------------------------ what other parts of the gateway use
    @property
    def ports(self) -> dict[str, int]:
        """Bound TCP port per receiver id (``listen = "...:0"`` in tests)."""
        return {rid: r.port for rid, r in self.receivers.items() if r.port is not None}

    @property
    def stats(self) -> dict[str, int]:
        return self.intake.stats

    def get_alarm(self, alarm_id: int) -> dict[str, Any] | None:
        return self.lifecycle.get(alarm_id)

    def list_alarms(self, state: str | None = "open", limit: int = 500) -> list[dict[str, Any]]:
        return self.lifecycle.list(state, limit)

    async def acknowledge(self, alarm_id: int, by: str, role: str, note: str) -> dict[str, Any]:
        return await self.lifecycle.acknowledge(alarm_id, by, role, note)

    def handover_items(self) -> dict[str, Any]:
        """Open and unacknowledged alarms and open supervision faults, for the shift handover report."""
        return {**alarm_items(self.lifecycle), **self.supervision.handover_items()}
