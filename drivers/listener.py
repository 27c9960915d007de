"""One guarded TCP listener for every alarm receiver: who may connect, how many, for how long.

Why: a receiver port is reachable by anything on the site network. Without limits, a laptop
opening a thousand idle connections uses up the process's file descriptors and the real panel
is cut off (issue 18); a source that should never talk to the receiver gets to feed the parser.
So every TCP receiver (DC-09, GB/T 26875.3, Contact ID) listens through :class:`GuardedListener`:

* ``allow_from`` (CIDR networks): a connection from elsewhere is aborted in ``connection_made``,
  before the socket is ever registered for reading -- not one byte of it is read;
* ``max_connections`` per listener and ``max_per_source`` per source address (an IPv6 source
  counts by its /64, which one host can fill): a connection over the per-source cap is aborted
  the same way, so an attacker's flood costs one fd for an instant and a panel from another
  address still gets in; a full listener closes the oldest connection that never delivered a
  valid message (:func:`mark_proven`) to make room, so many addresses cannot lock a panel out;
* ``idle_timeout_s``: :meth:`GuardedListener.read` ends a connection that stays silent that long.

Each refusal is counted (``stats``), reported to ``on_refuse(reason, source)`` and logged with
:class:`~drivers.quietlog.QuietLog` (one line a minute per source and reason). No gateway imports.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from drivers.quietlog import QuietLog

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ConnHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

#: production defaults (docs/hardening.md): a site has a few panels, each with one or two connections
DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_MAX_PER_SOURCE = 32
DEFAULT_IDLE_TIMEOUT_S = 120.0

#: refusal reasons (bounded: they become metric labels)
NOT_ALLOWED = "source_not_allowed"
TOO_MANY = "too_many_connections"
TOO_MANY_FROM_SOURCE = "too_many_from_source"
IDLE = "idle_closed"
EVICTED = "evicted_for_room"
REASONS = (NOT_ALLOWED, TOO_MANY, TOO_MANY_FROM_SOURCE, IDLE, EVICTED)


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.5.0/24", "192.0.2.7"]`` -> networks; raises ValueError naming the bad one."""
    out = []
    for text in cidrs:
        try:
            out.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an address or CIDR network") from None
    return tuple(out)


@dataclass(frozen=True)
class Limits:
    allow_from: tuple[Network, ...] = ()          # empty: any source
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_per_source: int = DEFAULT_MAX_PER_SOURCE
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S


@dataclass
class ListenerStats:
    accepted: int = 0
    open: int = 0
    refused: dict[str, int] = field(default_factory=dict)


def host_address(host: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in ``host`` (text; an IPv6 zone id dropped), None if it is not one.

    An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``, what a ``[::]`` listener reports for an
    IPv4 client) is unwrapped to its IPv4 address, so IPv4 networks in the config match it.
    """
    try:
        addr = ipaddress.ip_address(host.split("%")[0])
    except (TypeError, ValueError, AttributeError):
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def peer_address(peer: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address of a socket's ``peername`` (a tuple whose first item is the host), as :func:`host_address`."""
    try:
        return host_address(peer[0])
    except (TypeError, IndexError, KeyError):
        return None


def in_networks(addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None, nets: Iterable[Network]) -> bool:
    """Whether ``addr`` is in one of ``nets`` (None is in none)."""
    return addr is not None and any(addr in net for net in nets if net.version == addr.version)


def source_key(addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str:
    """The per-source bucket: the IPv4 address, or the IPv6 /64 (one host may hold a whole /64)."""
    if addr is None:
        return "unknown"
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(addr) >> 64 << 64, 64)))
    return str(addr)


