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
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from gateway.errors import Unavailable

if TYPE_CHECKING:  # pragma: no cover - typing only
    from gateway.audit import AuditLog
    from gateway.clock import Clock
    from gateway.commands import CommandRouter
    from gateway.config import GatewayConfig
    from gateway.devices import DeviceRegistry
    from gateway.events import EventLog
    from gateway.metrics import Metrics
    from gateway.store import Store
    from gateway.supervisor import Supervisor
    from gateway.uplink import Uplink


T = TypeVar("T")


@runtime_checkable
class Component(Protocol):
    """A part of the gateway that knows one area of the estate's rules.

    Its HTTP routes live in ``gateway/api/routes/<name>.py`` (mounted when the component runs).
    """

    name: str
    #: per-component schema migrations: list of (version, sql script), versions 1, 2, 3...
    migrations: list[tuple[int, str]]

    async def start(self, ctx: GatewayContext) -> None:
        """Register commands, spawn driver tasks; return quickly."""

    async def stop(self) -> None:
        """Stop drivers; pending events are already committed."""


class DoorHolds(Protocol):
    """What fire linkage may do to doors (the access area provides it, alarms use it)."""

    async def hold_unlocked(self, door_ids: list[str], reason: str, token: str) -> None:
        """Release these doors and keep them released under ``token`` until :meth:`release_hold`."""

    async def release_hold(self, token: str) -> None:
        """End the hold ``token``; doors with no other hold relock."""


class HoldCauses(Protocol):
    """What the access area may ask about why doors are held (the alarms area answers, for its ``alarm-<id>``
    holds): the door JSON shows the cause, and an operator's relock is refused while it is still active."""

    def hold_cause(self, token: str) -> dict[str, Any] | None:
        """``{"alarm", "kind", "since", "state", "active", ...}`` for a hold this area made; None if not its token."""


class HandoverSource(Protocol):
    """An area that contributes open items to the shift handover report."""

    name: str

    def handover_items(self) -> dict[str, Any]:
        """This area's open items (offline devices, held doors...) as JSON-ready values."""


@dataclass
class GatewayContext:
    config: GatewayConfig
    store: Store
    events: EventLog
    commands: CommandRouter
    devices: DeviceRegistry
    supervisor: Supervisor
    metrics: Metrics
    audit: AuditLog
    clock: Clock
    #: components by name ("access", "metering", "alarms", "console"), in start order; other
    #: areas reach them only through the typed seams below or :meth:`area`.
    components: dict[str, Component] = field(default_factory=dict)
    #: uplink (None in unit tests); exposes .state for health
    uplink: Uplink | None = None
    #: set by the access area when it starts: fire linkage holds doors through it
    door_holds: DoorHolds | None = None
    #: set by the alarms area when it starts: why a hold exists and whether its fire is still active
    hold_causes: HoldCauses | None = None
    #: areas that put items in the shift handover report (each appends itself in ``start``)
    handover_sources: list[HandoverSource] = field(default_factory=list)

    def area(self, kind: type[T]) -> T:
        """The running component of this class (503 ``area_not_running`` when this gateway does not run it)."""
        for comp in self.components.values():
            if isinstance(comp, kind):
                return comp
        raise Unavailable("area_not_running", f"this gateway does not run {kind.__name__}")
