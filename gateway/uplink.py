"""The MQTT uplink to the central office system (paho-mqtt 2.x).

Delivery model -- why nothing is lost:

* Events are already committed in the outbox before the uplink ever sees them.
* The pump publishes outbox rows in ``seq`` order, QoS 1, with at most
  ``[mqtt] inflight`` messages awaiting PUBACK.
* A row leaves the outbox only when its PUBACK arrives (``on_publish``).
* On every (re)connect the cursor goes back to the oldest undelivered row, so
  whatever was in flight when the link dropped is sent again (duplicates are
  possible and allowed; every event carries a unique ``id``). Rows recorded
  before this connection are sent with ``historical: true``.

paho's network thread does the socket work and reconnects with backoff; its
callbacks only hand work to the asyncio loop, which owns all state here.

A broker cluster (``[mqtt] urls``): when the link to a node is lost, or a connection attempt
fails, paho's next attempt goes to the next node (:class:`~gateway.uplink_nodes.Nodes`). A node
that is frozen keeps its TCP connection open and just stops answering: when PUBACKs have been
outstanding for longer than the keepalive, the watchdog shuts the socket, which paho sees as a
lost link -- and moves on. Delivery is unchanged: the cursor goes back to the oldest undelivered
row on the new node, so nothing is lost or reordered (duplicates by id are possible, as always).

Commands are subscribed as ``{root}/cmd/#`` and named by the remaining levels joined with ``.``:
RabbitMQ's MQTT plugin delivers ``cmd/door.unlock`` as ``cmd/door/unlock``, mosquitto unchanged.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sys
import time
from typing import Any

import paho.mqtt.client as mqtt

from drivers.asyncwait import wait_set
from gateway.commands import CommandRouter
from gateway.config import GatewayConfig
from gateway.events import EventLog, format_ts, utc_now
from gateway.metrics import Metrics
from gateway.reasons import BROKER_REFUSED, DISCONNECTED, NODE_STALLED, NONE, Reason
from gateway.uplink_client import UplinkClient
from gateway.uplink_delivered import Delivered
from gateway.uplink_nodes import (
    Nodes,
    UplinkState,
    base_client_id,
    drop_socket,
    explain_connect_error,
    explain_refusal,
    host_port,
    make_client,
    status_payload,
)
from gateway.uplink_outage import OutageLog
from gateway.uplink_outbound import CommandPath, Resender

#: while events stream in, the pump sends a short page at most this often. Every page costs the event loop,
#: paho's thread and the broker a round of wake-ups and system calls: ten panels at full speed made a page of
#: ten events every 2 ms, and that was a fifth of every round (issue 20). The first event after a quiet
#: spell goes at once, the next ones wait at most this long; a backlog goes in full pages, unpaced.
PAGE_EVERY_S = 0.01

log = logging.getLogger(__name__)
paho_log = logging.getLogger("gateway.mqtt")   # paho's own lines, at debug only: OutageLog says what matters


class Uplink:
    def __init__(self, cfg: GatewayConfig, events: EventLog, commands: CommandRouter, metrics: Metrics,
                 *, boot_id: str, version: str) -> None:
        self.cfg = cfg
        self.events = events
        self.commands = commands
        self.metrics = metrics
        self.boot_id = boot_id
        self.version = version
        self.root = cfg.topic_root
        self.state = UplinkState()
        self.window = cfg.mqtt.inflight
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: UplinkClient | None = None
        self._wake = asyncio.Event()
        self._link_up = asyncio.Event()
        self._cursor = 0
        self._generation = 0  # bumps on every connect; stale acks from an old link are ignored
        self._inflight: dict[int, int] = {}  # paho mid -> seq
        self._acks_in: collections.deque[int] = collections.deque()
        self._ack_wake_pending = False
        self._room_wait = False   # the pump waits for room in its window: PUBACKs wake it (else new events do)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_socket_error = ""
        self.outage = OutageLog(log)   # one line when the link goes, one when it is back
        self.nodes = Nodes(cfg.mqtt.nodes)
        self._closing = False          # our own disconnect: paho must not move on to another node
        self._socket_open = False      # paho opened a socket whose end is not handled yet (see _on_disconnect)
        self.progress_at = 0.0         # monotonic: the last PUBACK, or a publish with none outstanding
        self._stalled: Reason = NONE   # why the watchdog dropped the link (the loss reason to log)
        self.delivered = Delivered(events, self.state, metrics, self._spawn)
        self.resend = Resender(events, self._publish_one, f"{self.root}/event/")
        self.command_path = CommandPath(commands, self.root, lambda t, p: self._publish_one(t, p, only_connected=False),
                                        cfg.mqtt.max_packet_bytes, self._spawn)
        events.on_new(self._wake.set)
        metrics.gauge_fn("outbox_depth", lambda: self.events.outbox_depth)
        metrics.gauge_fn("mqtt_connected", lambda: 1 if self.state.connected else 0)
        metrics.gauge_fn("mqtt_inflight", lambda: len(self._inflight))

    # ------------------------------------------------------------------ client
    def _build_client(self) -> UplinkClient:
        client = make_client(self.cfg, self.nodes.client_id(base_client_id(self.cfg)))
        client.on_batch_acked = self._on_batch_acked
        client.will_set(f"{self.root}/status", self._status_payload("offline"), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_pre_connect = self._on_pre_connect
        client.on_publish = lambda c, u, mid, reason, props: self._on_batch_acked(mid)  # paho's own: status, answers
        client.on_message = self._on_message
        client.on_log = self._on_log
        return client

    def _status_payload(self, state: str) -> str:
        return status_payload(self.cfg, state, self.boot_id, self.version)

    @property
    def inflight_count(self) -> int:
        return len(self._inflight)

    # ------------------------------------------------------------------ paho thread callbacks
    def _call(self, fn: Any, *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._call(self._set_error, BROKER_REFUSED(detail=reason))
            return
        client.drop_out_messages()  # not paho's re-send ahead of the pump's (seqs twice, out of order)
        client.subscribe(f"{self.root}/cmd/#", qos=1)
        self._call(self._link_established, self.nodes.current)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this from inside its ``except OSError``: the exception says what went wrong
        self._call(self._set_error, explain_connect_error(sys.exc_info()[1], self.nodes.current, self.cfg.mqtt.ca_file))
        self._next_node(client)

    def _next_node(self, client: mqtt.Client) -> None:
        if not self._closing:   # our own disconnect ends the link; it does not move on
            self.nodes.move_on(client, self.cfg.mqtt.keepalive_s, base_client_id(self.cfg))

    def _on_log(self, client: mqtt.Client, userdata: Any, level: int, text: str) -> None:
        # A TLS alert after the handshake (e.g. the broker wants a client certificate) only shows
        # up here, as a socket error: keep the last one to explain a link that never came up.
        paho_log.debug("paho: %s", text)
        if level == mqtt.MQTT_LOG_ERR and not text.startswith("Client is not connected"):  # paho's own noise
            self._last_socket_error = text

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        self._socket_open = True   # a new socket: its end is acted on once

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        # paho 2.2 reports a keepalive timeout twice (its ping check, then its loop's): acting on both moved a
        # cluster on by two nodes and logged the second as a refused connection to a healthy node (CI, 2026-12-06)
        if not self._socket_open:
            return
        self._socket_open = False
        url = self.nodes.current
        self._next_node(client)
        self._call(self._link_lost, str(reason), url)

    def _on_batch_acked(self, mid: int) -> None:
        # Thousands of PUBACKs a second: queue them and wake the loop once per batch,
        # not once per ack (each wake-up is a syscall and a loop iteration).
        self._acks_in.append(mid)
        if not self._ack_wake_pending:
            self._ack_wake_pending = True
            self._call(self._drain_acks_in)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._call(self.command_path.arrived, msg.topic, bytes(msg.payload))

    # ------------------------------------------------------------------ loop side
    def _set_error(self, text: Reason) -> None:
        self.state.last_error = text   # a connection attempt failed: counted, logged once per outage and kind
        self.outage.failed(text)

    def _link_established(self, url: str) -> None:
        self.state.connected = True
        self.state.node = url
        previous = self.nodes.linked(url)
        if previous is not None:
            self.state.failovers += 1
            self.metrics.inc("mqtt_failovers_total")
        self.state.since = format_ts(utc_now())
        self.state.connects += 1
        self.state.last_error = ""
        if self.state.connects > 1:
            self.metrics.inc("mqtt_reconnects_total")
        self._generation += 1
        self._inflight.clear()
        self._cursor = 0
        self.progress_at = time.monotonic()
        self.outage.connected(url, self.state.connects, failover_from=previous, failovers=self.state.failovers)
        self._spawn(self._on_link_up(self._generation))

    async def _on_link_up(self, generation: int) -> None:
        # Everything queued now predates this link: it is history for central.
        n = await self.events.mark_backlog_historical()
        if generation != self._generation:
            return
        self.events.online = True
        if n:
            log.info("mqtt: %d queued events will be sent as historical", n)
        assert self._client is not None
        self._client.publish(f"{self.root}/status", self._status_payload("online"), qos=1, retain=True)
        self._link_up.set()
        self._wake.set()

    def _link_lost(self, reason: str, url: str) -> None:
        was = self.state.connected
        self.state.connected = False
        self.state.node = ""
        stalled, self._stalled = self._stalled, NONE
        self.events.online = False
        self._link_up.clear()
        self._inflight.clear()
        self._generation += 1
        if was:
            self.outage.lost(stalled or str(reason), url if self.nodes.cluster else "")
            self.state.last_error = stalled or DISCONNECTED(detail=reason)
        elif self._client is not None and getattr(self.state.last_error, "code", "") != BROKER_REFUSED.code:
            self._set_error(explain_refusal(stalled or reason, self._last_socket_error, url))
        self._wake.set()

    def _drain_acks_in(self) -> None:
        self._ack_wake_pending = False
        acks, inflight, seqs = self._acks_in, self._inflight, []
        while acks:
            seq = inflight.pop(acks.popleft(), None)
            if seq is not None:  # else status/cmd-result, or an ack from a link that is gone
                seqs.append(seq)
        if not seqs:
            return
        self.progress_at = time.monotonic()
        self.delivered.acked(seqs)
        if self._room_wait:   # else the pump waits for new events, which ring for themselves
            self._wake.set()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ the pump
    async def run(self) -> None:
        """Connect (and keep reconnecting) and publish the outbox forever."""
        self._loop = asyncio.get_running_loop()
        self._client = self._build_client()
        host, port = host_port(self.nodes.current)
        self._client.connect_async(host, port, keepalive=self.cfg.mqtt.keepalive_s)
        self._client.loop_start()
        watchdog = self._spawn(watch_acks(self))
        try:
            await self._pump()
        except asyncio.CancelledError:
            raise  # the daemon closes the link itself (offline status first)
        except BaseException:
            self._teardown()
            raise
        finally:
            watchdog.cancel()

    def _teardown(self) -> None:
        client, self._client = self._client, None
        self._closing = True
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self._link_lost("uplink task ended", self.nodes.current)

    async def _pump(self) -> None:
        loop, sent_at = asyncio.get_running_loop(), 0.0
        while True:
            await self._link_up.wait()
            room = self.window - len(self._inflight)
            # a page at a time, not a row per PUBACK: each read of the outbox is a query
            if room <= 0 or (self._inflight and room < self.window // 4):
                self._wake.clear()
                self._room_wait = True   # PUBACKs ring the doorbell only now (see _drain_acks_in)
                await wait_set(self._wake, 1.0)
                self._room_wait = False
                continue
            # doorbell cleared *before* reading: a later commit rings again, so a short batch means drained
            self._wake.clear()
            limit = min(room, 1000)
            rows = self.events.pending_wire(self._cursor, limit)
            if rows:
                self._publish_rows(rows)
                sent_at = loop.time()
            if len(rows) < limit:
                await wait_set(self._wake, 1.0)
                if (gap := sent_at + PAGE_EVERY_S - loop.time()) > 0:   # a stream: a page every PAGE_EVERY_S
                    await asyncio.sleep(gap)
            else:
                await asyncio.sleep(0)  # let acks and commands in between batches

    def _publish_rows(self, rows: list[tuple[int, str, str]]) -> None:
        if not self.state.connected:
            return
        if not self._inflight:
            self.progress_at = time.monotonic()
        assert self._client is not None
        mids = self._client.publish_rows(rows)   # one page, one buffer of QoS 1 packets
        if mids is None:
            log.warning("mqtt: %d events not queued (no connection); will retry", len(rows))
            return
        self._inflight.update(zip(mids, (row[0] for row in rows), strict=True))
        self._cursor = rows[-1][0]

    # ------------------------------------------------------------------ commands
    def _publish_one(self, topic: str, payload: str, *, only_connected: bool = True) -> bool:
        client = self._client
        if client is None or (only_connected and not self.state.connected):
            return False
        return client.publish(topic, payload, qos=1).rc == mqtt.MQTT_ERR_SUCCESS

    def stalled(self, why: Reason) -> None:
        """The node stopped acknowledging: drop its link (paho then moves on to the next node)."""
        self._stalled, self.progress_at = why, time.monotonic()
        if self._client is not None:
            drop_socket(self._client)

    # ------------------------------------------------------------------ stop
    async def drain(self, timeout: float) -> None:
        """On a clean stop: give in-flight messages a moment to be acknowledged."""
        deadline = time.monotonic() + timeout
        while self._inflight and self.state.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self.delivered.flush()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        self._closing = True
        if self.state.connected:
            try:
                info = client.publish(f"{self.root}/status", self._status_payload("offline"), qos=1, retain=True)
                await asyncio.get_running_loop().run_in_executor(None, info.wait_for_publish, 2.0)
            except (RuntimeError, ValueError) as exc:
                log.warning("mqtt: offline status not confirmed: %s", exc)
        client.disconnect()
        client.loop_stop()
        self.events.online = False
        self.state.connected = False
        await self.delivered.flush()


async def watch_acks(up: Uplink) -> None:
    """A node that stops acknowledging is dead to us: its link is dropped within the keepalive."""
    limit = up.cfg.mqtt.keepalive_s
    while True:
        await asyncio.sleep(1.0)
        outstanding = up.inflight_count
        stuck = time.monotonic() - up.progress_at
        if up.state.connected and outstanding and stuck > limit:
            host, port = host_port(up.state.node)
            up.stalled(NODE_STALLED(where=f"{host}:{port}", outstanding=outstanding, seconds=round(stuck),
                                    keepalive=limit))
