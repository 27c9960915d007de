"""Valves: a write that is confirmed by reading the register back, then recorded with its event and audit.

A valve command goes into its bus's urgent lane (ahead of polls, see ``scheduler.py``),
so it waits for at most the request already on the line. It is only reported done
when the meter reads back the value written; any other outcome is refused with a
code (``no_valve``, ``valve_not_confirmed``, ``meter_unreachable``) and audited as a
failure. The state row, the ``meter.valve`` event and the audit row are one transaction.
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
from gateway.metering.models import Job, MeterRuntime

if TYPE_CHECKING:  # pragma: no cover - typing only
    from drivers.modbus.transport import ModbusBus


def find_meter(meters: Mapping[str, MeterRuntime], meter_id: str) -> MeterRuntime:
    m = meters.get(meter_id)
    if m is None:
        raise NotFound("not_found", f"no meter {meter_id!r}", meter=meter_id)
    return m


async def drive_valve(bus: ModbusBus, m: MeterRuntime, action: str) -> str:
    """On the bus (the scheduler calls it): write the open/close value, read it back; the new state."""
    assert m.profile is not None and m.profile.valve is not None
    v = m.profile.valve
    want = v.open if action == "open" else v.close
    await bus.write(v.address, want, m.cfg.device_id)
    got = (await bus.read("holding", v.read_address, 1, m.cfg.device_id))[0]
    if got != want:
        raise Conflict("valve_not_confirmed", f"meter {m.id}: valve register reads {got}, wrote {want}",
                       meter=m.id, wrote=want, read=got)
    return "open" if action == "open" else "closed"


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
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.submit(Job("valve", m, action, fut))
        try:
            state: str = await asyncio.wait_for(fut, self.ctx.config.metering.valve_timeout_s)
        except (ModbusError, TimeoutError, DomainError) as exc:
            code = exc.code if isinstance(exc, DomainError) else "meter_unreachable"
            await self.ctx.audit.record(actor, role, "meter.valve", m.id, {"action": action, "ok": False, "error": code})
            if isinstance(exc, DomainError):
                raise
            raise Conflict(code, f"meter {m.id}: valve {action} not confirmed ({type(exc).__name__}: {exc})",
                           meter=m.id) from None
        at = format_ts(self.ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Emit) -> None:
            register.save_valve(conn, m.id, state, at, actor)
            emit("meter.valve", {"meter": m.id, "unit": m.cfg.unit, "state": state, "by": actor})
            self.ctx.audit.insert(conn, actor, role, "meter.valve", m.id, {"action": action, "ok": True})

        await self.ctx.events.transact(txn)
        m.valve = state
        return {"meter": m.id, "state": state}
