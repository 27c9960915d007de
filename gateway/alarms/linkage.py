"""Fire linkage: a fire or smoke alarm holds egress doors released until the alarm closes.

Which doors (:func:`place_fire`, pure): a fire the gateway can place -- a zone in ``[[alarm_zones]]``
with a building or doors -- releases that zone's ``unlock_doors`` and every egress door of its
building. A fire it cannot place (a zone nobody mapped, a system-level fire, the transmitter's own
fire status: zone 0 unless mapped) releases every egress door of the site, or of the panel's
building where the receiver says ``unplaced_fire = "building"``. Not knowing where a fire is must
never mean keeping people locked in (DOMAIN: fire alarm in a building releases its egress doors).

It works offline: the hold is asked of the access area right after the alarm's commit (token
``alarm-<id>``), released when the alarm closes (restored *and* acknowledged), and holds still
owed are re-applied at start -- so a crash in between can never leave egress doors locked. The
doors are reached only through the typed :class:`gateway.context.DoorHolds` seam.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gateway.alarms import store as db
from gateway.alarms.rules import FIRE_KINDS
from gateway.alarms.signals import Signal
from gateway.config import AlarmReceiverConfig, AlarmZoneConfig, DoorConfig
from gateway.context import DoorHolds, GatewayContext

log = logging.getLogger(__name__)

#: how long the receive path waits for the access area to release doors before answering the panel
LINKAGE_WAIT_S = 3.0


def hold_token(alarm_id: int) -> str:
    return f"alarm-{alarm_id}"


@dataclass(frozen=True)
class Placement:
    """The doors a fire releases and how it was placed: ``zone`` (mapped), or unplaced (``building``/``site``)."""

    doors: list[str]
    scope: Literal["zone", "building", "site"]


def placed_zone(zone: AlarmZoneConfig | None) -> bool:
    """A mapped zone places a fire when it names a building or doors (a name alone says nothing of where)."""
    return zone is not None and bool(zone.unlock_doors or zone.building)


def place_fire(zone: AlarmZoneConfig | None, receiver: AlarmReceiverConfig | None,
               doors: Sequence[DoorConfig]) -> Placement:
    """The doors a fire releases (pure): see the module docstring for the rule."""
    if zone is not None and placed_zone(zone):
        held = list(zone.unlock_doors)
        held += [d.id for d in doors if d.egress and zone.building and d.building == zone.building
                 and d.id not in held]
        return Placement(held, "zone")
    egress = [d for d in doors if d.egress]
    if receiver is not None and receiver.unplaced_fire == "building":
        in_building = [d.id for d in egress if d.building == receiver.building]
        if in_building:   # none (config changed under us): the whole site rather than nobody
            return Placement(in_building, "building")
    return Placement([d.id for d in egress], "site")


class FireLinkage:
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.receivers = {r.id: r for r in ctx.config.alarm_receivers}
        self.zones = {(z.receiver, z.zone): z for z in ctx.config.alarm_zones}

    def doors_for(self, s: Signal, zone: AlarmZoneConfig | None) -> list[str]:
        """The doors a new alarm from ``s`` holds: none unless it is a fire (fire or smoke)."""
        if s.kind not in FIRE_KINDS:
            return []
        p = place_fire(zone, self.receivers.get(s.receiver), self.ctx.config.doors)
        if p.scope != "zone":
            log.warning("%s from %s account %s zone %d is not placed by [[alarm_zones]]: releasing every egress "
                        "door of the %s (%d)", s.kind, s.receiver, s.account, s.zone, p.scope, len(p.doors))
        return p.doors

    def hold_cause(self, token: str) -> dict[str, Any] | None:
        """Why ``alarm-<id>`` holds doors, for the door JSON and the relock rule (:class:`HoldCauses`)."""
        prefix, _, num = token.partition("-")
        if prefix != "alarm" or not num.isdigit():
            return None
        alarm = db.get_alarm(self.ctx.store, int(num))
        if alarm is None:
            return None
        zone = self.zones.get((alarm["receiver"], alarm["zone"]))
        receiver = self.receivers.get(alarm["receiver"])
        placed = "zone" if placed_zone(zone) else (
            receiver.unplaced_fire if receiver is not None else "site")
        return {"alarm": alarm["id"], "kind": alarm["kind"], "since": alarm["raised_at"], "state": alarm["state"],
                "active": alarm["restored_at"] is None and alarm["state"] != "closed",
                "receiver": alarm["receiver"], "zone": alarm["zone"], "building": alarm["building"],
                "name": alarm["name"], "placed": placed}

    def _doors(self) -> DoorHolds | None:
        return self.ctx.door_holds

    async def hold(self, alarm_id: int, doors: list[str]) -> None:
        holds = self._doors()
        if holds is None:
            log.error("fire alarm %d: doors %s should be released but there is no access component", alarm_id, doors)
            return
        try:
            # shielded: a slow access component must not hold back the panel's ACK for long
            await asyncio.wait_for(asyncio.shield(holds.hold_unlocked(doors, "fire", hold_token(alarm_id))),
                                   LINKAGE_WAIT_S)
            log.warning("fire alarm %d: doors %s held released", alarm_id, ",".join(doors))
        except TimeoutError:
            log.error("fire alarm %d: access still releasing doors %s after %g s", alarm_id, doors, LINKAGE_WAIT_S)
        except Exception:
            log.exception("fire alarm %d: releasing doors %s failed", alarm_id, doors)

    async def release(self, alarm_id: int) -> None:
        """The alarm closed: end its hold (if it has one still owed) and remember that it is done."""
        if not db.hold_pending(self.ctx.store, alarm_id):
            return
        holds = self._doors()
        if holds is not None:
            try:
                await holds.release_hold(hold_token(alarm_id))
            except Exception:
                log.exception("alarm %d: relocking doors failed (will retry at next start)", alarm_id)
                return
        await db.mark_hold_released(self.ctx.store, alarm_id)

    async def reconcile(self) -> None:
        """At start: re-apply holds of active fire alarms, release those of closed ones."""
        for alarm_id, state, doors in db.holds_owed(self.ctx.store):
            if state == "closed":
                await self.release(alarm_id)
            else:
                await self.hold(alarm_id, doors)
