"""The access area's component: builds its parts, wires them to the daemon, and nothing else.

The parts: :mod:`~gateway.access.readers` (drivers -> events), :mod:`~gateway.access.decisions`
(a swipe -> decision -> relay), :mod:`~gateway.access.doors` (contact, unlocks, holds),
:mod:`~gateway.access.cards` and :mod:`~gateway.access.enrolment` (issuing), :mod:`~gateway.access.sync`
(central), :mod:`~gateway.access.privacy` (names), over the pure :mod:`~gateway.access.rules` and the
SQL of :mod:`~gateway.access.register`. HTTP routes are in ``gateway/api/routes/access.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from drivers.reader import ReaderStatus
from gateway.access import register
from gateway.access.cards import Cards
from gateway.access.decisions import Swipes
from gateway.access.doors import Doors
from gateway.access.enrolment import Enrolments
from gateway.access.errors import UnknownDoor
from gateway.access.models import ApplyArgs, DoorUnlockArgs, SnapshotArgs, UnitsArgs
from gateway.access.privacy import Privacy
from gateway.access.readers import Readers
from gateway.access.sync import Sync
from gateway.commands import CommandError
from gateway.context import GatewayContext

CommandTable = dict[str, tuple[Callable[[Any], Awaitable[dict[str, Any]]], type[BaseModel]]]


class AccessComponent:
    name = "access"
    migrations: list[tuple[int, str]] = register.MIGRATIONS

    def __init__(self) -> None:
        self.ctx: GatewayContext | None = None
        self.readers = Readers()
        self.doors = Doors(self.readers)
        self.cards = Cards(self.doors)
        self.enrolments = Enrolments(self.doors, self.readers, self.cards)
        self.swipes = Swipes(self.doors, self.readers, self.enrolments)
        self.sync = Sync(self.cards, self.swipes.busy, self.swipes.deciding)
        self.privacy = Privacy()

    def commands(self) -> CommandTable:
        """The MQTT commands this area answers: name -> (handler, its args model)."""
        return {
            "cards.apply": (self.sync.apply, ApplyArgs),
            "cards.snapshot": (self.sync.snapshot, SnapshotArgs),
            "units.apply": (self.sync.apply_units, UnitsArgs),
            "door.unlock": (self._unlock_command, DoorUnlockArgs),
        }

    async def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.doors.start(ctx)
        self.readers.declare(ctx)
        for part in (self.cards, self.enrolments, self.swipes):
            part.start(ctx)
        self.doors.load()
        for name, (handler, model) in self.commands().items():
            ctx.commands.register(name, handler, model)
        ctx.door_holds = self.doors
        ctx.handover_sources.append(self)
        ctx.supervisor.spawn("access.decisions", lambda: self.readers.consume(self))
        self.sync.start(ctx)
        self.privacy.start(ctx)
        self.readers.start(ctx)

    async def stop(self) -> None:
        self.sync.stop()
        self.privacy.stop()
        self.doors.stop()
        await self.readers.stop()

    # ------------------------------------------------------------------ reader events (gateway.access.readers.ReaderSink)
    async def card_read(self, reader: str, card: str, at: float | None = None) -> str | None:
        """A card at ``reader``: enrolment, or a decision. Returns the deny reason (None = granted)."""
        return await self.swipes.card_read(reader, card, at)

    async def input_changed(self, reader: str, number: int, active: bool) -> None:
        await self.doors.input_changed(reader, number, active)

    async def reader_status(self, status: ReaderStatus) -> None:
        await self.readers.set_status(status)
        await self.doors.reader_changed(status.reader, status.online)

    # ------------------------------------------------------------------ what other areas use
    async def hold_unlocked(self, door_ids: list[str], reason: str, token: str) -> None:
        """Fire linkage (also reachable as ``ctx.door_holds``): keep doors released under ``token``."""
        await self.doors.hold_unlocked(door_ids, reason, token)

    async def release_hold(self, token: str) -> None:
        await self.doors.release_hold(token)

    def door_states(self) -> list[dict[str, Any]]:
        return self.doors.states()

    def handover_items(self) -> dict[str, Any]:
        return self.doors.handover_items()

    async def _unlock_command(self, args: DoorUnlockArgs) -> dict[str, Any]:
        """MQTT ``door.unlock`` by central (an unknown door answers ``unknown_door`` on this wire)."""
        try:
            return await self.doors.unlock(args.door, args.seconds, "central", "central")
        except UnknownDoor:
            raise CommandError("unknown_door", f"no door {args.door!r}") from None
