"""Alarms: lifecycle, escalation, panel supervision, fire linkage, shift handover.

Why it is built this way:

* **Nothing missed.** Every signal from a panel is committed (alarm row + ``alarm.*`` event +
  the panel log row, one transaction) *before* the panel gets its ACK / confirm. A DC-09 block
  retried after a crash is recognised by (receiver, account, sequence, content digest) in
  ``alarm_dedupe`` and ACKed again without a second alarm.
* **Every alarm is seen by a person.** Lifecycle ``raised -> acknowledged`` (operator, with a
  note) and ``restored`` (from the panel) in either order; ``closed`` once both happened
  (a test alarm closes on acknowledgement alone). Unacknowledged alarms emit
  ``alarm.escalated`` after ``[alarms] escalate_s[kind]`` and again each interval after.
* **Panels are supervised.** Any valid message (NULL poll, periodic test 602/RP, events)
  refreshes a receiver's liveness; silence past ``supervision_s`` raises a ``fault`` alarm and
  marks the receiver offline; the next message restores both.
* **Fire linkage works offline.** A fire/smoke alarm in a zone with ``unlock_doors`` asks the
  access component to hold those doors released (token ``alarm-<id>``) right after the commit;
  the hold is released when the alarm closes (restored *and* acknowledged). Holds still owed
  are re-applied at start, so a crash in between cannot leave egress doors locked.
* **Handover.** ``GET /handover`` gathers what is still open from every component;
  ``POST /handover`` records it (audited) and emits ``shift.handover``.

One asyncio loop owns the in-memory state (liveness); all durable state is in SQLite.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from drivers import contact_id as cid
from drivers import gb26875 as gb
from drivers.alarm_stream import LineDecoder, SerialSource, serve_tcp
from drivers.sia_dc09 import BlockError, Dc09Message, Dc09Receiver, Verdict, load_key
from gateway.api.auth import Principal, require_role
from gateway.api.errors import ApiError, error_responses
from gateway.config import AlarmsSection
from gateway.context import GatewayContext
from gateway.events import format_ts

log = logging.getLogger(__name__)

#: an alarm id is a SQLite rowid: a positive int64 (a bigger one is a 422, not an OverflowError)
ALARM_ID = Path(ge=1, le=2 ** 63 - 1)

KINDS = ("fire", "smoke", "burglary", "panic", "fault", "supervisory", "test", "other")
FIRE_KINDS = ("fire", "smoke")
STATES = ("raised", "acknowledged", "restored", "closed")
#: kinds that never get a restore from the panel: acknowledging closes them
NO_RESTORE_KINDS = ("test",)
SILENT_CODE = "silent"
#: how long the receive path waits for the access component to release doors before answering the panel
LINKAGE_WAIT_S = 3.0
DEFAULT_ESCALATE: dict[str, float] = dict(AlarmsSection.model_fields["escalate_s"].default)
#: events the incoming shift hears about even when the trouble is over (a door forced and closed again, a reader
#: or meter that went offline and came back): ``events_since`` in the handover report, from the local event log
HANDOVER_EVENTS = ("door.forced", "door.held_open", "device.offline", "device.online", "meter.offline",
                   "meter.online", "meter.anomaly", "alarm.escalated")
#: at most this many (the newest) in one report; ``events_since_truncated`` says when more happened
HANDOVER_EVENTS_MAX = 200

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE alarms (
            id INTEGER PRIMARY KEY,
            receiver TEXT NOT NULL,
            account TEXT NOT NULL,
            zone INTEGER NOT NULL,
            code TEXT NOT NULL,
            kind TEXT NOT NULL,
            building TEXT NOT NULL DEFAULT '',
            name TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL,               -- raised | acknowledged | restored | closed
            raised_at TEXT NOT NULL,
            acked_at TEXT, acked_by TEXT, note TEXT,
            restored_at TEXT, closed_at TEXT,
            repeats INTEGER NOT NULL DEFAULT 0,
            escalations INTEGER NOT NULL DEFAULT 0,
            escalated_at TEXT,
            unlock_doors TEXT NOT NULL DEFAULT '[]',
            hold_released INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX alarms_state ON alarms(state, id);
        CREATE INDEX alarms_match ON alarms(receiver, account, zone, kind, state);
        CREATE INDEX alarms_hold ON alarms(hold_released) WHERE hold_released = 0;
        -- escalation looks only at alarms that are due (cheap however many are open)
        CREATE INDEX alarms_unacked ON alarms(kind, COALESCE(escalated_at, raised_at))
            WHERE acked_at IS NULL AND state != 'closed';
        -- DC-09 blocks already committed: a retry of one is ACKed again, not a second alarm
        CREATE TABLE alarm_dedupe (
            receiver TEXT NOT NULL, account TEXT NOT NULL, seq TEXT NOT NULL,
            digest TEXT NOT NULL, received_at TEXT NOT NULL,
            PRIMARY KEY (receiver, account, seq)
        ) WITHOUT ROWID;
        CREATE INDEX alarm_dedupe_age ON alarm_dedupe(received_at);
        -- the panel log: every signal received (alarms, restores, openings/closings, tests)
        CREATE TABLE alarm_signals (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            receiver TEXT NOT NULL, account TEXT NOT NULL, code TEXT NOT NULL, zone INTEGER NOT NULL,
            kind TEXT NOT NULL, restore INTEGER NOT NULL, alarm INTEGER, raw TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX alarm_signals_ts ON alarm_signals(ts);
        CREATE TABLE shift_handovers (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            shift TEXT NOT NULL,
            from_who TEXT NOT NULL, to_who TEXT NOT NULL,
            notes TEXT NOT NULL DEFAULT '',
            open_alarms TEXT NOT NULL DEFAULT '[]',
            recorded_by TEXT NOT NULL
        );
        """,
    ),
]


