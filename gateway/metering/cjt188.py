"""The CJ/T 188 read and valve path: what the bus scheduler does for a ``protocol = "cjt188"`` meter.

The bus (``drivers/cjt188/link.py``) does the line work (wake-up, one request at a time, the reply that belongs
to the request, bounded by the bus timeout); this module turns a meter's config into requests and replies into
values. The values go to the same readings writer as Modbus values (``meter.reading``, billing, plausibility).

* A reply that arrives but does not decode (a unit of the wrong kind, a non-decimal digit, a short 901F) is a
  ``framing`` failure of that meter, counted and backed off like a garbled Modbus reply, never a crash.
* Fields the meter answers ``FF`` (not supported) are left out of the values; the reading stands.
* Valve: A017 with 55 (open) or 99 (close); done only when the reply's status word shows the state asked for,
  otherwise ``valve_not_confirmed``, as with a Modbus valve that does not read back.
"""

from __future__ import annotations

import itertools
from typing import Any

from drivers.cjt188 import (
    DI_CURRENT,
    DI_VALVE,
    FrameError,
    decode_current,
    read_current_request,
    valve_reply_state,
    valve_request,
)
from drivers.cjt188.link import Cjt188Bus, Cjt188FramingError
from gateway.errors import Conflict
from gateway.metering.models import MeterRuntime

#: SER, the frame sequence number: rises per request on this gateway (meters echo it; nothing depends on it)
_ser = itertools.count()


def _next_ser() -> int:
    return next(_ser) & 0xFF


async def read_values(bus: Cjt188Bus, m: MeterRuntime) -> dict[str, Any]:
    """Ask the meter for its 901F current data; the decoded values (FF fields left out)."""
    cfg = m.cfg
    request = read_current_request(cfg.address, cfg.type_code, _next_ser(), preamble=0,
                                   di_high_first=cfg.di_order == "high-first")
    frame = await bus.exchange(request, cfg.address, DI_CURRENT)
    try:
        data = decode_current(frame)
    except FrameError as exc:
        raise Cjt188FramingError(f"meter {cfg.address}: {exc}") from None
    return dict(data.values)


async def drive_valve(bus: Cjt188Bus, m: MeterRuntime, action: str) -> str:
    """On the bus (the scheduler calls it): A017 open/close, confirmed by the reply's status word."""
    cfg = m.cfg
    action = {"closed": "close"}.get(action, action)  # the scheduler passes the target state
    if action not in ("open", "close"):
        raise Conflict("valve_action_unsupported", f"meter {m.id}: CJ/T 188 valves only open and close "
                       f"(asked {action!r})", meter=m.id, action=action)
    request = valve_request(cfg.address, action == "open", cfg.type_code, _next_ser(), preamble=0,
                            di_high_first=cfg.di_order == "high-first")
    frame = await bus.exchange(request, cfg.address, DI_VALVE)
    try:
        state = valve_reply_state(frame)
    except FrameError as exc:
        raise Cjt188FramingError(f"meter {cfg.address}: {exc}") from None
    want = "open" if action == "open" else "closed"
    if state != want:
        raise Conflict("valve_not_confirmed", f"meter {m.id}: valve reports {state} after {action}",
                       meter=m.id, wrote=action, read=state)
    return want


def make_bus(port: str, *, baud: int, parity: str | None, timeout_s: float, retries: int,
             wakeup: int) -> Cjt188Bus:
    """The bus for a ``transport = "serial"`` config (parity defaults to the standard's E)."""
    return Cjt188Bus(port, baud=baud, parity=parity or "E", timeout_s=timeout_s, retries=retries, wakeup=wakeup)
