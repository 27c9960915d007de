"""Valves: a write that is confirmed by reading the registers back, then recorded with its event and audit.

Actions: ``open``, ``close`` and, where the profile has a flow-limit register
(``[valve.restrict]``), ``restrict`` (open with the flow capped by the meter; DOMAIN.md:
"when a household is in arrears the company may restrict and finally stop its supply
(and restore it once paid)"). A valve command goes into its bus's urgent lane (ahead of
polls, see ``scheduler.py``), so it waits for at most the request already on the line.
It is only reported done when the meter reads back the state commanded; any other
outcome is refused with a code (``no_valve``, ``restrict_unsupported``,
``valve_not_confirmed``, ``meter_unreachable``) and audited as a failure. The state
row, the ``meter.valve`` event and the audit row are one transaction. The commanded
state is what every later poll's read-back is compared with (``rules.valve_check``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from drivers.modbus import ModbusError
from gateway.context import GatewayContext
from gateway.errors import Conflict, DomainError, NotFound
from gateway.events import Emit, format_ts
from gateway.metering import register
from gateway.metering.models import ACTION_STATE, Job, MeterRuntime

if TYPE_CHECKING:  # pragma: no cover - typing only
    from drivers.modbus.transport import ModbusBus


def valve_states(m: MeterRuntime) -> tuple[str, ...]:
    """The states this meter's valve can be brought to (a CJ/T 188 valve only opens and closes)."""
    if m.profile is not None and m.profile.valve is not None:
        return tuple(m.profile.valve.states)
    return ("open", "closed") if m.has_valve else ()


def find_meter(meters: Mapping[str, MeterRuntime], meter_id: str) -> MeterRuntime:
    m = meters.get(meter_id)
    if m is None:
        raise NotFound("not_found", f"no meter {meter_id!r}", meter=meter_id)
    return m


async def drive_valve(bus: ModbusBus, m: MeterRuntime, state: str) -> str:
    """On the bus (the scheduler calls it): write what brings the valve to ``state``, read it back; the state."""
    assert m.profile is not None and m.profile.valve is not None
    v = m.profile.valve
    for address, value in v.writes(state):
        await bus.write(address, value, m.cfg.device_id)
    raw = (await bus.read("holding", v.read_address, 1, m.cfg.device_id))[0]
    limit = None
    if v.restrict is not None:
        limit = (await bus.read("holding", v.restrict.read_address, 1, m.cfg.device_id))[0]
    got = v.state_of(raw, limit)
    if got != state:
        raise Conflict("valve_not_confirmed", f"meter {m.id}: valve reads {got} (register {raw}"
                       f"{'' if limit is None else f', limit {limit}'}), commanded {state}",
                       meter=m.id, commanded=state, read=got, raw=raw)
    return got


class Valves:
    """Valve commands from HTTP and MQTT."""

    def __init__(self, ctx: GatewayContext, meters: Mapping[str, MeterRuntime],
                 submit: Callable[[Job], bool]) -> None:
        self.ctx = ctx
        self.meters = meters
        self.submit = submit

    async def set(self, meter_id: str, action: str, actor: str, role: str) -> dict[str, Any]:
        """Write the valve register (ahead of polls), read it back, then record event and audit together."""
        m = find_meter(self.meters, meter_id)
        if not m.has_valve:
            what = f"profile {m.cfg.profile}" if m.cfg.protocol == "modbus" else "CJ/T 188, valve = false"
            raise Conflict("no_valve", f"meter {m.id} ({what}) has no valve register", meter=m.id)
        target = ACTION_STATE[action]
        if target not in valve_states(m):
            raise Conflict("restrict_unsupported", f"meter {m.id} has no flow-limit register: it can be opened or "
                           "closed, not restricted", meter=m.id)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.submit(Job("valve", m, target, fut))
        try:
            state: str = await asyncio.wait_for(fut, self.ctx.config.metering.valve_timeout_s)
        except (ModbusError, TimeoutError, DomainError) as exc:
            code = exc.code if isinstance(exc, DomainError) else "meter_unreachable"
            await self.ctx.audit.record(actor, role, "meter.valve", m.id, {"action": action, "ok": False, "error": code})
            if isinstance(exc, DomainError):
                raise
            raise Conflict(code, f"meter {m.id}: valve {action} not confirmed ({type(exc).__name__}: {exc})",
                           meter=m.id) from None
        # from now on every poll's read-back is compared with this state
        m.valve, m.valve_read, m.valve_misreads = state, state, 0
        at = format_ts(self.ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Emit) -> None:
            register.save_valve(conn, m.id, state, at, actor)
            emit("meter.valve", {"meter": m.id, "unit": m.cfg.unit, "state": state, "by": actor})
            self.ctx.audit.insert(conn, actor, role, "meter.valve", m.id, {"action": action, "ok": True})

        await self.ctx.events.transact(txn)
        return {"meter": m.id, "state": state}