class GuardedListener:
    """``asyncio.start_server`` with ``allow_from``, connection caps and refusal accounting."""

    def __init__(self, name: str, host: str, port: int, handler: ConnHandler, limits: Limits | None = None, *,
                 on_refuse: Callable[[str, str], None] | None = None, stream_limit: int = 64 * 1024) -> None:
        self.name, self.host, self.port = name, host, port
        self.handler = handler
        self.limits = limits or Limits()
        self.on_refuse = on_refuse or (lambda reason, source: None)
        self.stream_limit = stream_limit
        self.stats = ListenerStats()
        self.quiet = QuietLog(log)
        self._per_source: dict[str, int] = {}
        self._live: set[_GuardedProtocol] = set()
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        """Listen; returns the bound port (0 asks for a free one)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _GuardedProtocol(self, loop), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    @property
    def server(self) -> asyncio.base_events.Server | None:
        return self._server

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    # ------------------------------------------------------------------ admission
    def admit(self, peer: Any, conn: _GuardedProtocol | None = None) -> tuple[str | None, str]:
        """(refusal reason or None, source key); an admitted connection holds a slot until :meth:`release`.

        A full listener makes room by closing the connection open longest that never delivered a
        valid message (:func:`mark_proven`), so idle or garbage connections from many addresses
        cannot lock a real panel out; only when every connection is proven is a new one refused.
        """
        addr = peer_address(peer)
        source = source_key(addr)
        lim = self.limits
        if lim.allow_from and not in_networks(addr, lim.allow_from):
            return NOT_ALLOWED, source
        if self._per_source.get(source, 0) >= lim.max_per_source:
            return TOO_MANY_FROM_SOURCE, source
        if self.stats.open >= lim.max_connections and not self._evict_one():
            return TOO_MANY, source
        self._per_source[source] = self._per_source.get(source, 0) + 1
        self.stats.open += 1
        self.stats.accepted += 1
        if conn is not None:
            self._live.add(conn)
        return None, source

    def _evict_one(self) -> bool:
        victims = [c for c in self._live if not c.proven and c.source is not None]
        if not victims:
            return False
        victim = min(victims, key=lambda c: c.since)
        source = victim.source or ""
        victim.evict()
        self.refused(EVICTED, source)
        return True

    def release(self, source: str, conn: _GuardedProtocol | None = None) -> None:
        if conn is not None:
            self._live.discard(conn)
        self.stats.open -= 1
        left = self._per_source.get(source, 1) - 1
        if left > 0:
            self._per_source[source] = left
        else:
            self._per_source.pop(source, None)

    async def read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int = 4096) -> bytes:
        """Up to ``n`` bytes; b"" at end of stream, and after ``idle_timeout_s`` of silence (counted as idle).

        On a connection of this listener the silence is watched by one lazy timer per connection
        (:meth:`_GuardedProtocol.reading`), not a timeout armed and cancelled around every read:
        a panel sending back to back reads thousands of times a second (issue 20).
        """
        conn = _CURRENT.get()
        if conn is not None and conn.reader_is(reader):
            conn.reading(self.limits.idle_timeout_s)
            try:
                data = await reader.read(n)
            finally:
                conn.read_since = None
            if not data and conn.idled:
                self.refused(IDLE, conn.source or "", log_it=False)
            return data
        try:
            async with asyncio.timeout(self.limits.idle_timeout_s):
                return await reader.read(n)
        except TimeoutError:
            self.refused(IDLE, source_key(peer_address(writer.get_extra_info("peername"))), log_it=False)
            return b""

    def refused(self, reason: str, source: str, *, log_it: bool = True) -> None:
        self.stats.refused[reason] = self.stats.refused.get(reason, 0) + 1
        if log_it:
            self.quiet.log((reason, source), "%s: closed a connection from %s: %s", self.name, source,
                           reason.replace("_", " "))
        try:
            self.on_refuse(reason, source)
        except Exception:
            log.exception("%s: on_refuse hook failed", self.name)


class _GuardedProtocol(asyncio.StreamReaderProtocol):
    """Checks the peer in ``connection_made``: a refused connection is aborted before it is read."""

    def __init__(self, owner: GuardedListener, loop: asyncio.AbstractEventLoop) -> None:
        stream = asyncio.StreamReader(limit=owner.stream_limit, loop=loop)
        super().__init__(stream, self._run, loop=loop)
        self._owner = owner
        self._transport: asyncio.Transport | None = None
        #: the source key while this connection holds a slot
        self.source: str | None = None
        self.since = time.monotonic()
        #: it delivered a valid message (see :func:`mark_proven`): never evicted to make room
        self.proven = False
        #: loop time a read began (None while not reading), the idle timer, and whether it fired
        self.read_since: float | None = None
        self.idled = False
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_s = DEFAULT_IDLE_TIMEOUT_S
        self._loop = loop
        self._stream: asyncio.StreamReader | None = stream

    def reader_is(self, reader: asyncio.StreamReader) -> bool:
        return reader is self._stream

    def reading(self, idle_s: float) -> None:
        """A read begins: the connection is closed if it stays silent ``idle_s``. One timer, re-armed
        only when it fires early (data came meanwhile), so a busy connection costs no timer per read."""
        self.read_since = now = self._loop.time()
        if self._idle_timer is None or idle_s != self._idle_s:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._idle_s = idle_s
            self._idle_timer = self._loop.call_at(now + idle_s, self._idle_check)

    def _idle_check(self) -> None:
        since = self.read_since
        now = self._loop.time()
        if since is not None and now - since >= self._idle_s:
            self.idled = True
            self._idle_timer = None
            if self._stream is not None:
                self._stream.feed_eof()   # the pending read returns b"": the handler ends the connection
            return
        due = (since if since is not None else now) + self._idle_s
        self._idle_timer = self._loop.call_at(due, self._idle_check)

    async def _run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _CURRENT.set(self)   # this connection's task: mark_proven() finds it
        await self._owner.handler(reader, writer)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        why, source = self._owner.admit(transport.get_extra_info("peername"), self)
        if why is not None:
            cast(asyncio.Transport, transport).abort()   # also keeps the transport from ever registering for reads
            self._owner.refused(why, source)
            return
        self.source, self._transport = source, cast(asyncio.Transport, transport)
        super().connection_made(transport)

    def _free(self) -> None:
        if self.source is not None:
            self._owner.release(self.source, self)
            self.source = None

    def evict(self) -> None:
        """Give up the slot now and close the connection unread."""
        self._free()
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._transport is not None:
            self._free()
            self._transport = None
            super().connection_lost(exc)


_CURRENT: contextvars.ContextVar[_GuardedProtocol | None] = contextvars.ContextVar("guarded_conn", default=None)


def current_source() -> str:
    """The source key of the connection whose task this is ("" outside one: a serial port, a test)."""
    conn = _CURRENT.get()
    return (conn.source or "") if conn is not None else ""


def mark_proven() -> None:
    """Called from a connection's task when it delivered a valid message: that connection is a real
    peer's and is never closed to make room for a new one (see :meth:`GuardedListener.admit`)."""
    conn = _CURRENT.get()
    if conn is not None:
        conn.proven = True


# ---------------------------------------------------------------------- the process: fds and accept errors
#: what asyncio says (with a traceback, every time) when accept() fails for want of fds or memory;
#: it then pauses that listener for a second and resumes it by itself
ACCEPT_OUT_OF_RESOURCE = "socket.accept() out of system resource"


def raise_fd_limit() -> tuple[int, int] | None:
    """Raise the soft RLIMIT_NOFILE to the hard one; (old soft, new soft), or None when there is nothing to do."""
    try:
        import resource
    except ImportError:   # not on this platform
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return None
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return None
    return soft, hard


def quiet_accept_errors(logger: logging.Logger) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """A loop exception handler: accept() running out of fds goes to a QuietLog (one line a minute with
    a count, no traceback); everything else to the loop's default handler."""
    quiet = QuietLog(logger, level=logging.ERROR)

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == ACCEPT_OUT_OF_RESOURCE:
            exc = context.get("exception")
            quiet.log(("accept", getattr(exc, "errno", None)), "%s: %s (the listener pauses 1 s and resumes; "
                      "raise LimitNOFILE or lower max_connections)", ACCEPT_OUT_OF_RESOURCE, exc)
            return
        loop.default_exception_handler(context)

    return handler
