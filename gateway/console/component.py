"""The console as a component: wires the live-event hub and the page renderer to the daemon.

Routes: ``gateway/api/routes/console.py`` (the stream, the latest events and chart data under /api/v1) and
``gateway/api/routes/pages.py`` (login and the page at /).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gateway.api.auth import Principal
from gateway.console.history import meter_history
from gateway.console.pages import PageRenderer
from gateway.console.recent import recent_events
from gateway.console.stream import StreamHub
from gateway.context import GatewayContext


class ConsoleComponent:
    name = "console"
    migrations: list[tuple[int, str]] = []

    def __init__(self) -> None:
        self.ctx: GatewayContext | None = None
        self.hub = StreamHub()
        self.pages = PageRenderer(None)

    async def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.pages = PageRenderer(ctx.config)
        self.hub.attach(ctx.events, ctx.metrics)

    async def stop(self) -> None:
        self.hub.close()

    @property
    def clients(self) -> int:
        return len(self.hub.clients)

    def stream(self, role: str, last_seq: int | None) -> AsyncIterator[str]:
        return self.hub.stream(role, last_seq)

    def render_console(self, who: Principal, lang: str, csrf: str) -> str:
        return self.pages.render_console(who, lang, csrf)

    def meter_history(self, meter: str, limit: int) -> list[dict[str, Any]]:
        assert self.ctx is not None
        return meter_history(self.ctx.store, meter, limit)

    def recent_events(self, role: str, limit: int) -> list[dict[str, Any]]:
        assert self.ctx is not None
        return recent_events(self.ctx.store, role, limit)

    async def audit(self, who: Principal, action: str) -> None:
        if self.ctx is not None:
            await self.ctx.audit.record(who.name, who.role, action, "/", {})

    def count(self, metric: str) -> None:
        if self.ctx is not None:
            self.ctx.metrics.inc(metric)
