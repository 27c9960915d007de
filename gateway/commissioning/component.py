"""The commissioning walk as a component: builds its parts at start and wires them; no rules, no SQL here.

Parts (one concern a module): ``models`` (steps, statuses, request bodies), ``rules`` (pure: which
steps a device needs, which event proves which step), ``register`` (all SQL, the migrations),
``tracker`` (watches the event flow, checks steps as they happen), ``walk`` (start, mark, finish),
``report`` (the printed acceptance report). HTTP: ``gateway/api/routes/commissioning.py`` (the API)
and ``gateway/api/routes/commissioning_page.py`` (the technicians' page at /commissioning).

Whether a meter has a valve is the metering area's knowledge (its profile): it is asked through
the :class:`MeterStates` seam (``meter_states()``, the same list ``GET /meters`` shows), never imported.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from gateway.commissioning.register import MIGRATIONS
from gateway.commissioning.rules import site_index
from gateway.commissioning.tracker import Tracker
from gateway.commissioning.walk import Walk
from gateway.context import GatewayContext
from gateway.events import format_ts

#: how often device state (readers online, secure channel) is looked at for open runs
TICK_S = 1.0


@runtime_checkable
class MeterStates(Protocol):
    def meter_states(self) -> list[dict[str, Any]]:
        """Every meter's live state; ``has_valve`` says whether a valve step applies."""


class CommissioningComponent:
    name = "commissioning"
    migrations: list[tuple[int, str]] = MIGRATIONS

    ctx: GatewayContext
    tracker: Tracker
    walk: Walk

    def __init__(self) -> None:
        self._unsubscribe: Any = None

    async def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        metering = ctx.components.get("metering")
        meters: list[dict[str, Any]] = metering.meter_states() if isinstance(metering, MeterStates) else []
        index = site_index(ctx.config, {m["id"]: bool(m.get("has_valve")) for m in meters})
        self.tracker = Tracker(index, ctx.store.write, ctx.devices.snapshot, lambda: format_ts(ctx.clock.now()))
        self.walk = Walk(ctx, index, self.tracker)
        self.walk.resume()
        self._unsubscribe = ctx.events.subscribe(self.tracker.on_event)
        ctx.supervisor.spawn("commissioning:devices", lambda: self.tracker.tick(TICK_S))

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if hasattr(self, "tracker"):
            await self.tracker.settle()
