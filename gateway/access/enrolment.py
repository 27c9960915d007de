"""Provisioning at the door: a technician starts an enrolment, the next UNKNOWN card swiped there becomes the card.

One pending enrolment per door (``enrolment_pending`` otherwise), waiting
``[access] enrolment_timeout_s``; the door's reader shows amber meanwhile; it can be cancelled.
Only a card the register does not know is taken: residents passing meanwhile are decided as
always (:mod:`gateway.access.decisions`), so an enrolment never locks a household out and a
revoked card swiped there is still denied and recorded. The swipe issues the card with the spec
the technician gave (checked again then: the site may have changed); if that is refused, the swipe
is recorded as ``access.denied`` (unknown) with the enrolment's error. The enrolment door is then
verified by a real decision (see ``Swipes.card_read``), not just marked.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from datetime import timedelta
from typing import Any

from gateway.access import register
from gateway.access.cards import Cards
from gateway.access.doors import Doors
from gateway.access.errors import BadSpec, CardConflict, UnknownDoor, card_key
from gateway.access.models import CardSpec, Door, EnrolmentIn
from gateway.access.readers import Readers
from gateway.context import GatewayContext
from gateway.errors import NotFound
from gateway.events import Emit, format_ts

log = logging.getLogger(__name__)


class Enrolments:
    """Pending enrolments by door, and their lifecycle (pending -> done | failed | expired | cancelled)."""

    def __init__(self, doors: Doors, readers: Readers, cards: Cards) -> None:
        self.doors = doors
        self.readers = readers
        self.cards = cards
        self.ctx: GatewayContext | None = None
        self.pending: dict[str, str] = {}   # door id -> enrolment id

    def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.pending.update(register.pending_enrolments(ctx.store, format_ts(ctx.clock.now())))

    @property
    def _ctx(self) -> GatewayContext:
        assert self.ctx is not None, "access component not started"
        return self.ctx

    async def start_enrolment(self, body: EnrolmentIn, actor: str, role: str) -> dict[str, Any]:
        ctx = self._ctx
        door = self.doors.doors.get(body.door)
        if door is None:
            raise UnknownDoor("unknown_door", f"no door {body.door!r}")
        now = ctx.clock.now()
        current = self.pending.get(door.id)
        if current is not None:
            row = register.get_enrolment(ctx.store, current)
            if row is not None and row["state"] == "pending" and row["expires_at"] > format_ts(now):
                raise CardConflict("enrolment_pending", f"enrolment {current} is already waiting for a swipe at {door.id}")
        self.cards.check_spec(body)  # fail now, not at the door
        replaces = card_key(body.replaces) if body.replaces else None
        enrol_id = uuid.uuid4().hex[:12]
        expires = format_ts(now + timedelta(seconds=ctx.config.access.enrolment_timeout_s))
        spec = body.model_dump(mode="json", by_alias=True, exclude={"door"})
        spec["replaces"] = replaces

        def txn(conn: sqlite3.Connection, emit: Emit) -> None:
            self.cards.check_replacement(conn, "", body.unit, replaces)
            register.start_enrolment(conn, enrol_id, door.id, spec, actor, format_ts(now), expires)
            ctx.audit.insert(conn, actor, role, "enrolment.start", door.id,
                             {"enrolment": enrol_id, "unit": body.unit, "holder_kind": body.holder_kind})

        await ctx.events.transact(txn)
        self.pending[door.id] = enrol_id
        self.readers.led(door.reader, "amber", 3.0)
        return self.view(enrol_id)  # type: ignore[return-value]

    async def cancel(self, enrol_id: str, actor: str, role: str) -> dict[str, Any]:
        """Cancel a pending enrolment (the technician walked away, or started it at the wrong door); audited."""
        ctx = self._ctx
        row = register.get_enrolment(ctx.store, enrol_id)
        if row is None:
            raise NotFound("not_found", f"no enrolment {enrol_id}")
        now = format_ts(ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Emit) -> bool:
            if row["expires_at"] <= now or not register.end_enrolment(conn, enrol_id, "cancelled", now):
                return False
            ctx.audit.insert(conn, actor, role, "enrolment.cancel", row["door"], {"enrolment": enrol_id})
            return True

        if not await ctx.events.transact(txn):
            state = (self.view(enrol_id) or {}).get("state")
            raise CardConflict("enrolment_not_pending", f"enrolment {enrol_id} is {state}: nothing to cancel")
        if self.pending.get(row["door"]) == enrol_id:
            del self.pending[row["door"]]
        log.info("enrolment %s at door %s cancelled", enrol_id, row["door"])
        return self.view(enrol_id)  # type: ignore[return-value]

    async def swipe(self, enrol_id: str, door: Door, card: str) -> bool | None:
        """An unknown card at a door with a pending enrolment. True = issued, None = not pending any more,
        False = refused: the enrolment failed and the swipe is recorded as ``access.denied`` (unknown)."""
        ctx = self._ctx
        row = register.get_enrolment(ctx.store, enrol_id)
        now = format_ts(ctx.clock.now())
        if row is None or row["state"] != "pending" or row["expires_at"] <= now:
            self.pending.pop(door.id, None)
            if row is not None and row["state"] == "pending":
                await ctx.store.write(lambda c: register.end_enrolment(c, enrol_id, "expired", now))
            return None
        spec = CardSpec.model_validate(json.loads(row["spec"]))
        self.pending.pop(door.id, None)
        try:
            cols = self.cards.check_spec(spec)

            def txn(conn: sqlite3.Connection, emit: Emit) -> None:
                self.cards.issue_in(conn, emit, card, cols, source="local", actor=row["created_by"],
                                    role="technician", replaces=spec.replaces)
                register.end_enrolment(conn, enrol_id, "done", now, card)

            await ctx.events.transact(txn)
            log.info("enrolment %s: card %s issued at door %s", enrol_id, card, door.id)
            return True
        except (BadSpec, CardConflict) as exc:
            code, error = exc.code, f"{exc.code}: {exc}"

            def failed(conn: sqlite3.Connection, emit: Emit) -> None:
                register.end_enrolment(conn, enrol_id, "failed", now, card, error)
                emit("access.denied", {"door": door.id, "card": card, "reason": "unknown", "enrolment": enrol_id,
                                       "enrolment_error": code})

            await ctx.events.transact(failed)
            log.warning("enrolment %s failed at door %s: %s", enrol_id, door.id, code)
            return False

    def view(self, enrol_id: str) -> dict[str, Any] | None:
        row = register.get_enrolment(self._ctx.store, enrol_id)
        if row is None:
            return None
        spec = json.loads(row["spec"])
        state = row["state"]
        if state == "pending" and row["expires_at"] <= format_ts(self._ctx.clock.now()):
            state = "expired"
        return {"id": row["id"], "door": row["door"], "state": state, "card": row["card"],
                "error": row["error"] or None, "unit": spec.get("unit"), "holder_kind": spec.get("holder_kind"),
                "doors": spec.get("doors"), "created_at": row["created_at"], "expires_at": row["expires_at"],
                "done_at": row["done_at"]}
