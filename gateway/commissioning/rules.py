"""The walk's rules, pure: which steps each device needs, and which event proves which step.

No I/O, no clock, no store: :func:`plan` turns the site's config and a scope into the devices and
steps of a run; :func:`observe` turns one recorded event into the parts of steps it proves;
:func:`complete` says whether a step's parts are all there. The tracker (``walk.py``) feeds them the
event flow; the tests feed them dictionaries.

What proves what (docs/commissioning.md has the same table for technicians):

* door ``grant``: a card granted there (``access.granted``) and the lock released on it: the door opened
  within the unlock window after the grant (``door.opened`` with ``authorized``, at most the door's
  ``unlock_s`` + 1 s after the grant: a door held open by a schedule is "authorized" too), or a ``door.unlocked``
  with reason ``card``. This build records the relay pulse of a grant as no event of its own, and the
  door opening on the grant is the stronger proof: the relay moved *and* the lock let go;
* door ``contact``: the contact seen open (``door.opened``) and then closed (``door.closed``);
* door ``granted`` instead of ``grant`` and no ``contact`` / ``held_open``, where the reader reports no door
  contact (serial and Wiegand readers: only OSDP readers report their inputs): a card granted there;
* door ``refuse``: a card refused there (``access.denied``);
* door ``held_open``: its held-open alarm raised (``door.held_open``); only where ``held_open_s`` > 0;
* reader ``online``: online now, back online (``device.online``), or a card read at its door;
* reader ``secure``: the OSDP secure channel up, only where a ``scbk_file`` is configured;
* meter ``reading``: a reading that raised no anomaly (``meter.reading`` without ``meter.anomaly``);
* meter ``valve``: a valve command confirmed by reading the valve back (``meter.valve``); only with a valve;
* alarm zone ``signal``: a real signal from the zone (``alarm.raised``) and its restore; or a test from the
  zone on its own: a walk-test report (``alarm.test_received``) or a ``test`` alarm, which no panel restores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.commissioning.models import Observation, Planned, Step
from gateway.config import GatewayConfig
from gateway.errors import Conflict, Invalid

#: what of a reading the report keeps (a reading has a dozen values; these say "in range")
READING_KEYS = ("total_m3", "flow_m3h", "temp_c", "supply_temp_c", "heat_kwh")
#: how long after its unlock time a door opening still counts as opening on the grant (docs/commissioning.md)
GRANT_SLACK_S = 1.0


def zone_id(receiver: str, zone: int) -> str:
    return f"{receiver}/{zone}"


def meter_building(unit: str) -> str:
    """A household unit "3-1-0201" is in building "3" (the console's meters view groups the same way)."""
    return unit.split("-")[0] if unit else ""


@dataclass(frozen=True)
class SiteIndex:
    """The site as the rules need it: devices by id, with the links events do not carry."""

    devices: dict[str, Planned]
    door_reader: dict[str, str] = field(default_factory=dict)
    zones: dict[tuple[str, int], str] = field(default_factory=dict)
    #: door id -> its ``unlock_s`` (the grant's window is this + GRANT_SLACK_S)
    unlock_s: dict[str, float] = field(default_factory=dict)

    def buildings(self) -> set[str]:
        return {d.building for d in self.devices.values()}


def site_index(cfg: GatewayConfig, has_valve: Mapping[str, bool]) -> SiteIndex:
    """Every device of the site with the steps it needs. ``has_valve``: meter id -> it has a valve
    (the metering area knows from the meter's profile)."""
    devices: dict[str, Planned] = {}
    reader_door: dict[str, Any] = {}
    drivers = {r.id: r.driver for r in cfg.readers}
    for d in cfg.doors:
        if drivers.get(d.reader) == "osdp":   # the reader reports the door contact
            steps: tuple[str, ...] = ("grant", "contact", "refuse") + (("held_open",) if d.held_open_s > 0 else ())
        else:                                 # no contact to see: the grant is what the gateway can prove
            steps = ("granted", "refuse")
        devices[d.id] = Planned(d.id, "door", d.building, d.name or d.id, steps)
        reader_door.setdefault(d.reader, d)
    for r in cfg.readers:
        door = reader_door.get(r.id)
        secure = r.driver == "osdp" and bool(r.scbk_file)
        devices[r.id] = Planned(r.id, "reader", door.building if door else "", door.name if door else r.id,
                                ("online",) + (("secure",) if secure else ()))
    for m in cfg.meters:
        devices[m.id] = Planned(m.id, "meter", meter_building(m.unit), m.unit,
                                ("reading",) + (("valve",) if has_valve.get(m.id) else ()))
    zones = {}
    for z in cfg.alarm_zones:
        zid = zone_id(z.receiver, z.zone)
        devices[zid] = Planned(zid, "zone", z.building, z.name or zid, ("signal",))
        zones[(z.receiver, z.zone)] = zid
    return SiteIndex(devices, {d.id: d.reader for d in cfg.doors}, zones, {d.id: d.unlock_s for d in cfg.doors})


def plan(index: SiteIndex, scope: str, buildings: Iterable[str] = (), devices: Iterable[str] = ()) -> list[Planned]:
    """The devices a run covers: the whole site, some buildings, or named devices (refused: unknown names,
    nothing to check)."""
    if scope == "site":
        chosen = list(index.devices.values())
    elif scope == "building":
        wanted = list(dict.fromkeys(buildings))
        unknown = [b for b in wanted if b not in index.buildings()]
        if unknown:
            raise Invalid("unknown_building", f"no device is in building(s) {', '.join(map(repr, unknown[:10]))}",
                          buildings=unknown[:10])
        chosen = [d for d in index.devices.values() if d.building in wanted]
    else:
        wanted = list(dict.fromkeys(devices))
        unknown = [d for d in wanted if d not in index.devices]
        if unknown:
            raise Invalid("unknown_device", f"no door, reader, meter or alarm zone {', '.join(map(repr, unknown[:10]))}",
                          devices=unknown[:10])
        chosen = [index.devices[d] for d in wanted]
    if not chosen:
        raise Invalid("empty_scope", "this scope holds no device to commission (name a building or some devices)")
    return chosen


def _ev(type_: str, seq: int, ts: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_, "seq": seq, "at": ts, **{k: v for k, v in extra.items() if v is not None}}


def observe(index: SiteIndex, type_: str, data: Mapping[str, Any], seq: int = 0, ts: str = "") -> list[Observation]:
    """The parts of steps this event proves (empty for events no step cares about)."""
    ev = _ev(type_, seq, ts)
    door = data.get("door")
    if type_ == "door.unlocked" and data.get("reason") == "card":
        return [Observation(str(door), "grant", "unlocked", ev)]
    if type_ in ("access.granted", "access.denied"):
        card = data.get("card")
        evidence = {**ev, "card": card, "reason": data.get("reason")}
        window = {"window_s": index.unlock_s.get(str(door), 0.0) + GRANT_SLACK_S}
        obs = ([Observation(str(door), "grant", "granted", {**evidence, **window}),
                Observation(str(door), "granted", "granted", evidence)]
               if type_ == "access.granted" else [Observation(str(door), "refuse", "denied", evidence)])
        reader = index.door_reader.get(str(door))
        return obs + ([Observation(reader, "online", "read", {**ev, "door": door})] if reader else [])
    if type_ in ("door.opened", "door.closed"):
        obs = [Observation(str(door), "contact", type_.split(".")[1], ev)]
        if type_ == "door.opened" and data.get("authorized") is True:
            obs.append(Observation(str(door), "grant", "opened", ev))
        return obs
    if type_ == "door.held_open":
        return [Observation(str(door), "held_open", "held_open", {**ev, "seconds": data.get("seconds")})]
    if type_ == "device.online" and data.get("kind") == "reader":
        return [Observation(str(data.get("device")), "online", "online", ev)]
    return _observe_meters_zones(index, type_, data, ev)


def _observe_meters_zones(index: SiteIndex, type_: str, data: Mapping[str, Any], ev: dict[str, Any]) -> list[Observation]:
    meter = str(data.get("meter"))
    if type_ == "meter.reading":
        raw = data.get("values")
        values: dict[str, Any] = raw if isinstance(raw, dict) else {}
        kept = {k: values[k] for k in READING_KEYS if k in values}
        return [Observation(meter, "reading", "reading", {**ev, "values": kept})]
    if type_ == "meter.anomaly":
        return [Observation(meter, "reading", "anomaly", {**ev, "kind": data.get("kind")})]
    if type_ == "meter.valve":
        return [Observation(meter, "valve", "confirmed", {**ev, "state": data.get("state")})]
    if type_ in ("alarm.raised", "alarm.restored", "alarm.test_received"):
        zone = data.get("zone")
        zid = index.zones.get((str(data.get("receiver")), zone)) if isinstance(zone, int) else None
        if zid is None:
            return []
        part = {"alarm.raised": "raised", "alarm.restored": "restored"}.get(type_, "test")
        return [Observation(zid, "signal", part, {**ev, "alarm": data.get("alarm"), "kind": data.get("kind"),
                                                  "code": data.get("code")})]
    return []


def settle(observations: list[Observation]) -> list[Observation]:
    """One commit's observations, settled: a reading that raised an anomaly in the same commit is not "in range"."""
    anomalous = {o.device for o in observations if o.step == "reading" and o.part == "anomaly"}
    return [o for o in observations if not (o.part == "reading" and o.device in anomalous)]


def device_observations(index: SiteIndex, devices: Iterable[Mapping[str, Any]], ts: str) -> list[Observation]:
    """What the device registry shows right now: readers online, and their secure channel up."""
    out = []
    for d in devices:
        planned = index.devices.get(str(d.get("id")))
        if planned is None or planned.kind != "reader" or d.get("online") is not True:
            continue
        out.append(Observation(planned.device, "online", "online_now", {"type": "device.state", "at": ts,
                                                                         "since": d.get("since") or None}))
        if "secure" in planned.steps and d.get("secure_channel") is True:
            out.append(Observation(planned.device, "secure", "secure", {"type": "device.state", "at": ts}))
    return out


#: the parts that make each step done (any one of a tuple's alternatives)
_DONE_WHEN: dict[str, tuple[str, ...]] = {
    "granted": ("granted",), "refuse": ("denied",), "held_open": ("held_open",),
    "online": ("online", "online_now", "read"), "secure": ("secure",), "reading": ("reading",),
    "valve": ("confirmed",),
}


def complete(step: str, parts: Mapping[str, Mapping[str, Any]]) -> bool:
    """Are the parts seen so far enough to call ``step`` done?"""
    if step == "contact":
        opened, closed = parts.get("opened"), parts.get("closed")
        return bool(opened and closed and closed.get("seq", 0) > opened.get("seq", 0))
    if step == "grant":
        return "unlocked" in parts or _opened_on_grant(parts.get("granted"), parts.get("opened"))
    if step == "signal":
        raised, restored = parts.get("raised"), parts.get("restored")
        if "test" in parts or raised and raised.get("kind") == "test":
            return True   # a walk test, or a test alarm (which no panel restores), proves the zone on its own
        return bool(raised and restored and restored.get("alarm") == raised.get("alarm"))
    return any(p in parts for p in _DONE_WHEN.get(step, ()))


def _opened_on_grant(granted: Mapping[str, Any] | None, opened: Mapping[str, Any] | None) -> bool:
    """The door opened after the grant and within its window (``unlock_s`` + 1 s): an ``authorized`` opening
    long after an old grant is the door held open by a schedule or an operator, not the card."""
    if not granted or not opened or opened.get("seq", 0) <= granted.get("seq", 0):
        return False
    window = granted.get("window_s")
    try:
        elapsed = (datetime.fromisoformat(str(opened.get("at"))) - datetime.fromisoformat(str(granted.get("at"))))
    except ValueError:
        return False   # no usable times: the window cannot be checked
    return isinstance(window, int | float) and elapsed.total_seconds() <= window


def apply(step: Step, obs: Observation) -> bool:
    """Record ``obs`` on a step still open to it; True when the step changed (it may now be done).

    A step marked ``na`` or ``failed`` that the gateway then sees work becomes ``done`` (the mark stays in
    ``seen.marked``: the report shows both); a done step keeps what proved it."""
    if step.status == "done":
        return False
    parts = dict(step.seen.get("parts", {}))
    if obs.part == "closed" and "opened" not in parts or obs.part == "opened" and obs.step == "grant" \
            and "granted" not in parts:
        return False  # a close before any open proves nothing about the contact
    if obs.part == "online_now" and "online_now" in parts:
        return False
    parts[obs.part] = obs.evidence
    if obs.part == "raised":
        parts.pop("restored", None)  # a new signal: wait for its own restore
    step.seen = {**step.seen, "parts": parts}
    if complete(step.step, parts):
        if step.status in ("na", "failed"):
            step.seen["marked"] = {"status": step.status, "reason": step.reason, "by": step.by, "at": step.at}
        step.status, step.at, step.by, step.reason = "done", obs.evidence.get("at"), "gateway", ""
    return True


def check_mark(step: Step, status: str, reason: str) -> None:
    """May a technician mark ``step`` so? ``done`` never (the gateway sees it), a done step never, always a reason."""
    if status == "done":
        raise Invalid("done_not_by_hand", "a step is done when the gateway sees it happen; mark it na or failed "
                      "with a reason, or do it again", device=step.device, step=step.step)
    if step.status == "done":
        raise Conflict("step_done", f"{step.device} {step.step} was already seen done at {step.at}",
                       device=step.device, step=step.step)
    if not reason.strip():
        raise Invalid("reason_required", "say why the step is not applicable or failed", device=step.device,
                      step=step.step)


def summarize(steps: Iterable[Step]) -> dict[str, Any]:
    """Counts by status, per building, and the result: ``accepted`` (all done or n/a), ``failed`` (any failure),
    ``incomplete`` (steps left)."""
    counts = dict.fromkeys(("done", "failed", "na", "pending"), 0)
    buildings: dict[str, dict[str, int]] = {}
    devices = set()
    for s in steps:
        counts[s.status] = counts.get(s.status, 0) + 1
        b = buildings.setdefault(s.building, dict.fromkeys(("done", "failed", "na", "pending"), 0))
        b[s.status] = b.get(s.status, 0) + 1
        devices.add(s.device)
    result = "failed" if counts["failed"] else "incomplete" if counts["pending"] else "accepted"
    return {"result": result, "devices": len(devices), "steps": counts,
            "buildings": {k: buildings[k] for k in sorted(buildings)}}
