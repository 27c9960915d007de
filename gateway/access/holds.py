"""Holds and relocks: doors kept released (fire egress) under a token, and an operator ending a release.

This is the acting half of :mod:`gateway.access.hold_rules` (which decides, without I/O): each change is
stored with its events (and, for a relock, its audit row) in one transaction, and only then are the
locks moved -- so a restart re-applies exactly the holds in force. Fire linkage reaches it through
``ctx.door_holds`` (the :class:`~gateway.access.doors.Doors` forwards); the relock route through
``Doors.relock``. Why a hold was made (the alarm, whether it is still active) comes from
``ctx.hold_causes`` (the alarms area).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from gateway.access import register
from gateway.access.errors import FireActive, NotReleased
from gateway.access.hold_rules import is_fire_active, relock_refusal
from gateway.context import GatewayContext
from gateway.events import Emit, format_ts

if TYPE_CHECKING:  # pragma: no cover - typing only
    from gateway.access.doors import Doors

log = logging.getLogger(__name__)


class Holds:
    """The holds in force (``doors.holds``) changed, stored and applied to the locks."""

    def __init__(self, doors: Doors) -> None:
        self.doors = doors

    @property
    def _ctx(self) -> GatewayContext:
        assert self.doors.ctx is not None, "access component not started"
        return self.doors.ctx

    async def hold_unlocked(self, door_ids: list[str], reason: str, token: str) -> None:
        """Keep doors released (fire egress...) until :meth:`release_hold` with the same token.

        Re-applying a token already in force (a restart, a reconcile) never re-releases a door an
        operator relocked under it (:meth:`HoldMap.doors_to_hold`)."""
        known = [d for d in door_ids if d in self.doors.doors]
        for d in set(door_ids) - set(known):
            log.warning("hold %s: no door %r", token, d)
        known = self.doors.holds.doors_to_hold(token, known)
        before = set(self.doors.held())
        ctx = self._ctx
        now = format_ts(ctx.clock.now())
        newly = [d for d in known if d not in before]

        def txn(conn: sqlite3.Connection, emit: Emit) -> None:
            register.save_hold(conn, token, known, reason, now)
            for d in newly:
                emit("door.unlocked", {"door": d, "reason": reason})

        await ctx.events.transact(txn)
        self.doors.holds.put(token, known, reason)
        for d in known:
            door = self.doors.doors[d]
            door.authorized_until = float("inf")
            if door.held_task is not None:
                door.held_task.cancel()
                door.held_task = None
            self.doors.relay(door, on=True)
            self.doors.refresh(door)

    async def release_hold(self, token: str) -> None:
        """End a hold; doors no other hold keeps are relocked (``door.relocked``)."""
        if token not in self.doors.holds:
            return
        freed = self.doors.holds.freed_by_release(token)

        def txn(conn: sqlite3.Connection, emit: Emit) -> None:
            register.delete_hold(conn, token)
            for d in freed:
                emit("door.relocked", {"door": d})

        await self._ctx.events.transact(txn)
        self.doors.holds.remove(token)
        for d in freed:
            self.doors.lock(self.doors.doors[d])

    # ------------------------------------------------------------------ operator relock
    async def relock(self, door_id: str, reason: str, confirm: bool, actor: str, role: str) -> dict[str, Any]:
        """An operator ends a door's release (audited): out of every hold naming it, unlock window ended.

        Refused (409 ``fire_active``) while a fire holding it is still active unless ``confirm``; 409
        ``not_released`` when nothing keeps it released. The door's other holds' doors stay released.
        """
        door = self.doors.find(door_id)
        tokens = self.doors.holds.tokens_of(door.id)
        unlocking = time.monotonic() < door.unlock_until
        if not tokens and not unlocking:
            raise NotReleased("not_released", f"door {door_id} is not released (no hold, no unlock)")
        causes = [self.doors.cause(t) for t in tokens]
        refusal = relock_refusal(causes, confirm)
        if refusal is not None:
            raise FireActive("fire_active", f"door {door_id}: {refusal}",
                             alarms=[c["alarm"] for c in causes if c is not None and "alarm" in c])
        fire_active = is_fire_active(causes)
        changed = self.doors.holds.without(door.id)
        ctx = self._ctx
        now = format_ts(ctx.clock.now())
        data: dict[str, Any] = {"door": door.id, "reason": "operator",
                                "alarms": [c["alarm"] for c in causes if c is not None and "alarm" in c]}
        if fire_active:
            data["fire_active"] = True

        def txn(conn: sqlite3.Connection, emit: Emit) -> None:
            for t, (doors, why) in changed.items():
                register.save_hold(conn, t, doors, why, now)   # kept, without this door: a re-apply skips it
            emit("door.relocked", data)
            ctx.audit.insert(conn, actor, role, "door.relock", door.id,
                             {"reason": reason, "confirm": confirm, "holds": tokens, "fire_active": fire_active})

        await ctx.events.transact(txn)
        for t, (doors, why) in changed.items():
            self.doors.holds.put(t, doors, why)
        if door.relock_task is not None:
            door.relock_task.cancel()
            door.relock_task = None
        log.warning("door %s relocked by %s (%s)%s", door.id, role, "holds " + ",".join(tokens) if tokens
                    else "unlock", ": fire still active, confirmed" if fire_active else "")
        sent = self.doors.lock(door)
        return {"door": door.id, "relocked": True, "holds": tokens, "fire_active": fire_active,
                "relay_command_sent": sent}
