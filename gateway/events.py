"""Events: the envelope, gap-free sequence numbers, and the bounded outbox.

An event is inserted into the ``events`` log and the ``outbox`` in one SQLite
transaction; ``record`` returns after that commit, so whatever acts on an event
(a relay, an ACK to an alarm panel) acts on something that is already on disk.

``seq`` is ``MAX(seq)+1`` inside the single writer's transaction: rising by one,
never reused after a crash (the newest row is never pruned). Never reused either
when the database itself goes back in time (a lost or truncated WAL, a restored
backup): the high-water mark kept beside it (:mod:`gateway.seqmark`) is compared
at start, and if the database is behind, seq continues above the mark and a
``store.rewound {from_seq, to_seq, cause}`` event tells central and the console
that events ``from_seq+1 .. to_seq`` were lost here (central may hold them).

Why the outbox depth is recounted after a rolled-back batch: the store retries a
failed batch (:mod:`gateway.storewriter`), so inserts counted in a rolled-back
attempt run again.

The outbox is bounded (``[outbox] max_events``, :mod:`gateway.outbox_bound`). At 80 % it raises
``gateway.outbox_near_full``; when full it sheds ``meter.reading`` rows oldest
first (the readings themselves stay in the readings table for the HTTP pull) and
never alarms, access or card events: with nothing left to shed it goes over the
bound and says so loudly rather than drop one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from gateway.event_ids import new_event_id
from gateway.outbox_bound import OutboxBound
from gateway.outbox_pages import OutboxPages
from gateway.seqmark import SeqMark
from gateway.store import Store, json_column

log = logging.getLogger(__name__)

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_ts(ts: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a Z, as in the contract."""
    if ts.tzinfo is not UTC:
        ts = ts.astimezone(UTC)
    return ts.isoformat(timespec="milliseconds")[:23] + "Z"   # C code: every event's ts goes through here


#: one encoder for every event's data (``json.dumps`` with options builds a new one per call)
_encode_data = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


