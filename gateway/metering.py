"""Hot-water metering: polling plan per bus, readings, anomalies, quarter-end billing, valves.

(Stub: filled in by the metering work, issue 5.)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.context import GatewayContext


class MeteringComponent:
    name = "metering"
    migrations: list[tuple[int, str]] = []

    def __init__(self) -> None:
        self.ctx: GatewayContext | None = None

    def routes(self) -> APIRouter | None:
        return None

    async def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def stop(self) -> None:
        pass

    def handover_items(self) -> dict[str, Any]:
        """Meters offline or anomalous, for the shift handover report."""
        return {}
