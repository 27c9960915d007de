"""Issuing, changing and revoking cards at this gateway, and what a person sees of them.

The rules come from :mod:`gateway.access.rules` (a card's spec checked against the site, the fee
rule, replacements); the rows from :mod:`gateway.access.register`. Each change commits with its
event (``card.issued``, ``card.fee_due``, ``card.updated``, ``card.revoked``) and its audit row in
one transaction. Holder names and revocation notes go into the register only, never into an event.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from drivers.cards import decode
from gateway.access import register, rules
from gateway.access.doors import Doors
from gateway.access.errors import BadSpec, CardConflict, card_key
from gateway.access.models import FEE_KINDS, CardIn, CardPatch, CardSpec
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
                 actor: str, role: str, replaces: str | None = None) -> None:
        """Insert a new card, emit card.issued and, when the fee rule says so, card.fee_due (with why)."""
        ctx = self._ctx
        now = format_ts(ctx.clock.now())
        status = register.card_status(conn, card)
        if status == "revoked":
            raise CardConflict("card_revoked", f"card {card} was revoked; a revoked card is not issued again")
        if status is not None:
            raise CardConflict("card_exists", f"card {card} is already issued")
        replaces_reason = self.check_replacement(conn, card, cols["unit"], replaces)
        register.insert_card(conn, register.card_row(
            decode(card), (cols["unit"], cols["holder"], cols["holder_kind"]), register.spec_columns(cols), "active",
            rev=register.rev(conn), source=source, now=now, replaces=replaces))
        emit("card.issued", {"card": card, "unit": cols["unit"], "holder_kind": cols["holder_kind"],
                             "doors": cols["doors"], "valid_from": cols["valid_from"],
                             "valid_until": cols["valid_until"], "schedule": cols["schedule"],
                             **({"replaces": replaces} if replaces else {})})
        ctx.audit.insert(conn, actor, role, "card.issue", card,
                         {"unit": cols["unit"], "holder_kind": cols["holder_kind"], "doors": cols["doors"],
                          **({"replaces": replaces} if replaces else {})})
        self._fee(conn, emit, card, cols, now, replaces, replaces_reason)

    @staticmethod
    def check_replacement(conn: sqlite3.Connection, card: str, unit: str, replaces: str | None) -> str | None:
        """Check ``replaces`` (see :func:`gateway.access.rules.replacement_refusal`); its revoke reason."""
        if replaces is None:
            return None
        if replaces == card:
            raise CardConflict("card_revoked", f"card {card} was revoked; a revoked card is not issued again")
        old = register.card_in(conn, replaces)
        refusal = rules.replacement_refusal(old, unit, register.replaced_by(conn, unit, replaces) if old else None)
        if refusal is not None:
            raise (BadSpec if refusal[0] == "replaces_unknown" else CardConflict)(*refusal)
        assert old is not None
        return str(old["revoke_reason"] or "other")

    def _fee(self, conn: sqlite3.Connection, emit: Emit, card: str, cols: dict[str, Any], now: str,
             replaces: str | None, replaces_reason: str | None) -> None:
        """``card.fee_due`` {unit, card, cards_in_unit, free_cards, occupants, why[, replaces]} per the fee rule."""
        if cols["holder_kind"] not in FEE_KINDS:
            return
        n = register.household_cards(conn, cols["unit"], FEE_KINDS, now)
        occupants = register.occupants(conn, cols["unit"])
        free = rules.free_cards(occupants, self._ctx.config.access.free_cards_per_unit)
        why = rules.fee_reason(cols["holder_kind"], n, free, replaces_reason)
        if why is not None:
            emit("card.fee_due", {"unit": cols["unit"], "card": card, "cards_in_unit": n, "free_cards": free,
                                  "occupants": occupants, "why": why, **({"replaces": replaces} if replaces else {})})

    async def issue_card(self, body: CardIn, actor: str, role: str) -> dict[str, Any]:
        card = card_key(body.card)
        cols = self.check_spec(body)
        replaces = card_key(body.replaces) if body.replaces else None
        await self._ctx.events.transact(lambda conn, emit: self.issue_in(conn, emit, card, cols, source="local",
                                                                         actor=actor, role=role, replaces=replaces))
        return self.card_view(card)  # type: ignore[return-value]

    async def revoke_card(self, card: str, reason: str, actor: str, role: str, note: str = "") -> dict[str, Any]:
        """Revoke now: the very next swipe at any door is denied; emits card.revoked {card, reason}.

        The note (free text, may name people) stays in the register for staff; events and the exported
        audit row carry only the reason.
        """
        key = card_key(card)
        ctx = self._ctx
        now = format_ts(ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Emit) -> bool:
            status = register.card_status(conn, key)
            if status is None:
                raise NotFound("not_found", f"no card {card}")
            if status == "revoked":
                return False
            register.revoke_card(conn, key, reason, now, note)
            emit("card.revoked", {"card": key, "reason": reason})
            ctx.audit.insert(conn, actor, role, "card.revoke", key, {"reason": reason, "note_given": bool(note)})
            return True

        changed = await ctx.events.transact(txn)
        log.info("card %s revoked (%s)%s", key, reason, "" if changed else " (already)")
        return self.card_view(key)  # type: ignore[return-value]

    async def update_card(self, card: str, patch: CardPatch, actor: str, role: str) -> dict[str, Any]:
        """Change an issued card's scope, validity or schedule in place; the rules are checked again.

        Emits ``card.updated`` {card, unit, holder_kind, doors, valid_from, valid_until, schedule} and
        audits the old and new scope. A revoked card is not changed (409 ``card_revoked``).
        """
        key = card_key(card)
        ctx = self._ctx
        row = register.get_card(ctx.store, key)
        if row is None:
            raise NotFound("not_found", f"no card {card}")
        changes = patch.model_dump(mode="json", by_alias=True, exclude_unset=True)
        cols = self.check_spec(rules.patched_spec(row, changes))
        now = format_ts(ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Emit) -> None:
            current = register.card_in(conn, key)
            if current is None or current["status"] == "revoked":
                raise CardConflict("card_revoked", f"card {key} is revoked; issue a new card instead")
            register.update_spec(conn, key, register.spec_columns(cols), now)
            emit("card.updated", {"card": key, "unit": cols["unit"], "holder_kind": cols["holder_kind"],
                                  "doors": cols["doors"], "valid_from": cols["valid_from"],
                                  "valid_until": cols["valid_until"], "schedule": cols["schedule"]})
            ctx.audit.insert(conn, actor, role, "card.update", key,
                             {"changed": sorted(changes), "doors_before": json.loads(current["doors"]),
                              "doors": cols["doors"]})

        await ctx.events.transact(txn)
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
        refused = {door: r for door, r in register.verify_refusals(self._ctx.store, card).items() if door not in done}
        doors = [{"door": d.id, "name": d.name, "verified": d.id in done, "at": done.get(d.id),
                  "refused": _refusal(refused.get(d.id))}
                 for d in self.doors.doors.values() if rules.in_card_scope(row, d)]
        verified = sum(1 for d in doors if d["verified"])
        # the newest counted swipe (a first grant or a refusal), so a reloaded page shows what the last one did
        swipes = [(at, door, True, None) for door, at in done.items()] + \
                 [(at, door, False, reason) for door, (reason, at) in refused.items()]
        last = max(swipes, default=None)
        return {"card": card, "unit": row["unit"], "status": row["status"], "doors": doors,
                "verified": verified, "total": len(doors), "complete": verified == len(doors) and bool(doors),
                "last": None if last is None else {"door": last[1], "ok": last[2], "reason": last[3], "at": last[0]}}


def _refusal(r: tuple[str, str] | None) -> dict[str, str] | None:
    return None if r is None else {"reason": r[0], "at": r[1]}


def verify_at_door(conn: sqlite3.Connection, emit: Emit, card: str, door: str, reason: str | None, now: str) -> None:
    """A real decision at a door of the card's scope: verified (``reason`` None), or a failed attempt, reported
    with the decision's reason (``card.verified`` {card, door, ok[, reason]}) and kept as the door's last refusal."""
    if register.verify(conn, card, door, reason is None, now, reason or ""):
        emit("card.verified", {"card": card, "door": door, "ok": reason is None,
                               **({} if reason is None else {"reason": reason})})