@dataclass(frozen=True)
class Signal:
    """One thing a panel said, normalised across protocols."""

    receiver: str
    account: str
    code: str
    zone: int
    kind: str
    text: str = ""
    restore: bool = False
    informational: bool = False   # logged only (openings/closings...)
    raw: str = ""


@dataclass
class Outcome:
    """What a committed batch of signals changed, for the actions taken after the commit."""

    duplicate: bool = False
    raised: list[int] = field(default_factory=list)
    holds: list[tuple[int, list[str]]] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)


class AlarmNotFound(KeyError):
    pass


class AlarmAlreadyAcknowledged(Exception):
    pass


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    note: str = Field(min_length=1, max_length=1000)


class HandoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)
    from_: str = Field(alias="from", min_length=1, max_length=100)
    to: str = Field(min_length=1, max_length=100)
    notes: str = Field(default="", max_length=10_000)


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()


# ---------------------------------------------------------------------- protocol -> signals
def signals_from_dc09(receiver: str, msg: Dc09Message) -> list[Signal]:
    """The signals in a DC-09 block (empty for NULL). Raises ContactIdError for unknown content."""
    if msg.id_token == "NULL":
        return []
    if msg.id_token == "ADM-CID":
        ev = cid.parse_payload(msg.account, msg.payload)
        return [_cid_signal(receiver, ev, msg.payload)]
    out = []
    for e in cid.parse_sia(msg.payload):
        out.append(Signal(receiver, msg.account.upper(), e.code, e.zone, e.kind, e.text, e.restore,
                          e.informational or e.liveness_only, msg.payload[:200]))
    return out


def _cid_signal(receiver: str, ev: cid.ContactIdEvent, raw: str) -> Signal:
    return Signal(receiver, ev.account, f"{ev.code:03d}", ev.zone, ev.kind, ev.text, ev.restore,
                  ev.informational, raw[:200])


def signals_from_gb(receiver: str, frame: gb.Frame) -> list[Signal]:
    """GB/T 26875.3 status objects: a set alarm bit raises, a clear one restores that kind."""
    account = frame.source.hex().upper()
    out: list[Signal] = []
    for unit in frame.units:
        if isinstance(unit, gb.ComponentStatus):
            zone, text = unit.component_address, unit.description or gb.COMPONENT_TYPES.get(unit.component_type, "")
        elif isinstance(unit, gb.SystemStatus):
            zone, text = 0, gb.SYSTEM_TYPES.get(unit.system_type, f"system {unit.system_type}")
        else:
            continue
        active = {kind for bit, kind in gb.ALARM_BITS if unit.status >> bit & 1}
        raw = f"status=0x{unit.status:04X} {','.join(unit.flags)}"
        for kind in sorted({k for _b, k in gb.ALARM_BITS}):
            if kind in active:
                bits = [gb.BIT_NAMES[b] for b, k in gb.ALARM_BITS if k == kind and unit.status >> b & 1]
                out.append(Signal(receiver, account, f"GB-{bits[0]}", zone, kind, text, False, False, raw))
            else:
                out.append(Signal(receiver, account, f"GB-{kind}", zone, kind, text, True, False, raw))
    return out


