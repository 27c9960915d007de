"""Door access: card register, offline decisions, doors, enrolment by swipe, permission sync.

The gateway is the door controller. Readers (OSDP, serial ASCII, Wiegand
converters) hand card reads to one asyncio consumer; it decides from the local
SQLite register -- with or without the central system -- records the decision
as an event, and only then drives the relay, LED and buzzer.

Decision order (deny on any doubt): unknown -> revoked -> not yet valid / expired
-> outside schedule -> not permitted at this door -> anti-passback -> grant.

Card holder names live in the register (and the HTTP API for staff) only: never
in events, logs or MQTT. Events carry the unit and the holder kind.

Sync with central: ``cards.apply`` deltas on a revision (``rev_gap`` asks for a
snapshot) and ``cards.snapshot`` (atomic replace). Local issues survive a
snapshot until central has seen them; a revocation always wins.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime, timedelta
from typing import Any, Callable, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from drivers.cards import CardFormatError, decode, normalize_card_id
from gateway.api.auth import Principal, require_role
from gateway.api.errors import ApiError, error_responses
from gateway.commands import CommandError
from gateway.context import GatewayContext
from gateway.events import format_ts
from gateway.memory import release_memory

log = logging.getLogger(__name__)

HOLDER_KINDS = ("resident", "family", "tenant", "worker", "staff")
FEE_KINDS = ("resident", "family", "tenant")
UNIT_RE = r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$"
HHMM = re.compile(r"^([01]\d|2[0-4]):[0-5]\d$")
_UNIT = re.compile(UNIT_RE)

SNAPSHOT_CHUNK = 4000
SNAPSHOT_SLICE = 250
STAGE_INSERT = (
    "INSERT OR REPLACE INTO access_cards_next(card, bits, format, facility, number, unit, holder, holder_kind, "
    "doors, valid_from, valid_until, schedule, status, issued_at, updated_at, rev, source, confirmed) "
    "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?, 'central', 1)"
)

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE access_cards (
            card TEXT PRIMARY KEY,
            bits INTEGER NOT NULL,
            format TEXT,
            facility INTEGER,
            number INTEGER,
            unit TEXT NOT NULL,
            holder TEXT NOT NULL DEFAULT '',
            holder_kind TEXT NOT NULL,
            doors TEXT NOT NULL DEFAULT '[]',
            valid_from TEXT,
            valid_until TEXT,
            schedule TEXT,
            status TEXT NOT NULL DEFAULT 'active',
            revoke_reason TEXT NOT NULL DEFAULT '',
            rev INTEGER NOT NULL DEFAULT 0,
            source TEXT NOT NULL DEFAULT 'local',
            confirmed INTEGER NOT NULL DEFAULT 0,
            issued_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX access_cards_unit ON access_cards(unit);
        CREATE TABLE access_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE access_enrolments (
            id TEXT PRIMARY KEY,
            door TEXT NOT NULL,
            spec TEXT NOT NULL,
            state TEXT NOT NULL,
            card TEXT,
            error TEXT NOT NULL DEFAULT '',
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            done_at TEXT
        );
        CREATE TABLE access_verifications (
            card TEXT NOT NULL,
            door TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (card, door)
        );
        CREATE TABLE access_holds (
            token TEXT PRIMARY KEY,
            doors TEXT NOT NULL,
            reason TEXT NOT NULL,
            since TEXT NOT NULL
        );
        """,
    ),
    (
        2,
        """
        -- anti-passback: which side of each door pair a card was last let through (survives a restart)
        CREATE TABLE access_passback (
            entry TEXT NOT NULL,
            card TEXT NOT NULL,
            side TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (entry, card)
        );
        """,
    ),
]


# ---------------------------------------------------------------------- input models
class Window(BaseModel):
    """A time window in site time on ISO weekdays (1 = Monday); ``to`` may be 24:00."""

    model_config = ConfigDict(extra="forbid")
    days: list[int] = [1, 2, 3, 4, 5]
    start: str = Field(alias="from")
    end: str = Field(alias="to")

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        if not v or any(d < 1 or d > 7 for d in v):
            raise ValueError("days are ISO weekdays 1..7")
        return sorted(set(v))

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not HHMM.match(v) or (v.startswith("24") and v != "24:00"):
            raise ValueError("time must be HH:MM")
        return v

    @model_validator(mode="after")
    def _forward(self) -> "Window":
        # HH:MM strings compare in time order; a window that never opens would deny the card silently
        if self.start >= self.end:
            raise ValueError(f"window {self.start}-{self.end} never opens: 'from' must be before 'to' "
                             "(overnight: use two windows, e.g. 22:00-24:00 and 00:00-06:00)")
        return self


Schedule = list[Window] | Literal["working-hours"] | None


