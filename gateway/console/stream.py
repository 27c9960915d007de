"""The live-event hub behind ``GET /api/v1/stream`` (Server-Sent Events).

Each committed event reaches every open page whose role may see its type, encoded once
however many pages receive it. A page that stalls gets a ``resync`` (reload your lists)
instead of an unbounded queue; a page that reconnects with ``Last-Event-ID`` gets what it
missed replayed from the event log, so an alarm is never lost between two connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from gateway.events import Event, EventLog
from gateway.metrics import Metrics

#: event type prefixes each role's page receives on the stream ("" = everything)
STREAM_TYPES: dict[str, tuple[str, ...]] = {
    "operator": ("alarm.", "door.", "device.", "access.", "gateway.", "shift.", "meter.", "card.revoked"),
    "technician": ("card.", "access.", "meter.", "device."),
    "central": ("meter.", "device."),
    "admin": ("",),
}

QUEUE_SIZE = 1000
#: open streams at most (a duty room has a handful of pages; this bounds memory if something loops)
MAX_CLIENTS = 200
KEEPALIVE_S = 15.0
REPLAY_MAX = 500
RESYNC = "event: resync\ndata: {}\n\n"


def parse_last_event_id(value: str | None) -> int | None:
    """The ``Last-Event-ID`` a reconnecting EventSource sends (our seq), or None if absent or not a seq."""
    if not value:
        return None
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def visible(role: str, type_: str) -> bool:
    """May a page of ``role`` see events of ``type_``?"""
    return any(type_.startswith(p) for p in STREAM_TYPES.get(role, ()))


def sse_frame(ev: Event) -> str:
    """One event as an SSE message; ``id`` is the seq, so a reconnect resumes after it."""
    return f"id: {ev.seq}\nevent: ev\ndata: {ev.to_json()}\n\n"


@dataclass(frozen=True)
class Frame:
    """An event ready to send: encoded once, however many pages receive it."""

    seq: int
    text: str


@dataclass(eq=False)
class Client:
    role: str
    queue: asyncio.Queue[Frame | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflow: bool = False


class StreamHub:
    """Open streams, fed by the event log's subscription; knows nothing of HTTP."""

    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.closing = False
        self.events: EventLog | None = None
        self.metrics: Metrics | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def attach(self, events: EventLog, metrics: Metrics) -> None:
        self.events, self.metrics, self.closing = events, metrics, False
        self._unsubscribe = events.subscribe(self.on_event)

    def close(self) -> None:
        """End every open stream so the HTTP server can stop without waiting for browsers."""
        self.closing = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for client in list(self.clients):
            drain(client.queue)
            client.queue.put_nowait(None)

    @property
    def full(self) -> bool:
        return len(self.clients) >= MAX_CLIENTS

    def on_event(self, ev: Event) -> None:
        """Runs on the loop after each commit: hand the event to every page that may see it."""
        frame: Frame | None = None
        for client in list(self.clients):
            if client.overflow or not visible(client.role, ev.type):
                continue
            if frame is None:
                frame = Frame(ev.seq, sse_frame(ev))
            try:
                client.queue.put_nowait(frame)
            except asyncio.QueueFull:
                # a stalled browser: tell it to reload its lists rather than grow without bound
                client.overflow = True
        if self.metrics is not None and self.clients:
            self.metrics.inc("console_events_pushed_total")

    async def stream(self, role: str, last_seq: int | None) -> AsyncIterator[str]:
        client = Client(role)
        self.clients.add(client)
        self._gauge()
        try:
            yield "retry: 2000\n: estate-gateway live events\n\n"
            sent = 0
            if last_seq is not None:
                replay, complete = self.replay(role, last_seq)
                if replay:
                    yield "".join(sse_frame(ev) for ev in replay)
                    sent = replay[-1].seq
                if not complete:
                    yield RESYNC
            async for chunk in self._live(client, sent):
                yield chunk
        finally:
            self.clients.discard(client)
            self._gauge()

    async def _live(self, client: Client, sent: int) -> AsyncIterator[str]:
        while not self.closing:
            if client.overflow:
                drain(client.queue)
                client.overflow = False
                yield RESYNC
            try:
                first = await asyncio.wait_for(client.queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            # whatever else is already queued goes out in the same write (bursts cost one send, not n)
            batch, closing = take_ready(client.queue, first)
            chunk = "".join(f.text for f in batch if f.seq > sent)
            if chunk:
                yield chunk
            if closing:
                return

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.set("console_streams", len(self.clients))

    def replay(self, role: str, after: int) -> tuple[list[Event], bool]:
        """Events a reconnecting page missed; False when there were too many (it should reload instead)."""
        assert self.events is not None
        out: list[Event] = []
        cursor = after
        while len(out) < REPLAY_MAX:
            batch = self.events.query(cursor, 1000)
            if not batch:
                return out, True
            cursor = batch[-1].seq
            out.extend(ev for ev in batch if visible(role, ev.type))
        return out[:REPLAY_MAX], False


def take_ready(queue: asyncio.Queue[Frame | None], first: Frame | None,
               limit: int = 200) -> tuple[list[Frame], bool]:
    """``first`` and up to ``limit`` frames already waiting; True when the stream is told to end."""
    batch: list[Frame] = []
    item = first
    while True:
        if item is None:
            return batch, True
        batch.append(item)
        if len(batch) >= limit:
            return batch, False
        try:
            item = queue.get_nowait()
        except asyncio.QueueEmpty:
            return batch, False


def drain(queue: asyncio.Queue[Frame | None]) -> None:
    while True:
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            return
