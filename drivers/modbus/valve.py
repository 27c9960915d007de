"""A meter's valve as its profile declares it: the values to write, and what the registers read back means.

Three states: ``open``, ``closed`` and, where the meter supports it, ``restricted``.

* **Open / closed** is a command register (Modbus function 6): e.g. 1 = open, 2 = close
  (the Kaifeng Xintai map: register 0x001C, see ``gateway/meters/xintai-water.toml``).
  Many meters read their valve *status* back in that register as bit flags (Xintai:
  0x0001 open, 0x0002 closed, 0x0004 abnormal, 0x0008 battery low), so the state is
  compared under ``state_mask``: a low battery bit must not make an open valve unreadable.
* **Restricted** is a flow-limit register (``[valve.restrict]``): the valve stays open and
  the meter itself caps the flow at the value written (e.g. Belimo's Vmax register,
  0.00-100.00 % of nominal flow, VAV-Compact Modbus register list no. 107). The meter
  enforces the cap on its own, so a restricted household keeps its (reduced) supply
  while the gateway or the bus is down; a gateway-timed supply window would stop
  switching, and wear the valve motor, instead.

Protocol only: what the raw registers mean. Whether a state is the commanded one is the gateway's rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

VALVE_KEYS = {"address", "open", "close", "state_address", "state_mask", "restrict"}
RESTRICT_KEYS = {"address", "value", "unrestricted", "state_address"}
STATES = ("open", "closed", "restricted")

#: reports one problem: (dotted key, message)
Bad = Callable[[str, str], None]


@dataclass(frozen=True)
class Restrict:
    """A flow-limit register: ``value`` restricts, ``unrestricted`` lifts the limit."""

    address: int
    value: int
    unrestricted: int
    state_address: int | None = None

    @property
    def read_address(self) -> int:
        return self.address if self.state_address is None else self.state_address


@dataclass(frozen=True)
class Valve:
    address: int
    open: int = 1
    close: int = 2
    state_address: int | None = None
    #: the bits of the state register that say open/closed (others: battery, alarms)
    state_mask: int = 0xFFFF
    restrict: Restrict | None = None

    @property
    def read_address(self) -> int:
        return self.address if self.state_address is None else self.state_address

    @property
    def states(self) -> tuple[str, ...]:
        """The states this valve can be commanded to."""
        return STATES if self.restrict is not None else STATES[:2]

    def writes(self, state: str) -> list[tuple[int, int]]:
        """(register, value) to write, in order, to bring the valve to ``state``.

        Restrict: the limit first, then open, so a closed valve never opens at full flow.
        Open: lift the limit, then open. Close: only the valve (the limit is lifted at the next open).
        """
        if state == "closed":
            return [(self.address, self.close)]
        r = self.restrict
        if state == "restricted":
            if r is None:
                raise ValueError("this valve has no flow-limit register")
            return [(r.address, r.value), (self.address, self.open)]
        if state == "open":
            return ([(r.address, r.unrestricted)] if r is not None else []) + [(self.address, self.open)]
        raise ValueError(f"unknown valve state {state!r}")

    def state_of(self, raw: int, limit: int | None = None) -> str:
        """What the state register (and the limit register) read: open, closed, restricted or unknown."""
        bits = raw & self.state_mask
        if bits == self.close & self.state_mask:
            return "closed"
        if bits != self.open & self.state_mask:
            return "unknown"
        r = self.restrict
        if r is None or limit is None or limit == r.unrestricted:
            return "open"
        return "restricted" if limit == r.value else "unknown"  # a limit nobody here wrote


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _or(raw: dict[str, Any], key: str, default: int) -> int:
    """The key's value, or ``default`` when it is absent (or null: not TOML, but a parsed table may say so)."""
    v = raw.get(key)
    return default if v is None else int(v)


def _registers(raw: dict[str, Any], keys: tuple[str, ...], required: tuple[str, ...], where: str, bad: Bad) -> bool:
    ok = True
    for k in keys:
        v = raw.get(k)
        if k in required and v is None:
            bad(f"{where}.{k}", "required key is missing")
            ok = False
        elif v is not None and (not _int(v) or not 0 <= v <= 0xFFFF):
            bad(f"{where}.{k}", "must be an integer 0..65535")
            ok = False
    return ok


def parse_valve(raw: Any, bad: Bad) -> Valve | None:
    """The ``[valve]`` table (with its optional ``[valve.restrict]``), every problem reported through ``bad``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        bad("valve", "must be a table")
        return None
    unknown = [k for k in raw if k not in VALVE_KEYS]
    for k in unknown:
        bad(f"valve.{k}", "unknown key")
    ok = _registers(raw, ("address", "open", "close", "state_address", "state_mask"), ("address",), "valve", bad)
    # past _registers every value present is an int in range; absent (or null) ones take their defaults
    mask, open_, close = (_or(raw, "state_mask", 0xFFFF), _or(raw, "open", 1), _or(raw, "close", 2)) if ok else (0, 0, 0)
    if ok and (open_ & mask) == (close & mask):
        bad("valve.close", "open and close values must differ (under state_mask)")
        ok = False
    restrict = _parse_restrict(raw.get("restrict"), bad)
    if not ok or unknown or (raw.get("restrict") is not None and restrict is None):
        return None
    return Valve(address=raw["address"], open=open_, close=close,
                 state_address=raw.get("state_address"), state_mask=mask, restrict=restrict)


def _parse_restrict(raw: Any, bad: Bad) -> Restrict | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        bad("valve.restrict", "must be a table")
        return None
    unknown = [k for k in raw if k not in RESTRICT_KEYS]
    for k in unknown:
        bad(f"valve.restrict.{k}", "unknown key")
    ok = _registers(raw, ("address", "value", "unrestricted", "state_address"), ("address", "value", "unrestricted"),
                    "valve.restrict", bad)
    if ok and raw["value"] == raw["unrestricted"]:
        bad("valve.restrict.value", "the restricted value must differ from the unrestricted one")
        ok = False
    if not ok or unknown:
        return None
    return Restrict(address=raw["address"], value=raw["value"], unrestricted=raw["unrestricted"],
                    state_address=raw.get("state_address"))