# ---------------------------------------------------------------------- the component
class AlarmsComponent:
    name = "alarms"
    migrations: list[tuple[int, str]] = MIGRATIONS

    def __init__(self) -> None:
        self.ctx: GatewayContext | None = None
        self.zones: dict[tuple[str, int], Any] = {}
        self.receivers: dict[str, Any] = {}          # id -> Dc09Receiver / asyncio Server / SerialSource
        self.ports: dict[str, int] = {}              # id -> bound TCP port (listen = ...:0 in tests)
        #: liveness per panel: (receiver id, account) -> monotonic; account "" = the receiver as a whole
        self.last_heard: dict[tuple[str, str], float] = {}
        self.silent: set[tuple[str, str]] = set()
        self._heard_again: set[tuple[str, str]] = set()
        self.stats = {"signals": 0, "duplicates": 0, "errors": 0}
        self._tasks: list[asyncio.Task[Any]] = []
        self._servers: list[Any] = []
        #: hook for tests/benchmarks: awaited after each committed outcome
        self.on_outcome: Callable[[Outcome], Any] | None = None
        #: fault injection for the crash test: hold each DC-09 ACK back this long after the commit
        self.ack_delay_s = float(os.environ.get("EGW_FAULT_ALARM_ACK_DELAY_S", "0") or 0)

    @property
    def _ctx(self) -> GatewayContext:
        assert self.ctx is not None, "alarms component not started"
        return self.ctx

    # ------------------------------------------------------------------ lifecycle
    async def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        cfg = ctx.config
        self.zones = {(z.receiver, z.zone): z for z in cfg.alarm_zones}
        now = time.monotonic()
        for rc in cfg.alarm_receivers:
            ctx.devices.declare(rc.id, "receiver")
            for acct in self._panels(rc):
                self.last_heard[(rc.id, acct)] = now
        self.silent = {(r["receiver"], r["account"]) for r in ctx.store.query(
            "SELECT DISTINCT receiver, account FROM alarms WHERE code=? AND restored_at IS NULL AND state != 'closed'",
            (SILENT_CODE,))}
        await self._reconcile_holds()
        for rc in cfg.alarm_receivers:
            await self._start_receiver(rc)
        ctx.supervisor.spawn("alarms.watch", self._watch)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for s in self._servers:
            try:
                if isinstance(s, Dc09Receiver):
                    await s.close()
                elif isinstance(s, SerialSource):
                    s.stop()
                else:
                    s.close()
            except Exception:
                log.exception("alarms: closing a receiver failed")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._servers.clear()

    async def _start_receiver(self, rc: Any) -> None:
        ctx = self._ctx
        if rc.protocol == "sia-dc09":
            host, _, port = rc.listen.rpartition(":")
            try:
                key = load_key(ctx.config.resolve(rc.key_file).read_text()) if rc.key_file else None
            except (OSError, ValueError) as exc:
                # refuse to listen rather than accept encrypted panels we cannot read: the receiver shows offline
                log.error("alarm receiver %s: bad key_file: %s", rc.id, exc)
                await ctx.devices.set_state(rc.id, "receiver", False, "bad key_file")
                return
            recv = Dc09Receiver(host.strip("[]") or "0.0.0.0", int(port), lambda m, r=rc.id: self._on_dc09(r, m),
                                accounts=rc.accounts or None, key=key, clock=ctx.clock.now,
                                on_error=lambda e, r=rc.id: self._on_block_error(r, e))
            self.receivers[rc.id] = recv
            self._servers.append(recv)
            try:
                self.ports[rc.id] = await recv.start()
            except OSError as exc:
                # port taken (or not ours): the rest of the gateway runs; the supervisor keeps retrying
                log.error("alarm receiver %s: cannot listen on %s: %s", rc.id, rc.listen, exc)
                await ctx.devices.set_state(rc.id, "receiver", False, f"cannot listen: {exc}")

            async def serve(recv: Dc09Receiver = recv, rid: str = rc.id) -> None:
                if rid not in self.ports:
                    self.ports[rid] = await recv.start()
                    await self._listening(rid)
                await recv.serve_forever()

            ctx.supervisor.spawn(f"alarms.{rc.id}", serve, device=(rc.id, "receiver"))
            if rc.id in self.ports:
                await self._listening(rc.id)
                log.info("alarm receiver %s: SIA DC-09 on %s:%d%s", rc.id, host, self.ports[rc.id],
                         " (AES)" if key else "")
            return
        if rc.protocol == "contact-id-serial":
            decoder: Callable[[], Any] = LineDecoder
            handler = lambda item, r=rc: self._on_cid_line(r, item)  # noqa: E731
        else:
            decoder = gb.FrameReader
            handler = lambda item, r=rc: self._on_gb(r, item)  # noqa: E731
        if rc.listen:
            host, _, port = rc.listen.rpartition(":")
            try:
                server = await serve_tcp(host.strip("[]") or "0.0.0.0", int(port), decoder, handler)
            except OSError as exc:
                log.error("alarm receiver %s: cannot listen on %s: %s", rc.id, rc.listen, exc)
                await ctx.devices.set_state(rc.id, "receiver", False, f"cannot listen: {exc}")
                return
            self.ports[rc.id] = server.sockets[0].getsockname()[1]
            self.receivers[rc.id] = server
            self._servers.append(server)
            await self._listening(rc.id)
        else:
            src = SerialSource(rc.port, rc.baud, decoder(), handler,
                               on_link=lambda up, why, r=rc.id: self._ctx.devices.set_state(r, "receiver", up, why))
            self.receivers[rc.id] = src
            self._servers.append(src)
            ctx.supervisor.spawn(f"alarms.{rc.id}", src.run, device=(rc.id, "receiver"))
        log.info("alarm receiver %s: %s on %s", rc.id, rc.protocol, rc.listen or rc.port)

    async def _listening(self, receiver: str) -> None:
        silent = any(r == receiver for r, _a in self.silent)   # still silent from before a restart
        await self._ctx.devices.set_state(receiver, "receiver", not silent, "panel silent" if silent else "")

    # ------------------------------------------------------------------ protocol handlers
    async def _on_dc09(self, receiver: str, msg: Dc09Message) -> Verdict:
        """Commit what the block says; the receiver ACKs once this returns."""
        try:
            signals = signals_from_dc09(receiver, msg)
        except cid.ContactIdError as exc:
            self._count_error(receiver, f"payload: {exc}")
            return Verdict.DUH
        dedupe = None
        if signals:
            dedupe = (msg.account.upper(), msg.seq, _digest(msg.id_token, msg.data, *msg.extended))
        await self.process(receiver, signals, dedupe=dedupe, account=msg.account.upper())
        if self.ack_delay_s:
            await asyncio.sleep(self.ack_delay_s)
        return Verdict.ACK

    def _on_block_error(self, receiver: str, err: BlockError) -> None:
        self._count_error(receiver, err.what)

    async def _on_cid_line(self, rc: Any, line: str) -> bytes | None:
        try:
            ev = cid.parse_line(line)
        except cid.ContactIdError as exc:
            self._count_error(rc.id, f"contact id: {exc}")
            return None
        if rc.accounts and ev.account not in {a.upper() for a in rc.accounts}:
            self._count_error(rc.id, "account not accepted")
            return None
        await self.process(rc.id, [_cid_signal(rc.id, ev, line.strip())])
        return None

    async def _on_gb(self, rc: Any, item: Any) -> bytes | None:
        if isinstance(item, gb.BadFrame):
            self._count_error(rc.id, f"gb26875: {item.what}")
            return None
        if rc.accounts and item.source.hex().upper() not in {a.upper() for a in rc.accounts}:
            self._count_error(rc.id, "gb26875: source address not accepted")
            return gb.build_deny(item)
        if item.command not in (gb.CMD_SEND, gb.CMD_REPLY):
            self.heard(rc.id, item.source.hex().upper())
            return None
        await self.process(rc.id, signals_from_gb(rc.id, item))
        return gb.build_confirm(item, time=self._ctx.clock.local().replace(tzinfo=None))

    def _count_error(self, receiver: str, what: str) -> None:
        self.stats["errors"] += 1
        self._ctx.devices.error(receiver, "receiver", what.split(":")[0][:40])
        log.warning("alarm receiver %s: refused input (%s)", receiver, what)

    # ------------------------------------------------------------------ the core: commit signals
    async def process(self, receiver: str, signals: list[Signal], *,
                      dedupe: tuple[str, str, str] | None = None, account: str | None = None) -> Outcome:
        """Commit signals (and the dedupe row) in one transaction, then act: liveness, fire linkage."""
        ctx = self._ctx
        now = format_ts(ctx.clock.now())
        outcome = await ctx.events.transact(lambda conn, emit: self._commit(conn, emit, now, signals, dedupe))
        self.heard(receiver, account if account is not None else (signals[0].account if signals else ""))
        if outcome.duplicate:
            self.stats["duplicates"] += 1
        self.stats["signals"] += len(signals)
        for alarm_id, doors in outcome.holds:
            await self._hold(alarm_id, doors)
        for alarm_id in outcome.closed:
            await self._release(alarm_id)
        if self.on_outcome is not None:
            res = self.on_outcome(outcome)
            if asyncio.iscoroutine(res):
                await res
        return outcome

    def _commit(self, conn: sqlite3.Connection, emit: Any, now: str, signals: list[Signal],
                dedupe: tuple[str, str, str] | None) -> Outcome:
        out = Outcome()
        if dedupe is not None and signals:
            account, seq, digest = dedupe
            row = conn.execute("SELECT digest FROM alarm_dedupe WHERE receiver=? AND account=? AND seq=?",
                               (signals[0].receiver, account, seq)).fetchone()
            if row is not None and row[0] == digest:
                out.duplicate = True
                return out
            conn.execute("INSERT OR REPLACE INTO alarm_dedupe(receiver, account, seq, digest, received_at) "
                         "VALUES(?,?,?,?,?)", (signals[0].receiver, account, seq, digest, now))
        for s in signals:
            if s.informational:
                self._log_signal(conn, now, s, None)
            elif s.restore:
                self._restore(conn, emit, now, s, out)
            else:
                self._raise(conn, emit, now, s, out)
        return out

    @staticmethod
    def _log_signal(conn: sqlite3.Connection, now: str, s: Signal, alarm: int | None) -> None:
        conn.execute("INSERT INTO alarm_signals(ts, receiver, account, code, zone, kind, restore, alarm, raw) "
                     "VALUES(?,?,?,?,?,?,?,?,?)",
                     (now, s.receiver, s.account, s.code, s.zone, s.kind, int(s.restore), alarm, s.raw))

    def _raise(self, conn: sqlite3.Connection, emit: Any, now: str, s: Signal, out: Outcome) -> None:
        # the same condition reported again while still active is one alarm, not two
        row = conn.execute("SELECT id FROM alarms WHERE receiver=? AND account=? AND zone=? AND kind=? AND code=? "
                           "AND restored_at IS NULL AND state != 'closed' ORDER BY id DESC LIMIT 1",
                           (s.receiver, s.account, s.zone, s.kind, s.code)).fetchone()
        if row is not None:
            conn.execute("UPDATE alarms SET repeats = repeats + 1 WHERE id=?", (row[0],))
            self._log_signal(conn, now, s, row[0])
            return
        zone = self.zones.get((s.receiver, s.zone))
        building = zone.building if zone else ""
        name = zone.name if zone else ""
        doors = list(zone.unlock_doors) if zone and s.kind in FIRE_KINDS else []
        cur = conn.execute(
            "INSERT INTO alarms(receiver, account, zone, code, kind, building, name, text, state, raised_at, "
            "unlock_doors, hold_released) VALUES(?,?,?,?,?,?,?,?,'raised',?,?,?)",
            (s.receiver, s.account, s.zone, s.code, s.kind, building, name, s.text, now, json.dumps(doors),
             0 if doors else 1))
        alarm_id = int(cur.lastrowid or 0)
        self._log_signal(conn, now, s, alarm_id)
        emit("alarm.raised", {"alarm": alarm_id, "receiver": s.receiver, "account": s.account, "zone": s.zone,
                              "code": s.code, "kind": s.kind, "building": building, "name": name, "text": s.text})
        out.raised.append(alarm_id)
        if doors:
            out.holds.append((alarm_id, doors))

    def _restore(self, conn: sqlite3.Connection, emit: Any, now: str, s: Signal, out: Outcome) -> None:
        sql = ("SELECT id, acked_at FROM alarms WHERE receiver=? AND account=? AND zone=? AND kind=? "
               "AND restored_at IS NULL AND state != 'closed'")
        params: tuple[Any, ...] = (s.receiver, s.account, s.zone, s.kind)
        if s.code == SILENT_CODE:
            sql, params = sql + " AND code=?", (*params, s.code)
        else:   # a panel's own restore never ends the gateway's silence alarm
            sql, params = sql + " AND code != ?", (*params, SILENT_CODE)
        rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        if not rows:
            if not s.code.startswith("GB-"):   # GB frames restore every clear bit: only log real ones
                self._log_signal(conn, now, s, None)
            return
        for alarm_id, acked_at in rows:
            self._log_signal(conn, now, s, alarm_id)
            state = "closed" if acked_at else "restored"
            conn.execute("UPDATE alarms SET restored_at=?, state=?, closed_at=? WHERE id=?",
                         (now, state, now if state == "closed" else None, alarm_id))
            emit("alarm.restored", {"alarm": alarm_id, "receiver": s.receiver, "zone": s.zone, "kind": s.kind,
                                    "code": s.code})
            if state == "closed":
                emit("alarm.closed", {"alarm": alarm_id})
                out.closed.append(alarm_id)

    @staticmethod
    def _panels(rc: Any) -> list[str]:
        """The panels a receiver supervises: each configured account, or the receiver as a whole."""
        return [a.upper() for a in rc.accounts] or [""]

    def heard(self, receiver: str, account: str = "") -> None:
        """A valid message: that panel is alive (the watch loop restores a silence alarm)."""
        now = time.monotonic()
        for key in ((receiver, account.upper()), (receiver, "")):
            if key in self.last_heard:
                self.last_heard[key] = now
                if key in self.silent:
                    self._heard_again.add(key)

    # ------------------------------------------------------------------ acknowledgement
    async def acknowledge(self, alarm_id: int, by: str, role: str, note: str) -> dict[str, Any]:
        """An operator acknowledges (audited); closes the alarm if the panel already restored it."""
        ctx = self._ctx
        now = format_ts(ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Any) -> bool:
            row = conn.execute("SELECT state, acked_at, kind FROM alarms WHERE id=?", (alarm_id,)).fetchone()
            if row is None:
                raise AlarmNotFound(alarm_id)
            if row["acked_at"] is not None:
                raise AlarmAlreadyAcknowledged(alarm_id)
            closes = row["state"] == "restored" or row["kind"] in NO_RESTORE_KINDS
            conn.execute("UPDATE alarms SET acked_at=?, acked_by=?, note=?, state=?, closed_at=? WHERE id=?",
                         (now, by, note, "closed" if closes else "acknowledged", now if closes else None, alarm_id))
            emit("alarm.acknowledged", {"alarm": alarm_id, "by": by, "note": note})
            if closes:
                emit("alarm.closed", {"alarm": alarm_id})
            ctx.audit.insert(conn, by, role, "alarm.ack", str(alarm_id), {"note": note})
            return closes

        if await ctx.events.transact(txn):
            await self._release(alarm_id)
        return self.get_alarm(alarm_id) or {}

    # ------------------------------------------------------------------ fire linkage
    def _access(self) -> Any:
        access = self._ctx.components.get("access")
        if access is None or not hasattr(access, "hold_unlocked") or not hasattr(access, "release_hold"):
            return None
        return access

    async def _hold(self, alarm_id: int, doors: list[str]) -> None:
        access = self._access()
        if access is None:
            log.error("fire alarm %d: doors %s should be released but there is no access component", alarm_id, doors)
            return
        try:
            # shielded: a slow access component must not hold back the panel's ACK for long
            await asyncio.wait_for(asyncio.shield(access.hold_unlocked(doors, "fire", f"alarm-{alarm_id}")),
                                   LINKAGE_WAIT_S)
            log.warning("fire alarm %d: doors %s held released", alarm_id, ",".join(doors))
        except asyncio.TimeoutError:
            log.error("fire alarm %d: access still releasing doors %s after %g s", alarm_id, doors, LINKAGE_WAIT_S)
        except Exception:
            log.exception("fire alarm %d: releasing doors %s failed", alarm_id, doors)

    async def _release(self, alarm_id: int) -> None:
        row = self._ctx.store.query_one("SELECT hold_released FROM alarms WHERE id=?", (alarm_id,))
        if row is None or row[0]:
            return
        access = self._access()
        if access is not None:
            try:
                await access.release_hold(f"alarm-{alarm_id}")
            except Exception:
                log.exception("alarm %d: relocking doors failed (will retry at next start)", alarm_id)
                return
        await self._ctx.store.write(lambda c: c.execute("UPDATE alarms SET hold_released=1 WHERE id=?", (alarm_id,)))

    async def _reconcile_holds(self) -> None:
        """At start: re-apply holds of active fire alarms, release those of closed ones."""
        for r in self._ctx.store.query("SELECT id, state, unlock_doors FROM alarms WHERE hold_released=0"):
            if r["state"] == "closed":
                await self._release(r["id"])
            else:
                await self._hold(r["id"], json.loads(r["unlock_doors"]))

    # ------------------------------------------------------------------ escalation and supervision
    async def _watch(self) -> None:
        tick = self._ctx.config.alarms.tick_s
        last_prune = 0.0
        while True:
            await asyncio.sleep(tick)
            await self.check_escalations()
            await self.check_supervision()
            if time.monotonic() - last_prune > 3600:
                last_prune = time.monotonic()
                await self._prune()

    async def check_escalations(self) -> list[int]:
        """Emit alarm.escalated for alarms unacknowledged past their kind's interval."""
        ctx = self._ctx
        now = ctx.clock.now()
        limits = {**DEFAULT_ESCALATE, **ctx.config.alarms.escalate_s}
        due: list[tuple[int, str, int, float, str]] = []
        for kind in KINDS:
            limit = limits.get(kind, 600)
            if limit <= 0:
                continue
            cutoff = format_ts(now - timedelta(seconds=limit))
            for r in ctx.store.query("SELECT id, raised_at, escalations FROM alarms WHERE acked_at IS NULL "
                                     "AND state != 'closed' AND kind = ? AND COALESCE(escalated_at, raised_at) <= ? "
                                     "LIMIT 1000", (kind, cutoff)):
                open_s = (now - _parse_ts(r["raised_at"])).total_seconds()
                due.append((r["id"], kind, r["escalations"] + 1, open_s, cutoff))
        if not due:
            return []
        stamp = format_ts(now)

        def txn(conn: sqlite3.Connection, emit: Any) -> list[int]:
            done = []
            for alarm_id, kind, count, open_s, cutoff in due:
                # re-checked inside the transaction: acknowledged meanwhile, or escalated by a concurrent check
                cur = conn.execute("UPDATE alarms SET escalations=?, escalated_at=? WHERE id=? AND acked_at IS NULL "
                                   "AND state != 'closed' AND COALESCE(escalated_at, raised_at) <= ?",
                                   (count, stamp, alarm_id, cutoff))
                if cur.rowcount == 1:
                    emit("alarm.escalated", {"alarm": alarm_id, "kind": kind, "count": count,
                                             "unacknowledged_s": round(open_s)})
                    done.append(alarm_id)
                    log.warning("alarm %d (%s) unacknowledged for %.0f s: escalated (%d)", alarm_id, kind, open_s,
                                count)
            return done

        return await ctx.events.transact(txn)

    async def check_supervision(self) -> None:
        """A panel silent past its supervision interval raises a fault alarm; hearing it restores it.

        Each configured account is a panel of its own (one receiver often serves several); the
        receiver is reported offline while any of its panels is silent.
        """
        now = time.monotonic()
        for rc in self._ctx.config.alarm_receivers:
            if rc.supervision_s <= 0:
                continue
            changed = False
            for acct in self._panels(rc):
                key = (rc.id, acct)
                quiet = now - self.last_heard.get(key, now)
                if key not in self.silent:
                    if quiet > rc.supervision_s:
                        who = f"panel {acct}" if acct else "panel"
                        await self.process_internal(Signal(rc.id, acct, SILENT_CODE, 0, "fault",
                                                           f"{who} silent for {quiet:.0f} s"))
                        self.silent.add(key)
                        changed = True
                elif key in self._heard_again:   # only a real message ends a silence (not a restart)
                    await self.process_internal(Signal(rc.id, acct, SILENT_CODE, 0, "fault", "panel heard again",
                                                       True))
                    self._heard_again.discard(key)
                    self.silent.discard(key)
                    changed = True
            if changed:
                silent = sorted(a or rc.id for r, a in self.silent if r == rc.id)
                await self._ctx.devices.set_state(rc.id, "receiver", not silent,
                                                  f"silent: {', '.join(silent)}" if silent else "panel heard again")

    async def process_internal(self, sig: Signal) -> None:
        """Like :meth:`process` for what the gateway itself detects (does not count as hearing the panel)."""
        ctx = self._ctx
        now = format_ts(ctx.clock.now())
        outcome = await ctx.events.transact(lambda conn, emit: self._commit(conn, emit, now, [sig], None))
        for alarm_id in outcome.closed:
            await self._release(alarm_id)

    async def _prune(self) -> None:
        cutoff = format_ts(self._ctx.clock.now() - timedelta(hours=self._ctx.config.alarms.dedupe_keep_h))
        await self._ctx.store.write(lambda c: c.execute("DELETE FROM alarm_dedupe WHERE received_at < ?", (cutoff,)))

    # ------------------------------------------------------------------ queries
    def get_alarm(self, alarm_id: int) -> dict[str, Any] | None:
        row = self._ctx.store.query_one("SELECT * FROM alarms WHERE id=?", (alarm_id,))
        return _alarm_dict(row) if row else None

    def list_alarms(self, state: str | None = "open", limit: int = 500) -> list[dict[str, Any]]:
        """Alarms for the console: ``open`` (not closed), ``unacknowledged``, a lifecycle state, or ``all``."""
        state = state or "open"
        where = {"open": "state != 'closed'", "unacknowledged": "acked_at IS NULL AND state != 'closed'",
                 "all": "1=1"}.get(state)
        params: tuple[Any, ...] = ()
        if where is None:
            if state not in STATES:
                raise ValueError(f"unknown state {state!r}")
            where, params = "state = ?", (state,)
        rows = self._ctx.store.query(f"SELECT * FROM alarms WHERE {where} ORDER BY id DESC LIMIT ?",
                                     (*params, max(1, min(limit, 5000))))
        return [_alarm_dict(r) for r in rows]

    def handover_items(self) -> dict[str, Any]:
        """Open and unacknowledged alarms, for the shift handover report."""
        open_ = self.list_alarms("open")
        return {"open_alarms": open_, "unacknowledged_alarms": [a for a in open_ if not a["acked_at"]]}

    def current_shift(self) -> str:
        local = self._ctx.clock.local().strftime("%H:%M")
        cfg = self._ctx.config.alarms
        return "day" if cfg.day_shift_starts <= local < cfg.night_shift_starts else "night"

    def last_handover(self) -> dict[str, Any] | None:
        row = self._ctx.store.query_one("SELECT * FROM shift_handovers ORDER BY id DESC LIMIT 1")
        if row is None:
            return None
        d = dict(row)
        return {"id": d["id"], "ts": d["ts"], "shift": d["shift"], "from": d["from_who"], "to": d["to_who"],
                "notes": d["notes"], "open_alarms": json.loads(d["open_alarms"]), "recorded_by": d["recorded_by"]}

    def handover_report(self) -> dict[str, Any]:
        """What the outgoing shift hands over: still-open alarms, door/meter/device trouble, news since last time."""
        ctx = self._ctx
        last = self.last_handover()
        since = last["ts"] if last else None
        report: dict[str, Any] = {"now": format_ts(ctx.clock.now()), "shift": self.current_shift(),
                                  "since": since, "last_handover": last, **self.handover_items()}
        report["alarms_since"] = [_alarm_dict(r) for r in reversed(ctx.store.query(
            "SELECT * FROM alarms WHERE raised_at > ? ORDER BY id DESC LIMIT 500", (since or "",)))]
        report["events_since"], report["events_since_truncated"] = self.events_since(since)
        for name, comp in ctx.components.items():
            if comp is self or not hasattr(comp, "handover_items"):
                continue
            try:
                items = comp.handover_items() or {}
            except Exception:
                log.exception("handover: %s failed", name)
                items = {"error": f"{name} could not report"}
            for key, value in items.items():
                report.setdefault(key if key not in report else f"{name}_{key}", value)
        report.setdefault("doors", [])
        report.setdefault("meters", [])
        report["devices_offline"] = ctx.devices.offline()
        return report

    def events_since(self, since: str | None, limit: int = HANDOVER_EVENTS_MAX) -> tuple[list[dict[str, Any]], bool]:
        """Door, device, meter and escalation events since the last handover (oldest first), and whether more
        than ``limit`` happened (then only the newest ``limit`` are given).

        "Since" is the last ``shift.handover`` event's seq (exact, whatever the clock did); if that event was
        already pruned from the log, the handover's time ``since``.
        """
        store = self._ctx.store
        after, ts_after = 0, ""
        if since is not None:
            row = store.query_one("SELECT MAX(seq) FROM events WHERE type = 'shift.handover'")
            if row is not None and row[0] is not None:
                after = int(row[0])
            else:
                ts_after = since
        marks = ",".join("?" * len(HANDOVER_EVENTS))
        rows = store.query(f"SELECT seq, ts, type, data FROM events WHERE type IN ({marks}) AND seq > ? AND ts > ? "
                           "ORDER BY seq DESC LIMIT ?", (*HANDOVER_EVENTS, after, ts_after, limit + 1))
        items = [_handover_event(r[0], r[1], r[2], r[3]) for r in rows[:limit]]
        items.reverse()
        return items, len(rows) > limit

    async def record_handover(self, body: HandoverIn, actor: str, role: str) -> dict[str, Any]:
        ctx = self._ctx
        now = format_ts(ctx.clock.now())
        shift = self.current_shift()
        open_ids = [a["id"] for a in self.list_alarms("open")]
        unacked = [a["id"] for a in self.list_alarms("unacknowledged")]

        def txn(conn: sqlite3.Connection, emit: Any) -> int:
            cur = conn.execute("INSERT INTO shift_handovers(ts, shift, from_who, to_who, notes, open_alarms, "
                               "recorded_by) VALUES(?,?,?,?,?,?,?)",
                               (now, shift, body.from_, body.to, body.notes, json.dumps(open_ids), actor))
            emit("shift.handover", {"from": body.from_, "to": body.to, "shift": shift, "open_alarms": open_ids,
                                    "unacknowledged_alarms": unacked, "notes": body.notes})
            ctx.audit.insert(conn, actor, role, "shift.handover", f"{body.from_}->{body.to}",
                             {"open_alarms": open_ids, "notes": body.notes})
            return int(cur.lastrowid or 0)

        hid = await ctx.events.transact(txn)
        return {"id": hid, "ts": now, "shift": shift, "from": body.from_, "to": body.to, "notes": body.notes,
                "open_alarms": open_ids, "unacknowledged_alarms": unacked}

    # ------------------------------------------------------------------ HTTP
    def routes(self) -> APIRouter:
        router = APIRouter(tags=["alarms"])
        operator = require_role("operator")

        @router.get("/alarms")
        async def list_route(state: str = Query(default="open", max_length=20),
                             limit: int = Query(default=500, ge=1, le=5000),
                             p: Principal = Depends(operator)) -> dict[str, Any]:
            try:
                return {"items": self.list_alarms(state, limit)}
            except ValueError:
                raise ApiError(422, "bad_state",
                               f"state must be one of open, unacknowledged, all, {', '.join(STATES)}") from None

        @router.get("/alarms/{alarm_id}", responses=error_responses(404))
        async def get_route(alarm_id: int = ALARM_ID, p: Principal = Depends(operator)) -> dict[str, Any]:
            alarm = self.get_alarm(alarm_id)
            if alarm is None:
                raise ApiError(404, "not_found", f"no alarm {alarm_id}")
            return alarm

        @router.post("/alarms/{alarm_id}/ack", responses=error_responses(404, 409))
        async def ack_route(body: AckIn, alarm_id: int = ALARM_ID, p: Principal = Depends(operator)) -> dict[str, Any]:
            try:
                return await self.acknowledge(alarm_id, p.name, p.role, body.note)
            except AlarmNotFound:
                raise ApiError(404, "not_found", f"no alarm {alarm_id}") from None
            except AlarmAlreadyAcknowledged:
                raise ApiError(409, "already_acknowledged", f"alarm {alarm_id} is already acknowledged") from None

        @router.get("/handover")
        async def handover_get(p: Principal = Depends(operator)) -> dict[str, Any]:
            return self.handover_report()

        @router.post("/handover", status_code=201)
        async def handover_post(body: HandoverIn, p: Principal = Depends(operator)) -> dict[str, Any]:
            return await self.record_handover(body, p.name, p.role)

        return router


