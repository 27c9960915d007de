"""Bounded HTTP connections: a cap in total and per source, header/body deadlines, keep-alive limits.

Why: uvicorn never closes a connection that sends nothing or a header a byte a second (slowloris),
and holds as many as the file-descriptor limit allows; ~1,100 idle connections to the HTTP port
cut the duty room off its console. uvicorn has a keep-alive timeout but no header or body deadline
and no per-source cap, so this module subclasses its h11 protocol (``uvicorn.Config(http=...)``):

* every connection is counted in one :class:`ConnectionTable` (in total and by source address);
* over ``max_connections`` (or ``max_per_source`` for that source) a newcomer evicts the oldest
  *idle* connection of the full group -- one that has not finished a request (head and body), or
  waits in keep-alive -- and is closed at once only when every connection of the group is busy
  serving a request. So a flood of idle connections from one laptop costs the console nothing but a little
  churn, and no count of them exhausts the daemon's file descriptors;
* a request head must be complete ``header_timeout_s`` after the connection (or its next request)
  started, and its body ``body_timeout_s`` after the head; then the connection is closed;
* after ``max_requests_per_connection`` responses the connection is closed (the client reconnects).

Refusals are counted (``http_conn_refused_total{reason}``) and logged once a minute per reason.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h11
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.h11_impl import H11Protocol

from drivers.quietlog import QuietLog
from gateway.api.addresses import Network, in_networks, source_of

log = logging.getLogger(__name__)

#: handshakes under way (a task must be referenced until it ends)
_handshakes: set[asyncio.Task[Any]] = set()

@dataclass
class Limits:
    max_connections: int = 256
    max_per_source: int = 64
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_requests: int = 1000
    #: sources exempt from the per-source cap (trusted reverse proxies carry everyone)
    exempt: tuple[Network, ...] = ()


@dataclass
class ConnectionTable:
    """Who holds which connection; the idle ones in age order, so the oldest can be evicted."""

    limits: Limits
    on_refused: Callable[[str], Any] = lambda reason: None
    total: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    idle: OrderedDict[BoundedH11Protocol, None] = field(default_factory=OrderedDict)
    idle_by_source: dict[str, OrderedDict[BoundedH11Protocol, None]] = field(default_factory=dict)

    def admit(self, conn: BoundedH11Protocol) -> bool:
        """Count ``conn`` in, evicting an idle connection if a cap is reached; False = refuse it."""
        source = conn.source
        if (self.by_source.get(source, 0) >= self.limits.max_per_source
                and not in_networks(conn.host, self.limits.exempt)
                and not self._evict(self.idle_by_source.get(source), "per_source")):
            self.on_refused("per_source")
            return False
        if self.total >= self.limits.max_connections and not self._evict(self.idle, "total"):
            self.on_refused("total")
            return False
        self.total += 1
        self.by_source[source] = self.by_source.get(source, 0) + 1
        return True

    def _evict(self, group: OrderedDict[BoundedH11Protocol, None] | None, reason: str) -> bool:
        if not group:
            return False
        victim = next(iter(group))
        self.on_refused(f"evicted_{reason}")
        victim.close_now()  # leaves the table at once, not when its transport is gone
        return True

    def release(self, conn: BoundedH11Protocol) -> None:
        self.set_idle(conn, False)
        self.total -= 1
        left = self.by_source.get(conn.source, 1) - 1
        if left > 0:
            self.by_source[conn.source] = left
        else:
            self.by_source.pop(conn.source, None)

    def set_idle(self, conn: BoundedH11Protocol, idle: bool) -> None:
        group = self.idle_by_source.get(conn.source)
        if idle:
            self.idle[conn] = None
            self.idle.move_to_end(conn)
            if group is None:
                group = self.idle_by_source[conn.source] = OrderedDict()
            group[conn] = None
        else:
            self.idle.pop(conn, None)
            if group is not None:
                group.pop(conn, None)
                if not group:
                    del self.idle_by_source[conn.source]


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the table's caps and the head/body deadlines (see the module)."""

    table: ConnectionTable  # set on the subclass made by :func:`bounded_protocol`
    #: HTTPS: the handshake is done here (``loop.start_tls``), so a connection is counted and on its
    #: header deadline from its first moment -- uvicorn's own TLS would hold silent handshakes for 60 s
    tls: ssl.SSLContext | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.host = "?"     # the peer's address as the socket gives it
        self.source = "?"   # its per-source bucket: the IPv4 address or the IPv6 /64, as on the receivers
        self._counted = False
        self._deadline: asyncio.TimerHandle | None = None
        self._seen_cycle: Any = None
        self._requests = 0
        #: HTTPS: bytes decrypted before ``start_tls`` handed over the TLS transport (None = not waiting)
        self._early: bytearray | None = None

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    # ---- the connection's life
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.host = self.client[0] if self.client else "?"
        self.source = source_of(self.host)
        if not self.table.admit(self):
            self.transport.close()
            return
        self._counted = True
        self._waiting_for_head()  # for HTTPS the deadline covers the handshake too
        if self.tls is not None:
            transport.pause_reading()  # nothing reaches h11 before the handshake
            self._early = bytearray()
            task = self.loop.create_task(self._start_tls(transport))
            _handshakes.add(task)
            task.add_done_callback(_handshakes.discard)

    async def _start_tls(self, raw: asyncio.Transport) -> None:
        assert self.tls is not None
        try:
            tls = await self.loop.start_tls(raw, self, self.tls, server_side=True,
                                            ssl_handshake_timeout=self.table.limits.header_timeout_s)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            if self._counted:
                self.table.on_refused("tls_handshake")
                log.debug("HTTPS handshake with %s failed: %s", self.source, exc)
            self.close_now()
            return
        if tls is None or not self._counted:
            return
        self.transport, self.flow, self.scheme = tls, FlowControl(tls), "https"
        early, self._early = self._early, None
        if early:  # decrypted before start_tls returned: answer it on the TLS transport
            self.data_received(bytes(early))

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave()
        super().connection_lost(exc)

    def close_now(self) -> None:
        self._leave()
        if not self.transport.is_closing():
            self.transport.close()

    def _leave(self) -> None:
        self._cancel_deadline()
        if self._counted:
            self._counted = False
            self.table.release(self)

    # ---- deadlines
    def _arm(self, seconds: float, reason: str) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(seconds, self._expired, reason)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, reason: str) -> None:
        self._deadline = None
        self.table.on_refused(reason)
        self.close_now()

    def _waiting_for_head(self) -> None:
        """Between requests: idle (evictable) and a head must come within the header deadline."""
        self.table.set_idle(self, True)
        self._arm(self.table.limits.header_timeout_s, "header_timeout")

    def data_received(self, data: bytes) -> None:
        if self._early is not None:  # the handshake finished, start_tls has not returned yet
            self._early += data
            if len(self._early) > 64 * 1024:
                self.close_now()
            return
        if self._counted and self._deadline is None and self._between_requests():
            # the first byte of a next request on a kept-alive connection starts its head deadline
            self._arm(self.table.limits.header_timeout_s, "header_timeout")
        super().data_received(data)

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def handle_events(self) -> None:
        super().handle_events()
        if not self._counted:
            return
        cycle = self.cycle
        if cycle is not None and cycle is not self._seen_cycle and not cycle.response_complete:
            # a new request head is complete. Busy (never evicted) once its body is complete too: a body
            # still arriving is on its own deadline and may be evicted like an idle connection, so slow
            # bodies (a public login form dripping) cannot pin the connection table either
            self._seen_cycle = cycle
            self._requests += 1
            self._cancel_deadline()
            if self._requests >= self.table.limits.max_requests:
                cycle.keep_alive = False
            if cycle.more_body and self.conn.their_state is h11.SEND_BODY:
                self._arm(self.table.limits.body_timeout_s, "body_timeout")
            else:
                self.table.set_idle(self, False)
        elif (cycle is not None and cycle is self._seen_cycle and not cycle.more_body
              and not self._between_requests() and self._deadline is not None):
            self._cancel_deadline()  # the body is complete: busy now
            self.table.set_idle(self, False)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # arms uvicorn's keep-alive timeout
        if self._counted and not self.transport.is_closing() and self._between_requests():
            self._cancel_deadline()
            self.table.set_idle(self, True)


