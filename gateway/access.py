"""Door access: card register, offline decisions, doors, enrolment by swipe, permission sync.

(Stub: filled in by the access work, issue 4.)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.context import GatewayContext


class AccessComponent:
    name = "access"
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
        """Doors in trouble, for the shift handover report."""
        return {}