class CardSpec(BaseModel):
    """What a card may do (the body of POST /cards without the card, and of an enrolment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    unit: str = Field(pattern=UNIT_RE)
    holder: str = Field(default="", max_length=200)
    holder_kind: Literal["resident", "family", "tenant", "worker", "staff"]
    doors: list[str] = Field(default=[], max_length=2000)
    valid_from: str | None = None
    valid_until: str | None = None
    schedule: Schedule = None


class CardIn(CardSpec):
    card: str
    status: Literal["active", "revoked"] = "active"


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="revoked", max_length=200)


class EnrolmentIn(CardSpec):
    door: str


class UnlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float | None = Field(default=None, gt=0, le=3600)


class DoorUnlockArgs(UnlockIn):
    door: str


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: Literal["upsert", "revoke"]
    card: CardIn | str
    reason: str = "revoked"


class ApplyArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_rev: int = Field(ge=0)
    rev: int = Field(ge=0)
    changes: list[Change] = []

    @model_validator(mode="after")
    def _forward(self) -> "ApplyArgs":
        if self.rev <= self.base_rev:
            raise ValueError(f"rev ({self.rev}) must be after base_rev ({self.base_rev})")
        return self


class SnapshotArgs(BaseModel):
    """``cards`` are validated one by one while rows are built: 100,000 models at once would cost ~130 MB."""

    model_config = ConfigDict(extra="forbid")
    rev: int = Field(ge=0)
    cards: list[Any] = Field(default=[], max_length=2_000_000)


class BadSpec(ValueError):
    """A card/enrolment spec that does not fit the site (unknown door, worker scope...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------- doors at runtime
@dataclass
class Door:
    id: str
    name: str
    building: str
    unit: str
    reader: str
    output: int
    input: int
    unlock_s: float
    held_open_s: float
    contact_open: bool | None = None   # None = not reported yet
    authorized_until: float = 0.0      # monotonic: a grant/unlock window for opening
    unlock_until: float = 0.0          # monotonic: released by an operator unlock
    forced: bool = False
    held_open: bool = False
    state: str = "closed"
    since: str = ""
    held_task: asyncio.Task[None] | None = field(default=None, repr=False)
    relock_task: asyncio.Task[None] | None = field(default=None, repr=False)


# ---------------------------------------------------------------------- pure rules
def parse_when(value: str | None, tz: Any, *, end_of_day: bool = False) -> str | None:
    """A time or date from a person or central, as the stored UTC string (a bare date = site day)."""
    if value is None or value == "":
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            local = datetime.combine(d, dtime.max if end_of_day else dtime.min, tzinfo=tz)
            return format_ts(local)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadSpec("invalid_time", f"not a date or time: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return format_ts(dt)


def normalize_scope(items: list[str]) -> list[str]:
    """``"building 3"`` / ``"building:3"`` -> ``"building:3"``; ``"all"`` -> ``"*"``; door ids as they are."""
    out: list[str] = []
    for raw in items:
        item = raw.strip()
        low = item.lower()
        if low in ("*", "all"):
            item = "*"
        elif low.startswith("building"):
            rest = item[len("building"):].lstrip(" :")
            item = f"building:{rest}"
        elif low.startswith("unit:") or low.startswith("unit "):
            item = f"unit:{item[5:].strip()}"
        if item and item not in out:
            out.append(item)
    return out


def door_in_scope(door: Door, scope: list[str]) -> bool:
    return (door.id in scope or "*" in scope or (bool(door.building) and f"building:{door.building}" in scope)
            or (bool(door.unit) and f"unit:{door.unit}" in scope))


def door_serves_unit(door: Door, unit: str) -> bool:
    """A unit's own doors: its unit entrance, and its building's common entrance."""
    if door.unit:
        return unit == door.unit or unit.startswith(door.unit + "-")
    return bool(door.building) and unit.split("-", 1)[0] == door.building


def in_schedule(windows: list[dict[str, Any]], local: datetime, holidays: set[str]) -> bool:
    """Inside one of the windows (site time); scheduled cards are never let in on holidays."""
    if local.date().isoformat() in holidays:
        return False
    hm = local.strftime("%H:%M")
    day = local.isoweekday()
    return any(day in w["days"] and w["from"] <= hm < w["to"] for w in windows)


def decide(row: Any, door: Door, now_ts: str, local: datetime, holidays: set[str]) -> str | None:
    """Why ``row`` may not pass ``door`` now, or None to grant. Order is the contract's."""
    if row is None:
        return "unknown"
    if row["status"] != "active":
        return "revoked"
    if row["valid_from"] and now_ts < row["valid_from"]:
        return "not_yet_valid"
    if row["valid_until"] and now_ts > row["valid_until"]:
        return "expired"
    if row["schedule"]:
        try:
            windows = json.loads(row["schedule"])
        except ValueError:
            return "outside_schedule"
        if not in_schedule(windows, local, holidays):
            return "outside_schedule"
    try:
        scope = json.loads(row["doors"])
    except ValueError:
        return "not_permitted"
    if not door_in_scope(door, scope):
        return "not_permitted"
    return None


# ---------------------------------------------------------------------- the component
class AccessComponent:
    name = "access"
    migrations: list[tuple[int, str]] = MIGRATIONS

    def __init__(self) -> None:
        self.ctx: GatewayContext | None = None
        self.doors: dict[str, Door] = {}
        self.doors_by_reader: dict[str, list[Door]] = {}
        self.reader_online: dict[str, bool | None] = {}
        self.reader_driver: dict[str, str] = {}
        self.buses: dict[str, Any] = {}          # OSDP port -> OsdpBus
        self.bus_of: dict[str, Any] = {}         # reader id -> OsdpBus
        self.serial_readers: list[Any] = []
        self.queue: asyncio.Queue[tuple[str, Any]] | None = None
        self.holds: dict[str, tuple[list[str], str]] = {}
        self.pending_enrolment: dict[str, str] = {}   # door id -> enrolment id
        self.passback: dict[str, tuple[str, str]] = {}  # door id -> (the pair's entry door, "entry"|"exit")
        self.passback_state: dict[tuple[str, str], str] = {}  # (entry door, card) -> side last passed
        self.holidays: set[str] = set()
        self.stats = {"decisions": 0, "granted": 0, "denied": 0, "bad_reads": 0}
        #: hook for benchmarks/tests: called with (reader, card, monotonic at read) after the relay command
        self.on_decided: Callable[[str, str, float, bool], None] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._no_relay_warned: set[str] = set()
        #: one register sync at a time (a delta must not land in the middle of a staged snapshot)
        self._sync_lock = asyncio.Lock()

    # ------------------------------------------------------------------ lifecycle
    async def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        cfg = ctx.config
        self.holidays = set(cfg.access.holidays)
        now = format_ts(ctx.clock.now())
        for d in cfg.doors:
            door = Door(d.id, d.name, d.building, d.unit, d.reader, d.output, d.input, d.unlock_s, d.held_open_s,
                        since=now)
            self.doors[d.id] = door
            self.doors_by_reader.setdefault(d.reader, []).append(door)
        for pair in cfg.access.anti_passback:
            self.passback[pair.entry] = (pair.entry, "entry")
            self.passback[pair.exit] = (pair.entry, "exit")
        for r in cfg.readers:
            self.reader_online[r.id] = None
            self.reader_driver[r.id] = r.driver
            ctx.devices.declare(r.id, "reader")
        self._load_state()
        self.queue = asyncio.Queue()
        ctx.commands.register("cards.apply", self._cmd_apply, ApplyArgs)
        ctx.commands.register("cards.snapshot", self._cmd_snapshot, SnapshotArgs)
        ctx.commands.register("door.unlock", self._cmd_unlock, DoorUnlockArgs)
        ctx.supervisor.spawn("access.decisions", self._consume)
        # a snapshot's replaced table left behind by a stop: empty it in slices
        self._tasks.append(asyncio.get_running_loop().create_task(self._drop_old_cards(), name="access.cleanup"))
        self._tasks.append(asyncio.get_running_loop().create_task(self._forget_holders_loop(), name="access.privacy"))
        self._start_readers()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for door in self.doors.values():
            for t in (door.held_task, door.relock_task):
                if t is not None:
                    t.cancel()
        loop = asyncio.get_running_loop()
        for bus in self.buses.values():
            await loop.run_in_executor(None, bus.stop)
        for r in self.serial_readers:
            await loop.run_in_executor(None, r.stop)
        self.buses.clear()
        self.serial_readers.clear()

    def _load_state(self) -> None:
        ctx = self._ctx
        for row in ctx.store.query("SELECT token, doors, reason FROM access_holds"):
            self.holds[row["token"]] = (json.loads(row["doors"]), row["reason"])
        now = format_ts(ctx.clock.now())
        for row in ctx.store.query("SELECT id, door FROM access_enrolments WHERE state='pending' AND expires_at > ?",
                                   (now,)):
            self.pending_enrolment[row["door"]] = row["id"]
        for row in ctx.store.query("SELECT entry, card, side FROM access_passback"):
            self.passback_state[(row["entry"], row["card"])] = row["side"]
        for door in self.doors.values():
            self._refresh_state(door)

    @property
    def _ctx(self) -> GatewayContext:
        assert self.ctx is not None, "access component not started"
        return self.ctx

    # ------------------------------------------------------------------ drivers
    def _start_readers(self) -> None:
        from drivers.osdp import OsdpBus, PdSpec, load_scbk

        ctx = self._ctx
        loop = asyncio.get_running_loop()
        osdp_ports: dict[tuple[str, int], list[Any]] = {}
        for r in ctx.config.readers:
            if r.driver == "osdp":
                osdp_ports.setdefault((r.port, r.baud), []).append(r)
            else:
                self._start_serial(r, loop)
        for (port, baud), readers in osdp_ports.items():
            specs = []
            for r in readers:
                key = None
                if r.scbk_file:
                    key = load_scbk(ctx.config.resolve(r.scbk_file))
                else:
                    log.warning("reader %s: no scbk_file, OSDP secure channel is OFF (plain text on the bus)", r.id)
                specs.append(PdSpec(r.id, r.address, key, r.install_mode, key_source=r.scbk_file))
            bus = OsdpBus(port, baud, specs, loop, self.queue)  # type: ignore[arg-type]
            self.buses[port] = bus
            for r in readers:
                self.bus_of[r.id] = bus
            bus.start()
        # reader threads restart themselves after a crash (reported as device.offline); count them on /metrics
        ctx.metrics.gauge_fn("reader_driver_crashes", lambda: sum(
            d.stats.get("crashes", 0) for d in [*self.buses.values(), *self.serial_readers]))

    def _start_serial(self, r: Any, loop: asyncio.AbstractEventLoop) -> None:
        from drivers.ascii_reader import SerialCardReader

        q: asyncio.Queue[Any] = asyncio.Queue()
        reader = SerialCardReader(r.port, r.baud, r.driver, loop, q)
        self.serial_readers.append(reader)
        reader.start()

        async def forward() -> None:
            while True:
                ev = await q.get()
                assert self.queue is not None
                self.queue.put_nowait((r.id, ev))

        self._tasks.append(asyncio.get_running_loop().create_task(forward(), name=f"access.serial.{r.id}"))

    async def _consume(self) -> None:
        """The one place reader events become decisions and door states, in arrival order."""
        assert self.queue is not None
        while True:
            item = await self.queue.get()
            try:
                await self._handle(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("access: handling %s failed", type(item).__name__)

    async def _handle(self, item: Any) -> None:
        from drivers import ascii_reader as ar
        from drivers import osdp

        if isinstance(item, tuple):
            reader, ev = item
            if isinstance(ev, ar.CardSeen):
                await self.card_read(reader, ev.card, time.monotonic())
            elif isinstance(ev, ar.BadFrame):
                self.stats["bad_reads"] += 1
                self._ctx.devices.error(reader, "reader", ev.what)
                log.info("reader %s: bad frame (%s)", reader, ev.what)
            elif isinstance(ev, ar.ReaderLink):
                await self._reader_status(reader, ev.up, ev.reason)
            return
        if isinstance(item, osdp.CardRead):
            await self.card_read(item.reader, item.card, item.at)
        elif isinstance(item, osdp.InputChange):
            await self._input(item.reader, item.number, item.active)
        elif isinstance(item, osdp.ReaderStatus):
            await self._reader_status(item.reader, item.online, item.reason, item.secure)
        elif isinstance(item, osdp.ReaderError):
            self.stats["bad_reads"] += 1
            self._ctx.devices.error(item.reader, "reader", "protocol")
            log.info("reader %s: %s", item.reader, item.what)

    async def _reader_status(self, reader: str, online: bool, reason: str = "", secure: bool = False) -> None:
        self.reader_online[reader] = online
        if self.reader_driver.get(reader) == "osdp":
            self._ctx.devices.declare(reader, "reader").extra["secure_channel"] = secure
        await self._ctx.devices.set_state(reader, "reader", online, reason)
        for door in self.doors_by_reader.get(reader, []):
            self._refresh_state(door)
            if online and self._held_doors().get(door.id):
                self._relay(door, on=True)  # a reader that was away must hold its release again

    # ------------------------------------------------------------------ relay / feedback
    def _relay(self, door: Door, *, on: bool | None = None, pulse_s: float | None = None) -> bool:
        bus = self.bus_of.get(door.reader)
        if bus is None:
            if door.id not in self._no_relay_warned:
                self._no_relay_warned.add(door.id)
                log.warning("door %s: reader %s (%s) has no relay output: decisions are recorded, the lock is "
                            "not driven", door.id, door.reader, self.reader_driver.get(door.reader))
            return False
        return bus.output(door.reader, door.output, on=on, pulse_s=pulse_s)

    def _feedback(self, reader: str, ok: bool, beeps: int = 1) -> None:
        bus = self.bus_of.get(reader)
        if bus is None:
            return
        if ok:
            bus.led(reader, "green", 2.0)
            bus.buzz(reader, beeps)
        else:
            bus.led(reader, "red", 2.0)

    # ------------------------------------------------------------------ card reads
    async def card_read(self, reader: str, card: str, at: float | None = None) -> str | None:
        """A card at ``reader``: enrolment, or a decision. Returns the deny reason (None = granted)."""
        at = time.monotonic() if at is None else at
        doors = self.doors_by_reader.get(reader)
        if not doors:
            log.warning("card read at reader %s which serves no door: ignored", reader)
            return "not_permitted"
        door = doors[0]
        enrolment = self.pending_enrolment.get(door.id)
        if enrolment is not None:
            done = await self._enrol_swipe(enrolment, door, card)
            if done is not None:
                self._feedback(reader, done, beeps=2)
                return None if done else "unknown"
        reason = await self._decide_and_record(door, card)
        if reason is None:
            self._relay(door, pulse_s=door.unlock_s)
            door.authorized_until = time.monotonic() + door.unlock_s + 1.0
            self._feedback(reader, True)
        else:
            self._feedback(reader, False)
        if self.on_decided is not None:
            self.on_decided(reader, card, at, reason is None)
        return reason

    async def _decide_and_record(self, door: Door, card: str) -> str | None:
        ctx = self._ctx
        row = ctx.store.query_one("SELECT * FROM access_cards WHERE card=?", (card,))
        now_ts = format_ts(ctx.clock.now())
        reason = decide(row, door, now_ts, ctx.clock.local(), self.holidays)
        apb = self.passback.get(door.id)
        if reason is None and apb is not None and self.passback_state.get((apb[0], card)) == apb[1]:
            reason = "anti_passback"
        scoped = False
        if row is not None and row["status"] == "active":
            try:
                scoped = door_in_scope(door, json.loads(row["doors"]))
            except ValueError:
                scoped = False

        def txn(conn: sqlite3.Connection, emit: Any) -> None:
            if reason is None:
                emit("access.granted", {"door": door.id, "card": card, "unit": row["unit"],
                                        "holder_kind": row["holder_kind"]})
            else:
                data: dict[str, Any] = {"door": door.id, "card": card, "reason": reason}
                if row is not None:
                    data["unit"] = row["unit"]
                    data["holder_kind"] = row["holder_kind"]
                emit("access.denied", data)
            if scoped:
                self._verify(conn, emit, card, door.id, reason is None, now_ts)
            if reason is None and apb is not None:
                conn.execute("INSERT OR REPLACE INTO access_passback(entry, card, side, at) VALUES(?,?,?,?)",
                             (apb[0], card, apb[1], now_ts))

        await ctx.events.transact(txn)
        self.stats["decisions"] += 1
        self.stats["granted" if reason is None else "denied"] += 1
        ctx.metrics.inc("access_decisions_total", {"result": "granted" if reason is None else reason})
        if reason is None and apb is not None:
            self.passback_state[(apb[0], card)] = apb[1]
        return reason

    def _verify(self, conn: sqlite3.Connection, emit: Any, card: str, door: str, ok: bool, now_ts: str) -> None:
        """First real swipe at a door of the card's scope: verified (or a failed attempt, reported)."""
        done = conn.execute("SELECT 1 FROM access_verifications WHERE card=? AND door=?", (card, door)).fetchone()
        if done:
            return
        if ok:
            conn.execute("INSERT INTO access_verifications(card, door, at) VALUES(?,?,?)", (card, door, now_ts))
        emit("card.verified", {"card": card, "door": door, "ok": ok})

    # ------------------------------------------------------------------ door contact
    async def _input(self, reader: str, number: int, active: bool) -> None:
        for door in self.doors_by_reader.get(reader, []):
            if door.input == number:
                await self.contact(door.id, active)

    async def contact(self, door_id: str, is_open: bool) -> None:
        """The door contact of ``door_id`` reports open/closed."""
        door = self.doors[door_id]
        ctx = self._ctx
        previous = door.contact_open
        door.contact_open = is_open
        if previous is None:  # first report after start: where the door is, not a change
            if is_open:
                self._arm_held_open(door)
            self._refresh_state(door)
            return
        if previous == is_open:
            return
        if is_open:
            authorized = time.monotonic() <= max(door.authorized_until, door.unlock_until) or \
                bool(self._held_doors().get(door.id))

            def opened(conn: sqlite3.Connection, emit: Any) -> None:
                emit("door.opened", {"door": door.id, "authorized": authorized})
                if not authorized:
                    emit("door.forced", {"door": door.id})

            await ctx.events.transact(opened)
            door.forced = not authorized
            if not authorized:
                log.warning("door %s forced open", door.id)
            self._arm_held_open(door)
        else:
            if door.held_task is not None:
                door.held_task.cancel()
                door.held_task = None
            data = {"door": door.id}
            if door.forced or door.held_open:
                data["was"] = "forced" if door.forced else "held_open"
            await ctx.events.record("door.closed", data)
            door.forced = False
            door.held_open = False
        self._refresh_state(door)

    def _arm_held_open(self, door: Door) -> None:
        if door.held_open_s <= 0:
            return
        if door.held_task is not None:
            door.held_task.cancel()
        door.held_task = asyncio.get_running_loop().create_task(self._held_open_after(door), name=f"held.{door.id}")

    async def _held_open_after(self, door: Door) -> None:
        await asyncio.sleep(door.held_open_s)
        if door.contact_open and not self._held_doors().get(door.id):
            door.held_open = True
            await self._ctx.events.record("door.held_open", {"door": door.id, "seconds": door.held_open_s})
            log.warning("door %s held open past %gs", door.id, door.held_open_s)
            self._refresh_state(door)
        door.held_task = None

    # ------------------------------------------------------------------ door states
    def _held_doors(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for doors, reason in self.holds.values():
            for d in doors:
                out.setdefault(d, reason)
        return out

    def _compute_state(self, door: Door) -> str:
        if self.reader_online.get(door.reader) is False:
            return "offline"
        if door.forced and door.contact_open:
            return "forced"
        if door.held_open and door.contact_open:
            return "held_open"
        if self._held_doors().get(door.id) or time.monotonic() < door.unlock_until:
            return "unlocked"
        return "open" if door.contact_open else "closed"

    def _refresh_state(self, door: Door) -> None:
        state = self._compute_state(door)
        if state != door.state:
            door.state = state
            door.since = format_ts(self._ctx.clock.now())

    def door_states(self) -> list[dict[str, Any]]:
        """Live door states for the console and the handover report."""
        out = []
        for door in self.doors.values():
            self._refresh_state(door)
            out.append({"id": door.id, "name": door.name, "building": door.building, "reader": door.reader,
                        "state": door.state, "since": door.since, "contact": (
                            None if door.contact_open is None else ("open" if door.contact_open else "closed")),
                        "reader_online": self.reader_online.get(door.reader)})
        return out

    def handover_items(self) -> dict[str, Any]:
        """Doors in trouble (forced, held open, reader offline, held unlocked), for the shift handover report."""
        trouble = [d for d in self.door_states() if d["state"] in ("forced", "held_open", "offline")
                   or (d["state"] == "unlocked" and self._held_doors().get(d["id"]))]
        return {"doors": trouble}

    # ------------------------------------------------------------------ unlocks and holds
    async def unlock(self, door_id: str, seconds: float | None, actor: str, role: str,
                     reason: str = "operator") -> dict[str, Any]:
        """Momentary remote unlock (audited): relay released for ``seconds``, then relocked."""
        door = self.doors.get(door_id)
        if door is None:
            raise KeyError(door_id)
        if self.reader_online.get(door.reader) is False:
            raise RuntimeError(f"reader {door.reader} of door {door_id} is offline")
        secs = seconds or door.unlock_s
        ctx = self._ctx

        def txn(conn: sqlite3.Connection, emit: Any) -> None:
            emit("door.unlocked", {"door": door.id, "reason": reason, "seconds": secs})
            ctx.audit.insert(conn, actor, role, "door.unlock", door.id, {"seconds": secs, "reason": reason})

        await ctx.events.transact(txn)
        if secs <= 25.5:
            sent = self._relay(door, pulse_s=secs)
        else:
            sent = self._relay(door, on=True)
        door.unlock_until = time.monotonic() + secs
        door.authorized_until = max(door.authorized_until, door.unlock_until + 1.0)
        if door.relock_task is not None:
            door.relock_task.cancel()
        door.relock_task = asyncio.get_running_loop().create_task(self._relock_after(door, secs))
        self._refresh_state(door)
        return {"door": door.id, "unlocked": True, "seconds": secs, "relay_command_sent": sent}

    async def _relock_after(self, door: Door, secs: float) -> None:
        await asyncio.sleep(secs)
        door.relock_task = None
        if self._held_doors().get(door.id):
            return  # a hold keeps it released; release_hold relocks it
        if secs > 25.5:
            self._relay(door, on=False)
        await self._ctx.events.record("door.relocked", {"door": door.id})
        self._refresh_state(door)

    async def hold_unlocked(self, door_ids: list[str], reason: str, token: str) -> None:
        """Keep doors released (fire egress...) until :meth:`release_hold` with the same token."""
        known = [d for d in door_ids if d in self.doors]
        for d in set(door_ids) - set(known):
            log.warning("hold %s: no door %r", token, d)
        before = set(self._held_doors())
        ctx = self._ctx
        now = format_ts(ctx.clock.now())
        newly = [d for d in known if d not in before]

        def txn(conn: sqlite3.Connection, emit: Any) -> None:
            conn.execute("INSERT OR REPLACE INTO access_holds(token, doors, reason, since) VALUES(?,?,?,?)",
                         (token, json.dumps(known), reason, now))
            for d in newly:
                emit("door.unlocked", {"door": d, "reason": reason})

        await ctx.events.transact(txn)
        self.holds[token] = (known, reason)
        for d in known:
            door = self.doors[d]
            door.authorized_until = float("inf")
            if door.held_task is not None:
                door.held_task.cancel()
                door.held_task = None
            self._relay(door, on=True)
            self._refresh_state(door)

    async def release_hold(self, token: str) -> None:
        """End a hold; doors no other hold keeps are relocked (``door.relocked``)."""
        if token not in self.holds:
            return
        doors, _reason = self.holds[token]
        remaining = {d for t, (ds, _r) in self.holds.items() if t != token for d in ds}
        freed = [d for d in doors if d not in remaining]
        ctx = self._ctx

        def txn(conn: sqlite3.Connection, emit: Any) -> None:
            conn.execute("DELETE FROM access_holds WHERE token=?", (token,))
            for d in freed:
                emit("door.relocked", {"door": d})

        await ctx.events.transact(txn)
        del self.holds[token]
        for d in freed:
            door = self.doors[d]
            door.authorized_until = time.monotonic() + 1.0
            self._relay(door, on=False)
            if door.contact_open:
                self._arm_held_open(door)
            self._refresh_state(door)

    # ------------------------------------------------------------------ register
    def _rev(self, conn: sqlite3.Connection | None = None) -> int:
        sql = "SELECT value FROM access_state WHERE key='rev'"
        row = conn.execute(sql).fetchone() if conn is not None else self._ctx.store.query_one(sql)
        return int(row[0]) if row else 0

    def check_spec(self, spec: CardSpec, *, central: bool = False) -> dict[str, Any]:
        """Validate a card spec against the site; returns the normalized columns (raises BadSpec).

        ``central``: the estate-wide register may name doors of other gateways and is
        the authority on its own rules, so only the form is checked.
        """
        ctx = self._ctx
        tz = ctx.clock.tz
        scope = normalize_scope(spec.doors)
        for item in scope:
            if central or item == "*" or item.startswith(("building:", "unit:")):
                continue
            if item not in self.doors:
                raise BadSpec("unknown_door", f"no door {item!r} (doors, 'building:N', 'unit:B-U' or '*')")
        schedule = spec.schedule
        valid_from = parse_when(spec.valid_from, tz)
        valid_until = parse_when(spec.valid_until, tz, end_of_day=True)
        if spec.holder_kind == "worker" and not central:
            scope, schedule, valid_until = self._worker_rules(spec, scope, schedule, valid_until)
        elif spec.holder_kind == "worker" and schedule is None:
            schedule = "working-hours"
        if schedule == "working-hours":
            schedule = self._working_hours()
        windows = None
        if schedule:
            windows = [{"days": w.days, "from": w.start, "to": w.end} if isinstance(w, Window) else w
                       for w in schedule]
        if valid_from and valid_until and valid_until < valid_from:
            raise BadSpec("invalid_time", "valid_until is before valid_from")
        return {"unit": spec.unit, "holder": spec.holder, "holder_kind": spec.holder_kind,
                "doors": scope, "valid_from": valid_from, "valid_until": valid_until, "schedule": windows}

    def _working_hours(self) -> list[Window]:
        a = self._ctx.config.access
        start, end = a.worker_hours.split("-")
        return [Window.model_validate({"days": a.worker_days, "from": start, "to": end})]

    def _worker_rules(self, spec: CardSpec, scope: list[str], schedule: Any,
                      valid_until: str | None) -> tuple[list[str], Any, str | None]:
        """Renovation workers: their unit's doors only, working hours, a bounded validity."""
        unit_doors = [d.id for d in self.doors.values() if door_serves_unit(d, spec.unit)]
        if not scope:
            scope = unit_doors
        bad = [s for s in scope if s not in unit_doors]
        if bad:
            raise BadSpec("worker_scope", f"a worker's card may open only the unit's doors ({', '.join(unit_doors) or 'none configured'}), not {', '.join(bad)}")
        if not scope:
            raise BadSpec("worker_scope", f"no door serves unit {spec.unit}")
        now = self._ctx.clock.now()
        limit = format_ts(now + timedelta(days=self._ctx.config.access.worker_max_days))
        if valid_until is None:
            valid_until = limit
        elif valid_until > limit:
            raise BadSpec("worker_validity", f"a worker's card may be valid for at most {self._ctx.config.access.worker_max_days} days")
        return scope, schedule or "working-hours", valid_until

    def _issue(self, conn: sqlite3.Connection, emit: Any, card: str, cols: dict[str, Any], *, source: str,
               actor: str, role: str) -> None:
        """Insert a new card, emit card.issued and, for a 4th+ household card, card.fee_due."""
        now = format_ts(self._ctx.clock.now())
        existing = conn.execute("SELECT status FROM access_cards WHERE card=?", (card,)).fetchone()
        if existing is not None:
            if existing[0] == "revoked":
                raise BadSpec("card_revoked", f"card {card} was revoked; a revoked card is not issued again")
            raise BadSpec("card_exists", f"card {card} is already issued")
        dec = decode(card)
        conn.execute(
            "INSERT INTO access_cards(card, bits, format, facility, number, unit, holder, holder_kind, doors, "
            "valid_from, valid_until, schedule, status, rev, source, confirmed, issued_at, updated_at) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,'active',?,?,0,?,?)",
            (card, dec.bits, dec.format, dec.facility, dec.number, cols["unit"], cols["holder"], cols["holder_kind"],
             json.dumps(cols["doors"]), cols["valid_from"], cols["valid_until"],
             json.dumps(cols["schedule"]) if cols["schedule"] else None, self._rev(conn), source, now, now))
        emit("card.issued", {"card": card, "unit": cols["unit"], "holder_kind": cols["holder_kind"],
                             "doors": cols["doors"], "valid_from": cols["valid_from"],
                             "valid_until": cols["valid_until"], "schedule": cols["schedule"]})
        self._ctx.audit.insert(conn, actor, role, "card.issue", card,
                               {"unit": cols["unit"], "holder_kind": cols["holder_kind"], "doors": cols["doors"]})
        if cols["holder_kind"] in FEE_KINDS:
            marks = ",".join("?" * len(FEE_KINDS))
            n = conn.execute(f"SELECT COUNT(*) FROM access_cards WHERE unit=? AND status='active' "
                             f"AND holder_kind IN ({marks})", (cols["unit"], *FEE_KINDS)).fetchone()[0]
            if n > self._ctx.config.access.free_cards_per_unit:
                emit("card.fee_due", {"unit": cols["unit"], "card": card, "cards_in_unit": n})

    async def issue_card(self, body: CardIn, actor: str, role: str) -> dict[str, Any]:
        card = normalize_card_id(body.card)
        cols = self.check_spec(body)
        await self._ctx.events.transact(lambda conn, emit: self._issue(conn, emit, card, cols, source="local",
                                                                        actor=actor, role=role))
        return self.card_view(card)  # type: ignore[return-value]

    async def revoke_card(self, card: str, reason: str, actor: str, role: str) -> dict[str, Any]:
        """Revoke now: the very next swipe is denied; emits card.revoked."""
        card = normalize_card_id(card)
        now = format_ts(self._ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Any) -> bool:
            row = conn.execute("SELECT status FROM access_cards WHERE card=?", (card,)).fetchone()
            if row is None:
                raise KeyError(card)
            if row[0] == "revoked":
                return False
            conn.execute("UPDATE access_cards SET status='revoked', revoke_reason=?, updated_at=? WHERE card=?",
                         (reason, now, card))
            emit("card.revoked", {"card": card, "reason": reason})
            self._ctx.audit.insert(conn, actor, role, "card.revoke", card, {"reason": reason})
            return True

        changed = await self._ctx.events.transact(txn)
        log.info("card %s revoked%s", card, "" if changed else " (already)")
        return self.card_view(card)  # type: ignore[return-value]

    def card_view(self, card: str) -> dict[str, Any] | None:
        row = self._ctx.store.query_one("SELECT * FROM access_cards WHERE card=?", (card,))
        return None if row is None else _card_dict(row)

    def list_cards(self, unit: str | None, limit: int, after: str) -> list[dict[str, Any]]:
        if unit:
            rows = self._ctx.store.query("SELECT * FROM access_cards WHERE unit=? AND card > ? ORDER BY card LIMIT ?",
                                         (unit, after, limit))
        else:
            rows = self._ctx.store.query("SELECT * FROM access_cards WHERE card > ? ORDER BY card LIMIT ?",
                                         (after, limit))
        return [_card_dict(r) for r in rows]

    def verification(self, card: str) -> dict[str, Any] | None:
        row = self._ctx.store.query_one("SELECT * FROM access_cards WHERE card=?", (card,))
        if row is None:
            return None
        scope = json.loads(row["doors"])
        done = {r["door"]: r["at"] for r in self._ctx.store.query(
            "SELECT door, at FROM access_verifications WHERE card=?", (card,))}
        doors = [{"door": d.id, "name": d.name, "verified": d.id in done, "at": done.get(d.id)}
                 for d in self.doors.values() if door_in_scope(d, scope)]
        verified = sum(1 for d in doors if d["verified"])
        return {"card": card, "unit": row["unit"], "status": row["status"], "doors": doors,
                "verified": verified, "total": len(doors), "complete": verified == len(doors) and bool(doors)}

    # ------------------------------------------------------------------ enrolment
    async def start_enrolment(self, body: EnrolmentIn, actor: str, role: str) -> dict[str, Any]:
        ctx = self._ctx
        door = self.doors.get(body.door)
        if door is None:
            raise BadSpec("unknown_door", f"no door {body.door!r}")
        self.check_spec(body)  # fail now, not at the door
        now = ctx.clock.now()
        current = self.pending_enrolment.get(door.id)
        if current is not None:
            row = ctx.store.query_one("SELECT state, expires_at FROM access_enrolments WHERE id=?", (current,))
            if row is not None and row["state"] == "pending" and row["expires_at"] > format_ts(now):
                raise BadSpec("enrolment_pending", f"enrolment {current} is already waiting for a swipe at {door.id}")
        enrol_id = uuid.uuid4().hex[:12]
        expires = format_ts(now + timedelta(seconds=ctx.config.access.enrolment_timeout_s))
        spec = body.model_dump(mode="json", by_alias=True, exclude={"door"})

        def txn(conn: sqlite3.Connection, emit: Any) -> None:
            conn.execute("UPDATE access_enrolments SET state='cancelled', done_at=? WHERE door=? AND state='pending'",
                         (format_ts(now), door.id))
            conn.execute("INSERT INTO access_enrolments(id, door, spec, state, created_by, created_at, expires_at) "
                         "VALUES(?,?,?,'pending',?,?,?)", (enrol_id, door.id, json.dumps(spec), actor,
                                                           format_ts(now), expires))
            ctx.audit.insert(conn, actor, role, "enrolment.start", door.id,
                             {"enrolment": enrol_id, "unit": body.unit, "holder_kind": body.holder_kind})

        await ctx.events.transact(txn)
        self.pending_enrolment[door.id] = enrol_id
        if self.bus_of.get(door.reader) is not None:
            self.bus_of[door.reader].led(door.reader, "amber", 3.0)
        return self.enrolment(enrol_id)  # type: ignore[return-value]

    async def _enrol_swipe(self, enrol_id: str, door: Door, card: str) -> bool | None:
        """The swipe an enrolment waited for. True = issued, False = refused, None = not pending any more."""
        ctx = self._ctx
        row = ctx.store.query_one("SELECT * FROM access_enrolments WHERE id=?", (enrol_id,))
        now = format_ts(ctx.clock.now())
        if row is None or row["state"] != "pending" or row["expires_at"] <= now:
            self.pending_enrolment.pop(door.id, None)
            if row is not None and row["state"] == "pending":
                await ctx.store.write(lambda c: c.execute(
                    "UPDATE access_enrolments SET state='expired', done_at=? WHERE id=?", (now, enrol_id)))
            return None
        spec = CardSpec.model_validate(json.loads(row["spec"]))
        self.pending_enrolment.pop(door.id, None)
        try:
            cols = self.check_spec(spec)

            def txn(conn: sqlite3.Connection, emit: Any) -> None:
                self._issue(conn, emit, card, cols, source="local", actor=row["created_by"], role="technician")
                conn.execute("UPDATE access_enrolments SET state='done', card=?, done_at=? WHERE id=?",
                             (card, now, enrol_id))
                if door_in_scope(door, cols["doors"]):
                    self._verify(conn, emit, card, door.id, True, now)

            await ctx.events.transact(txn)
            log.info("enrolment %s: card %s issued at door %s", enrol_id, card, door.id)
            return True
        except BadSpec as exc:
            error = f"{exc.code}: {exc}"
            await ctx.store.write(lambda c: c.execute(
                "UPDATE access_enrolments SET state='failed', card=?, error=?, done_at=? WHERE id=?",
                (card, error, now, enrol_id)))
            log.warning("enrolment %s failed at door %s: %s", enrol_id, door.id, exc.code)
            return False

    def enrolment(self, enrol_id: str) -> dict[str, Any] | None:
        row = self._ctx.store.query_one("SELECT * FROM access_enrolments WHERE id=?", (enrol_id,))
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

    # ------------------------------------------------------------------ sync with central
    def _central_row(self, c: CardIn, now: str, cache: dict[Any, Any]) -> tuple[Any, ...]:
        """One register row from central's card (hot path of a 100,000-card snapshot: caches shared parts)."""
        dec = decode(c.card)
        card = dec.card
        key = (tuple(c.doors), c.valid_from, c.valid_until, c.holder_kind,
               None if c.schedule is None or isinstance(c.schedule, str) else
               tuple((tuple(w.days), w.start, w.end) for w in c.schedule))
        cols = cache.get(key)
        if cols is None:
            spec = self.check_spec(c, central=True)
            cols = cache[key] = (json.dumps(spec["doors"]), spec["valid_from"], spec["valid_until"],
                                 json.dumps(spec["schedule"]) if spec["schedule"] else None)
        return (card, dec.bits, dec.format, dec.facility, dec.number, c.unit, c.holder, c.holder_kind,
                cols[0], cols[1], cols[2], cols[3], c.status, now, now)

    _FIELDS = frozenset(CardIn.model_fields)

    def _fast_row(self, c: dict[str, Any], now: str, cache: dict[Any, Any]) -> tuple[Any, ...] | None:
        """A register row straight from a central card dict, or None if it needs the full model.

        Why: building 100,000 pydantic models leaves ~30 MB of allocator fragmentation behind; plain
        checks of the common, well-formed case leave none (and are faster).
        """
        card, unit, kind = c.get("card"), c.get("unit"), c.get("holder_kind")
        holder, doors, status = c.get("holder", ""), c.get("doors", []), c.get("status", "active")
        vf, vu, schedule = c.get("valid_from"), c.get("valid_until"), c.get("schedule")
        if not (c.keys() <= self._FIELDS and isinstance(card, str) and isinstance(unit, str)
                and _UNIT.match(unit) and kind in HOLDER_KINDS and isinstance(holder, str) and len(holder) <= 200
                and holder == holder.strip() and isinstance(doors, list) and len(doors) <= 2000
                and all(isinstance(d, str) for d in doors) and status in ("active", "revoked")
                and (vf is None or isinstance(vf, str)) and (vu is None or isinstance(vu, str))
                and (schedule is None or schedule == "working-hours")):
            return None
        dec = decode(card)
        key = (tuple(doors), vf, vu, kind, schedule)
        cols = cache.get(key)
        if cols is None:
            spec = self.check_spec(CardIn.model_validate(c), central=True)
            cols = cache[key] = (json.dumps(spec["doors"]), spec["valid_from"], spec["valid_until"],
                                 json.dumps(spec["schedule"]) if spec["schedule"] else None)
        return (dec.card, dec.bits, dec.format, dec.facility, dec.number, unit, holder, kind,
                cols[0], cols[1], cols[2], cols[3], status, now, now)

    UPSERT = (
        "INSERT INTO access_cards(card, bits, format, facility, number, unit, holder, holder_kind, doors, valid_from, "
        "valid_until, schedule, status, issued_at, updated_at, rev, source, confirmed) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?, 'central', 1) "
        "ON CONFLICT(card) DO UPDATE SET unit=excluded.unit, holder=excluded.holder, "
        "holder_kind=excluded.holder_kind, doors=excluded.doors, valid_from=excluded.valid_from, "
        "valid_until=excluded.valid_until, schedule=excluded.schedule, "
        # a revocation always wins: central cannot revive a card revoked here
        "status=CASE WHEN access_cards.status='revoked' THEN 'revoked' ELSE excluded.status END, "
        "rev=excluded.rev, source='central', confirmed=1, updated_at=excluded.updated_at"
    )

    def _rows(self, cards: list[Any], offset: int = 0, rev: int | None = None) -> list[tuple[Any, ...]]:
        """Register rows from central's cards (CardIn or raw dicts, validated here one at a time).

        With ``rev``, each row ends with it (the staging insert's last parameter)."""
        rows = []
        now = format_ts(self._ctx.clock.now())
        cache: dict[Any, Any] = {}
        for i, c in enumerate(cards, start=offset):
            try:
                row = self._fast_row(c, now, cache) if isinstance(c, dict) else None
                if row is None:  # not a plain well-formed card: the model validates it (and names the problem)
                    row = self._central_row(c if isinstance(c, CardIn) else CardIn.model_validate(c), now, cache)
                rows.append(row if rev is None else (*row, rev))
            except (CardFormatError, BadSpec) as exc:
                raise CommandError("bad_card", f"cards[{i}]: {exc}", index=i) from None
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
                raise CommandError("bad_card", f"cards[{i}]: {problems}", index=i) from None
        return rows

    async def _cmd_apply(self, args: ApplyArgs) -> dict[str, Any]:
        upserts = [ch.card for ch in args.changes if ch.op == "upsert" and isinstance(ch.card, CardIn)]
        if any(ch.op == "upsert" and not isinstance(ch.card, CardIn) for ch in args.changes):
            raise CommandError("bad_args", "an upsert needs a card object")
        rows = {r[0]: r for r in self._rows(upserts)}
        now = format_ts(self._ctx.clock.now())
        ctx = self._ctx

        def txn(conn: sqlite3.Connection, emit: Any) -> dict[str, Any]:
            have = self._rev(conn)
            if args.rev == have and args.base_rev <= have:
                return {"applied_rev": have, "already": True}
            if args.base_rev != have:
                raise CommandError("rev_gap", f"register is at rev {have}, delta is based on {args.base_rev}: "
                                              "send cards.snapshot", have_rev=have)
            revoked = 0
            for ch in args.changes:
                if ch.op == "upsert":
                    card = normalize_card_id(ch.card.card)  # type: ignore[union-attr]
                    conn.execute(self.UPSERT, (*rows[card], args.rev))
                else:
                    card = normalize_card_id(ch.card if isinstance(ch.card, str) else ch.card.card)
                    revoked += conn.execute(
                        "UPDATE access_cards SET status='revoked', revoke_reason=?, rev=?, updated_at=?, confirmed=1 "
                        "WHERE card=? AND status!='revoked'", (ch.reason, args.rev, now, card)).rowcount
            conn.execute("INSERT OR REPLACE INTO access_state(key, value) VALUES('rev', ?)", (str(args.rev),))
            ctx.audit.insert(conn, "central", "central", "cards.apply", f"rev {args.rev}",
                             {"base_rev": args.base_rev, "changes": len(args.changes), "revoked": revoked})
            return {"applied_rev": args.rev}

        try:
            async with self._sync_lock:
                return await ctx.events.transact(txn)
        except CardFormatError as exc:
            raise CommandError("bad_card", str(exc)) from None

    async def _cmd_snapshot(self, args: SnapshotArgs) -> dict[str, Any]:
        return await self.apply_snapshot(args.rev, args.cards)

    async def apply_snapshot(self, rev: int, cards: list[Any]) -> dict[str, Any]:
        """Replace central's card set atomically; local revocations and unseen local issues stay.

        Why staged: writing 100,000 rows in the one transaction that swaps them in would hold the
        store's single writer for seconds, and every swipe's event (hence its relay) would wait.
        So the new set is written into a staging table in small transactions that interleave with
        swipes, and one short transaction merges what must survive and swaps the tables. Decisions
        read the live table, which is the whole old set until that commit and the whole new set after.
        """
        async with self._sync_lock:
            have = self._rev()
            if rev < have:  # a late or replayed old snapshot must not roll the register back
                raise CommandError("stale_rev", f"register is already at rev {have}; snapshot rev {rev} is older",
                                   have_rev=have)
            return await self._apply_snapshot(rev, cards)

    async def _apply_snapshot(self, rev: int, cards: list[Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        ctx = self._ctx
        index = await ctx.store.write(self._create_staging)
        count = 0
        writing: asyncio.Future[Any] | None = None
        try:
            # pipeline: validate the next chunk while the writer stores the previous one. Validation runs
            # on the loop in small slices (a thread would fight the loop for the GIL and slow every swipe)
            for start in range(0, len(cards), SNAPSHOT_CHUNK):
                rows = []
                for sl in range(start, min(start + SNAPSHOT_CHUNK, len(cards)), SNAPSHOT_SLICE):
                    rows += self._rows(cards[sl:sl + SNAPSHOT_SLICE], sl, rev)
                    await asyncio.sleep(0)
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(ctx.store.write(lambda c, rows=rows: c.executemany(STAGE_INSERT, rows)))
                count += len(rows)
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                await asyncio.gather(writing, return_exceptions=True)

        def swap(conn: sqlite3.Connection, emit: Any) -> dict[str, Any]:
            # what survives a snapshot: unseen local issues, and every revocation made here
            conn.execute("INSERT OR IGNORE INTO access_cards_next SELECT * FROM access_cards "
                         "WHERE status='revoked' OR (source='local' AND confirmed=0)")
            conn.execute("UPDATE access_cards_next SET status='revoked', revoke_reason=o.revoke_reason "
                         "FROM (SELECT card, revoke_reason FROM access_cards WHERE status='revoked') AS o "
                         "WHERE access_cards_next.card = o.card AND access_cards_next.status != 'revoked'")
            # renames are cheap; dropping 100,000 rows is not: the old table is emptied in slices afterwards
            conn.execute("ALTER TABLE access_cards RENAME TO access_cards_old")
            conn.execute("ALTER TABLE access_cards_next RENAME TO access_cards")
            conn.execute("INSERT OR REPLACE INTO access_state(key, value) VALUES('rev', ?)", (str(rev),))
            ctx.audit.insert(conn, "central", "central", "cards.snapshot", f"rev {rev}", {"count": count})
            return {"applied_rev": rev, "count": count}

        result = await ctx.events.transact(swap)
        log.info("card snapshot rev %d applied: %d cards (unit index %s)", rev, count, index)
        self._tasks.append(loop.create_task(self._drop_old_cards(), name="access.snapshot-cleanup"))
        # the parsed payload is freed once the command returns; give that memory back to the OS then
        loop.call_later(0.5, release_memory)
        return result

    async def _forget_holders_loop(self) -> None:
        """Hourly: erase holder names the register no longer needs (see ``forget_revoked_holders``)."""
        while True:
            try:
                await self.forget_revoked_holders()
            except sqlite3.Error as exc:
                log.warning("privacy sweep failed (will retry in an hour): %s", exc)
            await asyncio.sleep(3600)

    async def forget_revoked_holders(self) -> int:
        """Erase the names of holders whose card was revoked more than ``holder_retention_days`` ago.

        A name is personal data: the register keeps it while the card may open doors and for the
        retention period after (disputes, the owner's signature), then it goes. Finished or expired
        enrolments lose theirs after the same period. Returns the number of cards affected.
        """
        ctx = self._ctx
        cutoff = format_ts(ctx.clock.now() - timedelta(days=ctx.config.access.holder_retention_days))

        def txn(conn: sqlite3.Connection, emit: Any) -> int:
            # overwrite the freed bytes too, so the name does not linger in the file's free space
            conn.execute("PRAGMA secure_delete=ON")
            try:
                n = conn.execute("UPDATE access_cards SET holder='' WHERE status='revoked' AND holder!='' "
                                 "AND updated_at <= ?", (cutoff,)).rowcount
                conn.execute("UPDATE access_enrolments SET spec=json_remove(spec, '$.holder') WHERE state!='pending' "
                             "AND created_at <= ? AND json_extract(spec, '$.holder') IS NOT NULL", (cutoff,))
            finally:
                conn.execute("PRAGMA secure_delete=OFF")
            if n:
                ctx.audit.insert(conn, "gateway", "system", "cards.forget_holders", f"{n} cards",
                                 {"revoked_before": cutoff})
            return n

        n = await ctx.events.transact(txn)
        if n:
            log.info("privacy: erased the holder names of %d cards revoked before %s", n, cutoff)
        return n

    async def _drop_old_cards(self) -> None:
        """Empty the replaced table a slice per transaction (swipes' writes go in between), then drop it."""
        store = self._ctx.store
        async with self._sync_lock:  # the next sync waits until the old set is gone
            while await store.write(self._drop_old_slice):
                await asyncio.sleep(0)

    @staticmethod
    def _drop_old_slice(conn: sqlite3.Connection) -> int:
        """Delete one slice of the replaced table; drop it once empty. Returns rows deleted (0 = done)."""
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name='access_cards_old'").fetchone():
            return 0
        n = conn.execute("DELETE FROM access_cards_old WHERE rowid IN "
                         "(SELECT rowid FROM access_cards_old LIMIT ?)", (SNAPSHOT_CHUNK,)).rowcount
        if n == 0:
            conn.execute("DROP TABLE access_cards_old")
        return n

    @staticmethod
    def _create_staging(conn: sqlite3.Connection) -> str:
        """An empty copy of the cards table; its unit index takes the name the live one does not use."""
        conn.execute("DROP TABLE IF EXISTS access_cards_old")
        conn.execute("DROP TABLE IF EXISTS access_cards_next")
        # the live table's own definition (whatever migrations made of it), under the staging name
        live_sql = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='access_cards'").fetchone()[0]
        conn.execute(re.sub(r'^CREATE TABLE\s+(["`]?)access_cards\1', "CREATE TABLE access_cards_next", live_sql))
        live = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='access_cards'")}
        index = "access_cards_unit_b" if "access_cards_unit_a" in live else "access_cards_unit_a"
        conn.execute(f"CREATE INDEX {index} ON access_cards_next(unit)")
        return index

    async def _cmd_unlock(self, args: DoorUnlockArgs) -> dict[str, Any]:
        try:
            return await self.unlock(args.door, args.seconds, "central", "central")
        except KeyError:
            raise CommandError("unknown_door", f"no door {args.door!r}") from None
        except RuntimeError as exc:
            raise CommandError("reader_offline", str(exc)) from None

    # ------------------------------------------------------------------ HTTP
    def routes(self) -> APIRouter:
        r = APIRouter(tags=["access"])
        reader_roles = require_role("technician", "operator")
        tech = require_role("technician")
        operator = require_role("operator")

        @r.get("/cards")
        async def list_cards(unit: str | None = Query(default=None, max_length=64),
                             after: str = Query(default="", max_length=300),
                             limit: int = Query(default=500, ge=1, le=5000),
                             who: Principal = Depends(reader_roles)) -> dict[str, Any]:
            items = self.list_cards(unit, limit, after)
            return {"items": items, "rev": self._rev(), "next": items[-1]["card"] if len(items) == limit else None}

        @r.post("/cards", status_code=201, responses=error_responses(409))
        async def post_card(body: CardIn, who: Principal = Depends(tech)) -> dict[str, Any]:
            if body.status != "active":
                raise ApiError(422, "invalid", "a new card is issued active; revoke it with /cards/{card}/revoke")
            try:
                return await self.issue_card(body, who.name, who.role)
            except CardFormatError as exc:
                raise ApiError(422, "invalid_card", str(exc)) from None
            except BadSpec as exc:
                raise ApiError(409 if exc.code in ("card_exists", "card_revoked") else 422, exc.code, str(exc)) from None

        @r.post("/cards/{card}/revoke", responses=error_responses(404))
        async def revoke(card: str, body: RevokeIn | None = None, who: Principal = Depends(tech)) -> dict[str, Any]:
            try:
                return await self.revoke_card(card, (body or RevokeIn()).reason, who.name, who.role)
            except CardFormatError as exc:
                raise ApiError(422, "invalid_card", str(exc)) from None
            except KeyError:
                raise ApiError(404, "not_found", f"no card {card}") from None

        @r.get("/cards/{card}/verification", responses=error_responses(404))
        async def verification(card: str, who: Principal = Depends(tech)) -> dict[str, Any]:
            try:
                result = self.verification(normalize_card_id(card))
            except CardFormatError as exc:
                raise ApiError(422, "invalid_card", str(exc)) from None
            if result is None:
                raise ApiError(404, "not_found", f"no card {card}")
            return result

        @r.post("/enrolments", status_code=201, responses=error_responses(404, 409))
        async def post_enrolment(body: EnrolmentIn, who: Principal = Depends(tech)) -> dict[str, Any]:
            try:
                return await self.start_enrolment(body, who.name, who.role)
            except BadSpec as exc:
                status = 404 if exc.code == "unknown_door" and body.door not in self.doors else \
                    409 if exc.code == "enrolment_pending" else 422
                raise ApiError(status, exc.code, str(exc)) from None

        @r.get("/enrolments/{enrol_id}", responses=error_responses(404))
        async def get_enrolment(enrol_id: str, who: Principal = Depends(tech)) -> dict[str, Any]:
            result = self.enrolment(enrol_id)
            if result is None:
                raise ApiError(404, "not_found", f"no enrolment {enrol_id}")
            return result

        @r.get("/doors")
        async def doors(who: Principal = Depends(operator)) -> dict[str, Any]:
            return {"items": self.door_states()}

        @r.post("/doors/{door_id}/unlock", responses=error_responses(404, 409))
        async def unlock(door_id: str, body: UnlockIn | None = None,
                         who: Principal = Depends(operator)) -> dict[str, Any]:
            try:
                return await self.unlock(door_id, (body or UnlockIn()).seconds, who.name, who.role)
            except KeyError:
                raise ApiError(404, "not_found", f"no door {door_id}") from None
            except RuntimeError as exc:
                raise ApiError(409, "reader_offline", str(exc)) from None

        return r


def _card_dict(row: Any) -> dict[str, Any]:
    return {"card": row["card"], "bits": row["bits"], "format": row["format"], "facility": row["facility"],
            "number": row["number"], "unit": row["unit"], "holder": row["holder"], "holder_kind": row["holder_kind"],
            "doors": json.loads(row["doors"]), "valid_from": row["valid_from"], "valid_until": row["valid_until"],
            "schedule": json.loads(row["schedule"]) if row["schedule"] else None, "status": row["status"],
            "revoke_reason": row["revoke_reason"] or None, "rev": row["rev"], "source": row["source"],
            "issued_at": row["issued_at"], "updated_at": row["updated_at"]}
