"""Fire linkage: a fire or smoke alarm holds its zone's egress doors released until the alarm closes.

It works offline: the hold is asked of the access area right after the alarm's commit (token
``alarm-<id>``), released when the alarm closes (restored *and* acknowledged), and holds still
owed are re-applied at start -- so a crash in between can never leave egress doors locked. The
doors are reached only through the typed :class:`gateway.context.DoorHolds` seam.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.alarms import store as db
from gateway.context import DoorHolds, GatewayContext

log = logging.getLogger(__name__)

#: how long the receive path waits for the access area to release doors before answering the panel
LINKAGE_WAIT_S = 3.0


def hold_token(alarm_id: int) -> str:
    return f"alarm-{alarm_id}"


class FireLinkage:
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

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
