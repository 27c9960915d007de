"""Alarms: lifecycle, escalation, panel supervision, fire linkage, shift handover.

(Stub: filled in by the alarm work, issue 6.)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.context import GatewayContext


class AlarmsComponent:
    name = "alarms"
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
        """Open alarms, for the shift handover report."""
        return {}
