"""HTTP routes, one module per area: ``access``, ``alarms``, ``metering``, ``console`` (+ ``core``).

Each module holds a module-level ``router`` (an ``APIRouter``) whose handlers get their
component through :func:`gateway.api.deps.area` -- no closures over a component, no
``hasattr``. The app mounts an area's routers only when that component runs on this
gateway (a gateway without meters has no ``/meters``). Domain refusals are raised as
:mod:`gateway.errors` and mapped to statuses in one table (``gateway.api.errors``).
"""

from __future__ import annotations

import importlib

from fastapi import APIRouter

#: component name -> the route modules it mounts under /api/v1
AREA_MODULES: dict[str, tuple[str, ...]] = {
    "access": ("gateway.api.routes.access",),
    "alarms": ("gateway.api.routes.alarms", "gateway.api.routes.handover"),
    "metering": ("gateway.api.routes.metering",),
    "console": ("gateway.api.routes.console",),
    "commissioning": ("gateway.api.routes.commissioning",),
}


def area_routers() -> dict[str, list[APIRouter]]:
    """Every area's routers, by component name."""
    out: dict[str, list[APIRouter]] = {}
    for name, modules in AREA_MODULES.items():
        for module in modules:
            out.setdefault(name, []).append(importlib.import_module(module).router)
    return out
