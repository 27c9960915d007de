"""Doors at runtime: contact, forced and held-open, operator unlocks and relocks, and holds (fire egress).

A door's state (``closed``, ``open``, ``forced``, ``held_open``, ``offline``, ``unlocked``) is
derived from what its reader, its output and its contact last said, the grant/unlock windows and
the holds (:meth:`Doors.compute_state`). The lock is moved through the door's output
(:mod:`gateway.access.outputs`: its OSDP reader's relay, or a relay board coil). :class:`Doors` is
the :class:`gateway.context.DoorHolds` the alarms area's fire linkage uses (``ctx.door_holds``):
holds are stored, so they survive a restart, and re-applied whenever a reader comes back (a relay
board re-drives its coils itself). The hold rules are :mod:`gateway.access.holds`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Any

from gateway.access import register
from gateway.access.errors import OutputOffline, ReaderOffline, UnknownDoor
from gateway.access.hold_rules import HoldMap
from gateway.access.holds import Holds
from gateway.access.models import Door
from gateway.access.outputs import Outputs
from gateway.access.readers import Readers
from gateway.context import GatewayContext
from gateway.events import Emit, format_ts

log = logging.getLogger(__name__)

#: longest relay pulse one OSDP command can give; longer unlocks switch the relay on, then off
MAX_PULSE_S = 25.5


class Doors:
    """The configured doors, their live state, and the holds that keep some released."""

    def __init__(self, readers: Readers) -> None:
        self.readers = readers
        self.ctx: GatewayContext | None = None
        self.doors: dict[str, Door] = {}
        self.by_reader: dict[str, list[Door]] = {}
        self.holds = HoldMap()
        self.hold_keeper = Holds(self)
        self.outputs = Outputs(readers)
        self._no_relay_warned: set[str] = set()

    def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        now = format_ts(ctx.clock.now())
        for d in ctx.config.doors:
            door = Door(d.id, d.name, d.building, d.unit, d.reader, d.output, d.input, d.unlock_s, d.held_open_s,
                        since=now, egress=d.egress)
            self.doors[d.id] = door
            self.by_reader.setdefault(d.reader, []).append(door)
        self.outputs.build(ctx, self._outputs_changed)

    def load(self) -> None:
        """Holds from the store (a restart does not drop a fire hold), every door's state; then the relay
        boards start, with the coils of held doors already wanted on."""
        self.holds = HoldMap(register.holds(self._ctx.store))
        held = self.held()
        for door in self.doors.values():
            if held.get(door.id) and self.outputs.of(door.id).kind == "relay":
                self.relay(door, on=True)
            self.refresh(door)
        self.outputs.start(self._ctx)

    def stop(self) -> None:
        for door in self.doors.values():
            for t in (door.held_task, door.relock_task):
                if t is not None:
                    t.cancel()
        self.outputs.stop()

    @property
    def _ctx(self) -> GatewayContext:
        assert self.ctx is not None, "access component not started"
        return self.ctx

    def at_reader(self, reader: str) -> list[Door]:
        return self.by_reader.get(reader, [])

    # ------------------------------------------------------------------ relay
    def relay(self, door: Door, *, on: bool | None = None, pulse_s: float | None = None) -> bool:
        out = self.outputs.of(door.id)
        if not out.drivable():
            if door.id not in self._no_relay_warned:
                self._no_relay_warned.add(door.id)
                log.warning("door %s: reader %s (%s) has no relay output and the door names no relay board "
                            "(output = { bus, device_id, coil }): decisions are recorded, the lock is not driven",
                            door.id, door.reader, self.readers.kind.get(door.reader))
            return False
        return out.drive(on=on, pulse_s=pulse_s)

    def granted(self, door: Door) -> None:
        """A card was let through: pulse the lock, and an opening in the next ``unlock_s`` + 1 s is authorized."""
        self.relay(door, pulse_s=door.unlock_s)
        door.authorized_until = time.monotonic() + door.unlock_s + 1.0

    async def reader_changed(self, reader: str, online: bool) -> None:
        for door in self.at_reader(reader):
            self.refresh(door)
            if online and self.held().get(door.id) and self.outputs.of(door.id).kind == "osdp":
                self.relay(door, on=True)  # a reader that was away must hold its release again

    async def _outputs_changed(self, door_ids: list[str]) -> None:
        """A relay board went online/offline (it re-drives its coils itself): the doors' states follow."""
        for d in door_ids:
            self.refresh(self.doors[d])

    # ------------------------------------------------------------------ door contact
    async def input_changed(self, reader: str, number: int, active: bool) -> None:
        for door in self.at_reader(reader):
            if door.input == number:
                await self.contact(door.id, active)

    async def contact(self, door_id: str, is_open: bool) -> None:
        """The door contact of ``door_id`` reports open/closed."""
        door = self.doors[door_id]
        previous = door.contact_open
        door.contact_open = is_open
        if previous is None:  # first report after start: where the door is, not a change
            if is_open:
                self._arm_held_open(door)
            self.refresh(door)
            return
        if previous == is_open:
            return
        if is_open:
            await self._opened(door)
        else:
            await self._closed(door)
        self.refresh(door)

    async def _opened(self, door: Door) -> None:
        authorized = time.monotonic() <= max(door.authorized_until, door.unlock_until) or \
            bool(self.held().get(door.id))

        def opened(conn: sqlite3.Connection, emit: Emit) -> None:
            emit("door.opened", {"door": door.id, "authorized": authorized})
            if not authorized:
                emit("door.forced", {"door": door.id})

        await self._ctx.events.transact(opened)
        door.forced = not authorized
        if not authorized:
            log.warning("door %s forced open", door.id)
        self._arm_held_open(door)

    async def _closed(self, door: Door) -> None:
        if door.held_task is not None:
            door.held_task.cancel()
            door.held_task = None
        data = {"door": door.id}
        if door.forced or door.held_open:
            data["was"] = "forced" if door.forced else "held_open"
        await self._ctx.events.record("door.closed", data)
        door.forced = False
        door.held_open = False

    def _arm_held_open(self, door: Door) -> None:
        if door.held_open_s <= 0:
            return
        if door.held_task is not None:
            door.held_task.cancel()
        door.held_task = asyncio.get_running_loop().create_task(self._held_open_after(door), name=f"held.{door.id}")

    async def _held_open_after(self, door: Door) -> None:
        await asyncio.sleep(door.held_open_s)
        if door.contact_open and not self.held().get(door.id):
            door.held_open = True
            await self._ctx.events.record("door.held_open", {"door": door.id, "seconds": door.held_open_s})
            log.warning("door %s held open past %gs", door.id, door.held_open_s)
            self.refresh(door)
        door.held_task = None

    # ------------------------------------------------------------------ states
    def held(self) -> dict[str, str]:
        """Door id -> the reason of the first hold keeping it released."""
        return self.holds.held()

    def compute_state(self, door: Door) -> str:
        if self.readers.online.get(door.reader) is False or self.outputs.of(door.id).online() is False:
            return "offline"
        if door.forced and door.contact_open:
            return "forced"
        if door.held_open and door.contact_open:
            return "held_open"
        if self.held().get(door.id) or time.monotonic() < door.unlock_until:
            return "unlocked"
        return "open" if door.contact_open else "closed"

    def refresh(self, door: Door) -> None:
        state = self.compute_state(door)
        if state != door.state:
            door.state = state
            door.since = format_ts(self._ctx.clock.now())

    def states(self) -> list[dict[str, Any]]:
        """Live door states for the console and the handover report (with each hold's cause)."""
        causes: dict[str, dict[str, Any]] = {}
        out = []
        for door in self.doors.values():
            self.refresh(door)
            holds = []
            for t in self.holds.tokens_of(door.id):
                if t not in causes:
                    causes[t] = self._hold_view(t)
                holds.append(causes[t])
            out.append({"id": door.id, "name": door.name, "building": door.building, "reader": door.reader,
                        "state": door.state, "since": door.since, "contact": (
                            None if door.contact_open is None else ("open" if door.contact_open else "closed")),
                        "reader_online": self.readers.online.get(door.reader), "egress": door.egress,
                        "output": self.outputs.of(door.id).describe(), "holds": holds})
        return out

    def cause(self, token: str) -> dict[str, Any] | None:
        causes = self._ctx.hold_causes
        return causes.hold_cause(token) if causes is not None else None

    def _hold_view(self, token: str) -> dict[str, Any]:
        return {"token": token, "reason": self.holds.holds[token][1], **(self.cause(token) or {})}

    def handover_items(self) -> dict[str, Any]:
        """Doors in trouble (forced, held open, reader offline, held unlocked), for the shift handover report."""
        held = self.held()
        trouble = [d for d in self.states() if d["state"] in ("forced", "held_open", "offline")
                   or (d["state"] == "unlocked" and held.get(d["id"]))]
        return {"doors": trouble}

    # ------------------------------------------------------------------ unlocks
    async def unlock(self, door_id: str, seconds: float | None, actor: str, role: str,
                     reason: str = "operator") -> dict[str, Any]:
        """Momentary remote unlock (audited): relay released for ``seconds``, then relocked."""
        door = self.find(door_id)
        self._reachable(door)
        secs = seconds or door.unlock_s
        ctx = self._ctx

        def txn(conn: sqlite3.Connection, emit: Emit) -> None:
            emit("door.unlocked", {"door": door.id, "reason": reason, "seconds": secs})
            ctx.audit.insert(conn, actor, role, "door.unlock", door.id, {"seconds": secs, "reason": reason})

        await ctx.events.transact(txn)
        sent = self.relay(door, pulse_s=secs) if secs <= MAX_PULSE_S else self.relay(door, on=True)
        door.unlock_until = time.monotonic() + secs
        door.authorized_until = max(door.authorized_until, door.unlock_until + 1.0)
        if door.relock_task is not None:
            door.relock_task.cancel()
        door.relock_task = asyncio.get_running_loop().create_task(self._relock_after(door, secs))
        self.refresh(door)
        return {"door": door.id, "unlocked": True, "seconds": secs, "relay_command_sent": sent}

    def find(self, door_id: str) -> Door:
        door = self.doors.get(door_id)
        if door is None:
            raise UnknownDoor("not_found", f"no door {door_id}")
        return door

    def _reachable(self, door: Door) -> None:
        """Refuse (409) when the door's lock cannot be reached now."""
        out = self.outputs.of(door.id)
        if out.kind == "relay":
            if out.online() is False:
                raise OutputOffline("output_offline", f"relay board {out.describe()['device']} of door {door.id} "
                                                      "does not answer")
        elif self.readers.online.get(door.reader) is False:
            raise ReaderOffline("reader_offline", f"reader {door.reader} of door {door.id} is offline")

    async def _relock_after(self, door: Door, secs: float) -> None:
        await asyncio.sleep(secs)
        door.relock_task = None
        if self.held().get(door.id):
            return  # a hold keeps it released; release_hold relocks it
        if secs > MAX_PULSE_S:
            self.relay(door, on=False)
        await self._ctx.events.record("door.relocked", {"door": door.id})
        self.refresh(door)

    def lock(self, door: Door) -> bool:
        """Relay off (a door released by a hold or a long unlock), held-open watch again."""
        door.authorized_until = time.monotonic() + 1.0
        door.unlock_until = 0.0
        sent = self.relay(door, on=False)
        if door.contact_open:
            self._arm_held_open(door)
        self.refresh(door)
        return sent

    # ------------------------------------------------------------------ holds (DoorHolds) and relocks
    async def hold_unlocked(self, door_ids: list[str], reason: str, token: str) -> None:
        """Keep doors released (fire egress...) until :meth:`release_hold` with the same token."""
        await self.hold_keeper.hold_unlocked(door_ids, reason, token)

    async def release_hold(self, token: str) -> None:
        """End a hold; doors no other hold keeps are relocked (``door.relocked``)."""
        await self.hold_keeper.release_hold(token)

    async def relock(self, door_id: str, reason: str, confirm: bool, actor: str, role: str) -> dict[str, Any]:
        """An operator ends a door's release (audited); see :meth:`Holds.relock`."""
        return await self.hold_keeper.relock(door_id, reason, confirm, actor, role)