@dataclass(frozen=True)
class Event:
    id: str
    seq: int
    ts: str
    type: str
    historical: bool
    data: dict[str, Any] = field(default_factory=dict)
    #: ``data`` as stored (JSON text), kept by :meth:`EventLog.insert` for the uplink's page from memory
    body: str = field(default="", compare=False, repr=False)

    def envelope(self, *, historical: bool | None = None) -> dict[str, Any]:
        return {"id": self.id, "seq": self.seq, "ts": self.ts, "type": self.type,
                "historical": self.historical if historical is None else historical, "data": self.data}

    def to_json(self, *, historical: bool | None = None) -> str:
        return json.dumps(self.envelope(historical=historical), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_row(cls, row: sqlite3.Row | tuple[Any, ...]) -> Event:
        seq, id_, ts, type_, historical, data = tuple(row)[:6]
        return cls(id=id_, seq=seq, ts=ts, type=type_, historical=bool(historical), data=json.loads(data))


Emit = Callable[[str, dict[str, Any]], Event]
Subscriber = Callable[[Event], Any]


class EventLog:
    """Records events durably and tells in-process subscribers after commit."""

    def __init__(
        self,
        store: Store,
        *,
        max_outbox: int = 2_000_000,
        clock: Callable[[], datetime] = utc_now,
        on_metric: Callable[[str, int], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        #: set by the uplink: events recorded while it is down are historical
        self.online = False
        self._subscribers: list[Subscriber] = []
        self._wakeups: list[Callable[[], None]] = []
        self.recorded_total = 0
        self.pages = OutboxPages(store)   # the uplink's next pages
        self.bound = OutboxBound(store.query("SELECT COUNT(*) FROM outbox")[0][0], max_outbox,
                                 on_metric or (lambda name, n: None), self.pages.mark_stale)
        #: PUBACKed seqs whose removal from the outbox could not commit yet
        self._unmarked: list[int] = []
        self._mark = SeqMark(store.path, synchronous=store.synchronous)
        #: seq continues above this (the high-water mark, after the database went back in time)
        self._floor = 0
        store.on_commit_conn(self._committed)
        store.on_rollback(self._rolled_back)
        store.on_close(self._closing)
        self.rewound = self._check_rewound()

    # ------------------------------------------------------------------ seq high-water mark
    def _check_rewound(self) -> Event | None:
        """At start: is the database behind the seq that already left? Then continue above it, and say so."""
        restored = self._mark.take_restored()
        last, high = self.last_seq(), self._mark.highest_used()
        if high <= last:
            self._mark.used = max(self._mark.used, last)
            return None
        if restored is not None:
            cause = "restore"
        elif not self.store.existed_at_open:
            cause = "database_new"
        elif not self.store.wal_at_open:
            cause = "wal_missing"
        else:
            cause = "database_behind"
        self._floor = high
        data = {"from_seq": last, "to_seq": high, "cause": cause, "lost_at_most": high - last}
        log.error("store rewound (%s): the database ends at seq %d but seq %d had been used; events %d..%d "
                  "are lost here (central may hold them); seq continues at %d", cause, last, high, last + 1,
                  high, high + 1)
        return self.store.write_sync(lambda conn: self.insert(conn, "store.rewound", data))

    def _committed(self, conn: sqlite3.Connection) -> None:
        """Writer thread, right after a commit: remember the highest seq before anyone hears of it."""
        row = conn.execute("SELECT MAX(seq) FROM events").fetchone()
        if row[0] is not None:
            self.pages.committed_seq = row[0]
            if row[0] > self._mark.used:
                self._mark.note_used(row[0])

    def _rolled_back(self) -> None:
        self.bound.rolled_back()

    def _closing(self) -> None:
        self._mark.note_used(self._mark.used, clean=True)
        self._mark.close()

    # ------------------------------------------------------------------ state
    @property
    def outbox_depth(self) -> int:
        return self.bound.depth

    @property
    def max_outbox(self) -> int:
        return self.bound.max_events

    @property
    def shed_total(self) -> int:
        return self.bound.shed_total

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(event)`` on the loop after each commit; returns an unsubscribe function."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    def on_new(self, wake: Callable[[], None]) -> None:
        """``wake()`` is called on the loop after events were recorded (the uplink's doorbell)."""
        self._wakeups.append(wake)

    # ------------------------------------------------------------------ recording
    async def record(self, type_: str, data: dict[str, Any] | None = None) -> Event:
        """Commit one event; return it once it is on disk."""
        events = await self.transact(lambda conn, emit: [emit(type_, data or {})])
        return events[0]

    async def transact(self, fn: Callable[[sqlite3.Connection, Emit], T]) -> T:
        """Run ``fn(conn, emit)`` in one transaction with the events it emits.

        ``emit(type, data)`` inserts an event inside the transaction. After the
        commit, subscribers see each emitted event in order.
        """
        emitted: list[Event] = []
        bound = self.bound
        shed_from = [bound.shed_from]

        def run(conn: sqlite3.Connection) -> T:
            emitted.clear()
            shed_from[0] = min(shed_from[0], bound.shed_from)

            def emit(type_: str, data: dict[str, Any]) -> Event:
                ev = self.insert(conn, type_, data)
                emitted.append(ev)
                return ev

            return fn(conn, emit)

        try:
            result = await self.store.write(run)
        except BaseException:
            # The transaction (or the whole batch, if the commit itself failed, e.g. disk
            # full) was rolled back: the in-memory outbox count must not keep its rows, nor shedding
            # the rows it read past (not back to the start: a refused write must not cost a full read).
            bound.shed_from = min(bound.shed_from, shed_from[0])
            await self._recount()
            raise
        self._dispatch(emitted)
        return result

    async def _recount(self) -> None:
        """Re-read the outbox depth inside the writer, where nothing else can change it meanwhile."""

        try:
            await self.store.write(self.bound.recount)
        except Exception as exc:  # the store is in trouble; the next failure will try again
            log.warning("outbox depth recount failed: %s", exc)

    def record_sync(self, type_: str, data: dict[str, Any] | None = None) -> Event:
        """From a non-loop thread or tool: commit and return (no subscriber dispatch)."""
        return self.store.write_sync(lambda conn: self.insert(conn, type_, data or {}))

    def insert(self, conn: sqlite3.Connection, type_: str, data: dict[str, Any]) -> Event:
        """Insert one event and its outbox row. Runs in the writer thread."""
        ts = format_ts(self.clock())
        ev_id = new_event_id()
        historical = not self.online
        body = _encode_data(data)
        cur = conn.execute(
            "INSERT INTO events(seq, id, ts, type, historical, data) "
            "VALUES((SELECT MAX(COALESCE(MAX(seq), 0), ?) + 1 FROM events), ?, ?, ?, ?, ?)",
            (self._floor, ev_id, ts, type_, int(historical), body),
        )
        seq = cur.lastrowid
        assert seq is not None
        self._mark.reserve(seq)  # fsynced ahead in blocks before a seq above the ceiling is used
        conn.execute("INSERT INTO outbox(seq, type, historical) VALUES(?, ?, ?)", (seq, type_, int(historical)))
        self.recorded_total += 1
        if self.bound.added(conn, seq):   # 80 %: inserted right here, in the log's order of the cause
            b = self.bound
            self.insert(conn, "gateway.outbox_near_full", {"depth": b.depth, "max_events": b.max_events,
                                                           "shed": b.shed_total})
        return Event(id=ev_id, seq=seq, ts=ts, type=type_, historical=historical, data=data, body=body)

    def dispatch(self, events: list[Event]) -> None:
        """After a commit made outside :meth:`transact` (an HTTP request's audit row): wake the uplink and
        tell subscribers, as :meth:`transact` does for its own events."""
        self._dispatch(events)

    def _dispatch(self, events: list[Event]) -> None:
        self.pages.dispatched(events, uplink_up=self.online)
        for wake in self._wakeups:
            wake()
        for ev in events:
            for fn in list(self._subscribers):
                try:
                    fn(ev)
                except Exception:
                    log.exception("event subscriber failed on %s", ev.type)

    # ------------------------------------------------------------------ outbox
    def pending(self, after_seq: int, limit: int) -> list[tuple[Event, bool]]:
        """Outbox rows after ``after_seq`` in seq order, with the historical flag to send."""
        rows = self.store.query(
            "SELECT e.seq, e.id, e.ts, e.type, e.historical, e.data, o.historical "
            "FROM outbox o JOIN events e ON e.seq = o.seq WHERE o.seq > ? ORDER BY o.seq LIMIT ?",
            (after_seq, limit),
        )
        return [(Event.from_row(r), bool(r[6])) for r in rows]

    def pending_wire(self, after_seq: int, limit: int) -> list[tuple[int, str, str]]:
        """Like :meth:`pending`, as (seq, type, JSON envelope) ready to publish (:mod:`gateway.outbox_pages`)."""
        return self.pages.page(after_seq, limit)

    async def mark_delivered(self, seqs: list[int]) -> None:
        """Drop PUBACKed events from the outbox. While the store cannot commit, the seqs are kept and go
        with the next call (the uplink never sees the store's trouble; nothing is sent twice for it)."""
        if self._unmarked:
            seqs, self._unmarked = [*self._unmarked, *seqs], []
        if not seqs:
            return

        def run(conn: sqlite3.Connection) -> int:
            n = 0
            for i in range(0, len(seqs), 500):
                chunk = seqs[i : i + 500]
                cur = conn.execute(f"DELETE FROM outbox WHERE seq IN ({','.join('?' * len(chunk))})", chunk)
                n += cur.rowcount
            self.bound.removed(n)
            return n

        try:
            await self.store.write(run)
        except sqlite3.OperationalError as exc:
            self._unmarked = seqs
            log.warning("outbox: %d delivered events stay marked for later (%s)", len(seqs), exc)

    async def mark_backlog_historical(self) -> int:
        """On (re)connect: whatever is still queued was recorded before this link; send it as history."""
        def run(conn: sqlite3.Connection) -> int:
            self.pages.mark_stale()
            return int(conn.execute("UPDATE outbox SET historical=1 WHERE historical=0").rowcount)

        return await self.store.write(run)

    # ------------------------------------------------------------------ log queries
    def query(self, after: int = 0, limit: int = 100, types: list[str] | None = None) -> list[Event]:
        return [Event.from_row(r) for r in rows_after(self.store, after, limit, types)]

    def oldest_pending_ts(self) -> str | None:
        """When the oldest undelivered event was recorded (None: the outbox is empty); the outbox's first row."""
        row = self.store.query_one("SELECT e.ts FROM outbox o JOIN events e ON e.seq = o.seq ORDER BY o.seq LIMIT 1")
        return str(row[0]) if row else None

    def last_seq(self) -> int:
        row = self.store.query_one("SELECT COALESCE(MAX(seq), 0) FROM events")
        return int(row[0]) if row else 0

    async def prune(self, keep_days: float) -> int:
        """Drop delivered events older than ``keep_days`` (never the newest: it anchors seq), in slices of
        :data:`~gateway.store.DELETE_SLICE` rows so door decisions commit between them."""
        cutoff = format_ts(self.clock() - timedelta(days=keep_days))
        row = await asyncio.to_thread(  # the ts index; off the event loop: after an outage it may be long
            self.store.query_one, "SELECT MAX(seq) FROM events WHERE ts < ?", (cutoff,))
        top = self.last_seq()
        hi = min(int(row[0]), top - 1) if row and row[0] is not None else 0
        if hi <= 0:
            return 0

        def run(conn: sqlite3.Connection, after: int, limit: int) -> tuple[int, int]:
            seqs = [r[0] for r in conn.execute(
                "SELECT seq FROM events WHERE seq > ? AND seq <= ? AND ts < ? "
                "AND seq NOT IN (SELECT seq FROM outbox) ORDER BY seq LIMIT ?", (after, hi, cutoff, limit))]
            if seqs:
                conn.execute(f"DELETE FROM events WHERE seq IN ({','.join('?' * len(seqs))})", seqs)
            return len(seqs), seqs[-1] if seqs else after

        n, _slices = await self.store.delete_in_slices(run)
        return n


def rows_after(store: Store, after: int, limit: int, types: list[str] | None = None) -> list[sqlite3.Row]:
    """Logged events with seq > ``after`` (of these types), in seq order, at most ``limit`` (<= 1,000)."""
    where = f"AND type IN ({','.join('?' * len(types))}) " if types else ""
    return store.query(f"SELECT seq, id, ts, type, historical, data FROM events WHERE seq > ? {where}"
                       "ORDER BY seq LIMIT ?", (after, *(types or []), max(1, min(limit, 1000))))


def page(store: Store, after: int, limit: int, types: list[str] | None = None) -> list[dict[str, Any]]:
    """The ``GET /events`` pull: envelopes straight from the rows, the data decoded in one parse (no Event each)."""
    rows = rows_after(store, after, limit, types)
    return [{"id": r[1], "seq": r[0], "ts": r[2], "type": r[3], "historical": bool(r[4]), "data": d}
            for r, d in zip(rows, json_column(rows, 5), strict=True)]
