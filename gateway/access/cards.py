"""Issuing and revoking cards at this gateway, and what a person sees of them.

The rules come from :mod:`gateway.access.rules` (a card's spec checked against the site, the fee
for a household's fourth card); the rows from :mod:`gateway.access.register`. Each change commits
with its event (``card.issued``, ``card.fee_due``, ``card.revoked``) and its audit row in one
transaction. Holder names go into the register only, never into an event.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from drivers.cards import decode
from gateway.access import register, rules
from gateway.access.doors import Doors
from gateway.access.errors import CardConflict, card_key
from gateway.access.models import FEE_KINDS, CardIn, CardSpec
from gateway.context import GatewayContext
from gateway.errors import NotFound
from gateway.events import Emit, format_ts

log = logging.getLogger(__name__)


class Cards:
    """The card register as people use it: issue, revoke, look up, and the check of a spec."""

    def __init__(self, doors: Doors) -> None:
        self.doors = doors  # the site's doors a scope may name
        self.ctx: GatewayContext | None = None

    def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    @property
    def _ctx(self) -> GatewayContext:
        assert self.ctx is not None, "access component not started"
        return self.ctx

    def check_spec(self, spec: CardSpec, *, central: bool = False) -> dict[str, Any]:
        """The spec against this site's doors and rules (see :func:`gateway.access.rules.check_spec`)."""
        ctx = self._ctx
        return rules.check_spec(spec, self.doors.doors, ctx.config.access, ctx.clock.now(), ctx.clock.tz,
                                central=central)

    def rev(self) -> int:
        return register.rev(self._ctx.store)

    # ------------------------------------------------------------------ issue and revoke
    def issue_in(self, conn: sqlite3.Connection, emit: Emit, card: str, cols: dict[str, Any], *, source: str,
                 actor: str, role: str) -> None:
        """Insert a new card, emit card.issued and, for a household card beyond the free ones, card.fee_due."""
        ctx = self._ctx
        now = format_ts(ctx.clock.now())
        status = register.card_status(conn, card)
        if status == "revoked":
            raise CardConflict("card_revoked", f"card {card} was revoked; a revoked card is not issued again")
        if status is not None:
            raise CardConflict("card_exists", f"card {card} is already issued")
        register.insert_card(conn, register.card_row(
            decode(card), (cols["unit"], cols["holder"], cols["holder_kind"]), register.spec_columns(cols), "active",
            rev=register.rev(conn), source=source, confirmed=0, now=now))
        emit("card.issued", {"card": card, "unit": cols["unit"], "holder_kind": cols["holder_kind"],
                             "doors": cols["doors"], "valid_from": cols["valid_from"],
                             "valid_until": cols["valid_until"], "schedule": cols["schedule"]})
        ctx.audit.insert(conn, actor, role, "card.issue", card,
                         {"unit": cols["unit"], "holder_kind": cols["holder_kind"], "doors": cols["doors"]})
        if cols["holder_kind"] in FEE_KINDS:
            n = register.household_cards(conn, cols["unit"], FEE_KINDS)
            if rules.fee_due(cols["holder_kind"], n, ctx.config.access.free_cards_per_unit):
                emit("card.fee_due", {"unit": cols["unit"], "card": card, "cards_in_unit": n})

    async def issue_card(self, body: CardIn, actor: str, role: str) -> dict[str, Any]:
        card = card_key(body.card)
        cols = self.check_spec(body)
        await self._ctx.events.transact(lambda conn, emit: self.issue_in(conn, emit, card, cols, source="local",
                                                                         actor=actor, role=role))
        return self.card_view(card)  # type: ignore[return-value]

    async def revoke_card(self, card: str, reason: str, actor: str, role: str) -> dict[str, Any]:
        """Revoke now: the very next swipe is denied; emits card.revoked."""
        key = card_key(card)
        ctx = self._ctx
        now = format_ts(ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Emit) -> bool:
            status = register.card_status(conn, key)
            if status is None:
                raise NotFound("not_found", f"no card {card}")
            if status == "revoked":
                return False
            register.revoke_card(conn, key, reason, now)
            emit("card.revoked", {"card": key, "reason": reason})
            ctx.audit.insert(conn, actor, role, "card.revoke", key, {"reason": reason})
            return True

        changed = await ctx.events.transact(txn)
        log.info("card %s revoked%s", key, "" if changed else " (already)")
        return self.card_view(key)  # type: ignore[return-value]

    # ------------------------------------------------------------------ views
    def card_view(self, card: str) -> dict[str, Any] | None:
        row = register.get_card(self._ctx.store, card)
        return None if row is None else register.card_dict(row)

    def list_cards(self, unit: str | None, limit: int, after: str) -> list[dict[str, Any]]:
        return register.list_cards(self._ctx.store, unit, limit, after)

    def verification(self, card: str) -> dict[str, Any] | None:
        """Which doors of the card's scope it was swiped at since it was issued (None: no such card)."""
        row = register.get_card(self._ctx.store, card)
        if row is None:
            return None
        done = register.verifications(self._ctx.store, card)
        doors = [{"door": d.id, "name": d.name, "verified": d.id in done, "at": done.get(d.id)}
                 for d in self.doors.doors.values() if rules.in_card_scope(row, d)]
        verified = sum(1 for d in doors if d["verified"])
        return {"card": card, "unit": row["unit"], "status": row["status"], "doors": doors,
                "verified": verified, "total": len(doors), "complete": verified == len(doors) and bool(doors)}


def verify_at_door(conn: sqlite3.Connection, emit: Emit, card: str, door: str, ok: bool, now: str) -> None:
    """First real swipe at a door of the card's scope: verified (or a failed attempt, reported)."""
    if register.verify(conn, card, door, ok, now):
        emit("card.verified", {"card": card, "door": door, "ok": ok})
