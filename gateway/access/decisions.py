"""A card at a reader: the swipe an enrolment waits for, or a decision recorded before the lock moves.

A pending enrolment takes only a card the register does not know; every issued card (and the
enrolled card itself, right after it is issued, at a door of its scope) gets a real decision, so the
enrolment door is verified by a grant that pulses its relay like any other.

The order is the team's rule: decide from the local register (:func:`gateway.access.rules.decide`),
commit ``access.granted`` / ``access.denied`` (with ``card.verified`` on a first swipe at a door of
the card's scope, and the anti-passback side) in one transaction, and only then drive the relay,
LED and buzzer. Decisions need neither central nor the broker.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from gateway.access import register, rules
from gateway.access.cards import verify_at_door
from gateway.access.doors import Doors
from gateway.access.enrolment import Enrolments
from gateway.access.models import Door
from gateway.access.readers import Readers
from gateway.context import GatewayContext
from gateway.events import Emit, format_ts

log = logging.getLogger(__name__)

#: the doors count as busy this long after a decision: a snapshot stages and cleans up in small slices meanwhile
DOORS_BUSY_S = 2.0


class Swipes:
    """Turns card reads into decisions (or enrolments), and keeps the anti-passback sides."""

    def __init__(self, doors: Doors, readers: Readers, enrolments: Enrolments) -> None:
        self.doors = doors
        self.readers = readers
        self.enrolments = enrolments
        self.ctx: GatewayContext | None = None
        self.holidays: set[str] = set()
        self.passback: dict[str, tuple[str, str]] = {}  # door id -> (the pair's entry door, "entry"|"exit")
        self.passback_state: dict[tuple[str, str], str] = {}  # (entry door, card) -> side last passed
        self.stats = {"decisions": 0, "granted": 0, "denied": 0}
        self.last_decided = float("-inf")  # time.monotonic() of the last decision
        self.in_flight = 0  # card reads being decided now (read -> committed -> relay)
        #: hook for benchmarks/tests: called with (reader, card, monotonic at read, granted) after the relay command
        self.on_decided: Callable[[str, str, float, bool], None] | None = None

    def busy(self) -> bool:
        """A decision in the last :data:`DOORS_BUSY_S`: big jobs go in small slices meanwhile."""
        return time.monotonic() - self.last_decided < DOORS_BUSY_S

    def deciding(self) -> bool:
        """A card read is being decided right now: work on the loop (a snapshot's validation) steps aside."""
        return self.in_flight > 0

    def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.holidays = set(ctx.config.access.holidays)
        for pair in ctx.config.access.anti_passback:
            self.passback[pair.entry] = (pair.entry, "entry")
            self.passback[pair.exit] = (pair.entry, "exit")
        self.passback_state.update(register.passback_sides(ctx.store))

    @property
    def _ctx(self) -> GatewayContext:
        assert self.ctx is not None, "access component not started"
        return self.ctx

    async def card_read(self, reader: str, card: str, at: float | None = None) -> str | None:
        """A card at ``reader``: enrolment, or a decision. Returns the deny reason (None = granted)."""
        self.in_flight += 1
        try:
            return await self._card_read(reader, card, time.monotonic() if at is None else at)
        finally:
            self.in_flight -= 1

    async def _card_read(self, reader: str, card: str, at: float) -> str | None:
        doors = self.doors.at_reader(reader)
        if not doors:
            log.warning("card read at reader %s which serves no door: ignored", reader)
            return "not_permitted"
        door = doors[0]
        enrolled = await self._enrol(door, card)
        if enrolled is False:  # an unknown card the enrolment refused: recorded as denied
            self._count("unknown")
            return self._answer(reader, card, at, "unknown")
        if enrolled and not rules.counts_for_verification(register.get_card(self._ctx.store, card), door):
            self.readers.feedback(reader, True, beeps=2)  # enrolled at a door outside its scope: nothing to open
            return None
        reason = await self.decide_and_record(door, card)
        if reason is None:
            self.doors.granted(door)
        return self._answer(reader, card, at, reason, beeps=2 if enrolled else 1)

    async def _enrol(self, door: Door, card: str) -> bool | None:
        """The swipe a pending enrolment at ``door`` waits for: only a card the register does not know.

        None = not an enrolment swipe (decide it as always); True = issued; False = refused.
        """
        enrolment = self.enrolments.pending.get(door.id)
        if enrolment is None or register.get_card(self._ctx.store, card) is not None:
            return None
        return await self.enrolments.swipe(enrolment, door, card)

    def _answer(self, reader: str, card: str, at: float, reason: str | None, beeps: int = 1) -> str | None:
        self.readers.feedback(reader, reason is None, beeps=beeps)
        if self.on_decided is not None:
            self.on_decided(reader, card, at, reason is None)
        return reason

    def _count(self, reason: str | None) -> None:
        self.last_decided = time.monotonic()
        self.stats["decisions"] += 1
        self.stats["granted" if reason is None else "denied"] += 1
        self._ctx.metrics.inc("access_decisions_total", {"result": "granted" if reason is None else reason})

    async def decide_and_record(self, door: Door, card: str) -> str | None:
        ctx = self._ctx
        row = register.get_card(ctx.store, card)
        now_ts = format_ts(ctx.clock.now())
        apb = self.passback.get(door.id)
        side, last = (apb[1], self.passback_state.get((apb[0], card))) if apb is not None else (None, None)
        reason = rules.decide(row, door, now_ts, ctx.clock.local(), self.holidays, side=side, last_side=last)
        scoped = rules.counts_for_verification(row, door)

        def txn(conn: sqlite3.Connection, emit: Emit) -> None:
            emit(*decision_event(reason, door, card, row))
            if scoped:
                verify_at_door(conn, emit, card, door.id, reason, now_ts)
            if reason is None and apb is not None:
                register.save_passback(conn, apb[0], card, apb[1], now_ts)

        await ctx.events.transact(txn)
        self._count(reason)
        if reason is None and apb is not None:
            self.passback_state[(apb[0], card)] = apb[1]
        return reason


def decision_event(reason: str | None, door: Door, card: str, row: Any) -> tuple[str, dict[str, Any]]:
    """``access.granted`` / ``access.denied`` with what central may know: the unit and holder kind, no name."""
    if reason is None:
        return "access.granted", {"door": door.id, "card": card, "unit": row["unit"], "holder_kind": row["holder_kind"]}
    data: dict[str, Any] = {"door": door.id, "card": card, "reason": reason}
    if row is not None:
        data["unit"] = row["unit"]
        data["holder_kind"] = row["holder_kind"]
    return "access.denied", data
