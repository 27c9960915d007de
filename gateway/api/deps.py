"""FastAPI dependencies that hand a route its area's component, typed.

``Depends(area(AccessComponent))`` finds the running component by its class in the
daemon's context, so a route module is a module-level ``APIRouter`` that never closes
over a component instance and mypy knows what it gets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request

from gateway.context import GatewayContext

T = TypeVar("T")


def context(request: Request) -> GatewayContext:
    ctx: GatewayContext = request.app.state.ctx
    return ctx


def area(kind: type[T]) -> Callable[[Request], T]:
    def dependency(request: Request) -> T:
        return context(request).area(kind)

    dependency.__name__ = f"area_{kind.__name__}"
    return dependency
