"""FastAPI dependencies that hand a route its area's component, typed.

``Depends(area(AccessComponent))`` finds the running component by its class in the
daemon's context, so a route module is a module-level ``APIRouter`` that never closes
over a component instance and mypy knows what it gets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Request

from gateway.context import GatewayContext

T = TypeVar("T")


async def context(request: Request) -> GatewayContext:
    """``async`` (as every dependency here): FastAPI runs a plain ``def`` dependency in a worker thread, a
    hop per request and an idle thread kept (docs/hardening.md, "Idle memory: what the 60 MB are")."""
    ctx: GatewayContext = request.app.state.ctx
    return ctx


def area(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    async def dependency(request: Request) -> T:
        ctx: GatewayContext = request.app.state.ctx
        return ctx.area(kind)

    dependency.__name__ = f"area_{kind.__name__}"
    return dependency
