"""What a component (access, metering, alarms, console) gets from the daemon.

The daemon builds one :class:`GatewayContext` and hands it to every component's
``start``. Components never reach for globals: everything they may touch is here,
which keeps them testable on their own (build a context over a temp store, no
MQTT, no HTTP).

Rules every component follows:

* State changes go through ``ctx.store.write(fn)`` (the single writer thread);
  events that belong to a change are emitted in the *same* transaction with
  ``ctx.events.transact(fn)`` so a crash can never keep one without the other.
* An event is committed before anything acts on it (relay, ACK to a panel...).
* Blocking I/O (serial ports) runs in threads and hands results to the loop.
* Long-running work is spawned with ``ctx.supervisor.spawn`` so a crash is
  logged, reported and restarted with backoff instead of killing the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - typing only
    from fastapi import APIRouter

    from gateway.commands import CommandRouter
    from gateway.config import GatewayConfig
    from gateway.devices import DeviceRegistry
    from gateway.events import EventLog
    from gateway.metrics import Metrics
    from gateway.store import Store
    from gateway.supervisor import Supervisor
    from gateway.clock import Clock
    from gateway.audit import AuditLog


@runtime_checkable
class Component(Protocol):
    """A part of the gateway that knows one area of the estate's rules."""

    name: str
    #: per-component schema migrations: list of (version, sql script), versions 1, 2, 3...
    migrations: list[tuple[int, str]]

    def routes(self) -> "APIRouter | None":
        """FastAPI router mounted under /api/v1 (None if the component has no routes)."""

    async def start(self, ctx: "GatewayContext") -> None:
        """Register commands, spawn driver tasks; return quickly."""

    async def stop(self) -> None:
        """Stop drivers; pending events are already committed."""


@dataclass
class GatewayContext:
    config: "GatewayConfig"
    store: "Store"
    events: "EventLog"
    commands: "CommandRouter"
    devices: "DeviceRegistry"
    supervisor: "Supervisor"
    metrics: "Metrics"
    audit: "AuditLog"
    clock: "Clock"
    #: components by name ("access", "metering", "alarms", ...) for the few
    #: cross-area calls (fire linkage unlocking doors, handover report).
    components: dict[str, Any] = field(default_factory=dict)
    #: uplink (None in unit tests); exposes .state for health
    uplink: Any = None