def bounded_protocol(limits: Limits, on_refused: Callable[[str], Any], *,
                     tls: ssl.SSLContext | None = None) -> type[BoundedH11Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` sharing one table of ``limits``."""
    table = ConnectionTable(limits, on_refused)
    return type("BoundedH11Protocol", (BoundedH11Protocol,), {"table": table, "tls": tls})


def server_tls(certfile: str, keyfile: str) -> ssl.SSLContext:
    """The HTTPS context, made the way uvicorn makes its own (its defaults for version and ciphers)."""
    from uvicorn.config import SSL_PROTOCOL_VERSION, create_ssl_context

    return create_ssl_context(certfile=certfile, keyfile=keyfile, password=None, ssl_version=SSL_PROTOCOL_VERSION,
                              cert_reqs=ssl.CERT_NONE, ca_certs=None, ciphers="TLSv1")


def refusal_counter(metric: Callable[..., Any], quiet: QuietLog | None = None) -> Callable[[str], None]:
    """``on_refused``: count by reason, and log once a minute per reason."""
    quiet = quiet or QuietLog(log)
    messages = {
        "per_source": "HTTP: a source over max_per_source with no idle connection to give up; closed",
        "total": "HTTP: max_connections reached and none idle; new connection closed",
        "evicted_per_source": "HTTP: a source over max_per_source; its oldest idle connection closed",
        "evicted_total": "HTTP: max_connections reached; the oldest idle connection closed",
        "header_timeout": "HTTP: a request head did not arrive within header_timeout_s; connection closed",
        "body_timeout": "HTTP: a request body did not arrive within body_timeout_s; connection closed",
        "tls_handshake": "HTTPS: a TLS handshake failed or did not finish within header_timeout_s; closed",
    }

    def on_refused(reason: str) -> None:
        metric("http_conn_refused_total", {"reason": reason})
        quiet.log(("http", reason), messages.get(reason, f"HTTP: connection closed ({reason})"))

    return on_refused