def _alarm_dict(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["unlock_doors"] = json.loads(d.get("unlock_doors") or "[]")
    d["doors_held"] = bool(d["unlock_doors"]) and not d.pop("hold_released")
    return d


def _handover_event(seq: int, ts: str, type_: str, data_json: str) -> dict[str, Any]:
    """One line of ``events_since``: {seq, ts, type, door|meter|device|alarm, reason, ...} from a logged event."""
    try:
        data = json.loads(data_json)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    item: dict[str, Any] = {"seq": seq, "ts": ts, "type": type_}
    for key in ("door", "meter", "unit", "device", "alarm"):
        if data.get(key) not in (None, ""):
            item[key] = data[key]
    # device.*: kind reader|bus|receiver; alarm.escalated: the alarm's kind; meter.anomaly: reverse|leak|...
    if type_ == "meter.anomaly":
        item["anomaly"] = data.get("kind", "")
    elif data.get("kind"):
        item["kind"] = data["kind"]
    for key in ("seconds", "count", "unacknowledged_s"):
        if key in data:
            item[key] = data[key]
    item["reason"] = str(data.get("reason") or data.get("error") or "")
    return item


def receivers_of(cfg: Any, protocol: str) -> Iterable[Any]:
    return [r for r in cfg.alarm_receivers if r.protocol == protocol]
