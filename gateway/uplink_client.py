"""The uplink's paho client, with a batch path for the outbox's events (paho-mqtt 2.2, pinned).

Why: measured beside ``mosquitto_pub -q 1`` on the same broker (``bench/bench_uplink.py``), the
uplink reached half its speed, and a profile of the daemon showed where the time went -- not in
the outbox or SQLite, but in paho's per-message path, which costs far more than the event itself:

* ``publish()`` builds an ``MQTTMessage`` and an ``MQTTMessageInfo`` (with a ``threading.Condition``)
  per message and writes one byte to paho's wake-up socket pair (a system call, and a wake-up of
  paho's thread that then fights the event loop for the GIL) per message;
* paho's thread sends every packet with its own ``send()``;
* every PUBACK is read with three ``recv()`` calls (1 byte, 1 byte, 2 bytes) and decoded into a
  ``ReasonCode`` and a ``Properties`` object before the callback sees its packet id.

:meth:`UplinkClient.publish_batch` queues a page of QoS 1 PUBLISH packets as *one* buffer (one
wake-up, one ``send()`` for as much as the socket takes), with packet ids from paho's own counter;
their PUBACKs go to :attr:`UplinkClient.on_batch_acked` with the bare packet id. The socket is read
through a 64 KiB buffer, so a burst of PUBACKs costs one ``recv()``. Everything else -- connecting,
TLS, the will, keepalive, subscriptions, commands and their answers, reconnects -- is paho's own,
unchanged. The guarantees do not move: a batch message is QoS 1 on the wire, and an event leaves the
outbox only when the uplink sees its PUBACK (the uplink keeps packet id -> seq, as before).

A batch message is not in paho's ``_out_messages``: paho never re-sends it after a reconnect (the
uplink re-sends from the oldest undelivered row itself, which is why it already drops paho's own
re-sends), and a PUBACK for an id paho does not know is the batch's.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.client import PUBLISH, MQTTErrorCode, time_func

READ_BUFFER = 65536
_QOS1_PUBLISH = PUBLISH | (1 << 1)
_PUBACK_311 = "PUBACK"


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


class UplinkClient(mqtt.Client):
    """paho's client plus :meth:`publish_batch` and a buffered socket read (MQTT 3.1.1 only)."""

    def __init__(self, *args: Any, topic_prefix: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.topic_prefix = topic_prefix
        self._topics: dict[str, bytes] = {}   # event type -> its topic, encoded once
        #: paho's thread: a PUBACK for a batch message arrived (its packet id)
        self.on_batch_acked: Callable[[int], None] = lambda mid: None
        self._rbuf = b""
        self._rpos = 0
        self._rsock: Any = None

    # ------------------------------------------------------------------ out
    def publish_rows(self, rows: Sequence[tuple[int, str, str]]) -> list[int] | None:
        """Outbox rows ``(seq, type, JSON)`` to ``{topic_prefix}{type}`` as one batch (:meth:`publish_batch`)."""
        topics = self._topics
        batch = []
        for _seq, type_, payload in rows:
            topic = topics.get(type_)
            if topic is None:
                topic = topics[type_] = f"{self.topic_prefix}{type_}".encode()
            batch.append((topic, payload.encode()))
        return self.publish_batch(batch)

    def publish_batch(self, messages: Sequence[tuple[bytes, bytes]]) -> list[int] | None:
        """Queue ``(topic, payload)`` pairs as QoS 1 PUBLISH packets, in order, in one buffer.

        Returns their packet ids in the same order, or None when there is no connection (nothing queued).
        """
        if self._sock is None or not messages:
            return None if self._sock is None else []
        if self._protocol == mqtt.MQTTv5:   # the packets built here are 3.1.1's: paho's own path then
            infos = [self.publish(topic.decode(), payload, qos=1) for topic, payload in messages]
            return [i.mid for i in infos] if all(i.rc == MQTTErrorCode.MQTT_ERR_SUCCESS for i in infos) else None
        blob = bytearray()
        mids: list[int] = []
        with self._mid_generate_mutex:   # the same counter as paho's own publishes: ids never collide
            last = self._last_mid
            for topic, payload in messages:
                last = last + 1 if last < 65535 else 1
                mids.append(last)
                blob.append(_QOS1_PUBLISH)
                blob += _remaining_length(4 + len(topic) + len(payload))
                blob += struct.pack("!H", len(topic))
                blob += topic
                blob += struct.pack("!H", last)
                blob += payload
            self._last_mid = last
        self._packet_queue(PUBLISH, blob, mids[0], 1, None)
        return mids

    # ------------------------------------------------------------------ in
    def _handle_pubackcomp(self, cmd: Any) -> MQTTErrorCode:
        packet = self._in_packet["packet"]
        if cmd == _PUBACK_311 and len(packet) == 2:
            mid = (packet[0] << 8) | packet[1]
            if mid not in self._out_messages:   # not paho's own (status, command answers): a batch message
                self.on_batch_acked(mid)
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._handle_pubackcomp(cmd)

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:   # a new connection: nothing buffered from the old one
            self._rsock, self._rbuf, self._rpos = self._sock, b"", 0
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(READ_BUFFER)   # BlockingIOError when there is nothing: paho's AGAIN
            if len(data) <= bufsize:
                return data
            self._rbuf, self._rpos = data, 0
        start = self._rpos
        self._rpos = start + bufsize
        return self._rbuf[start:self._rpos]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        # paho reads as many packets as it has messages in flight (its own count), then waits for the socket
        # to be readable again: what is left in our buffer is not on the socket, so read it all now. The
        # batch's PUBACKs (4 bytes each, nearly all of what comes back) are taken straight from the buffer.
        while True:
            if self._in_packet["command"] == 0 and self._rpos < len(self._rbuf):
                self._take_pubacks()
            rc = super().loop_read(max_packets)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._sock is None or self._rpos >= len(self._rbuf):
                return rc

    def _take_pubacks(self) -> None:
        buf, pos, end = self._rbuf, self._rpos, len(self._rbuf)
        own = self._out_messages
        acked = self.on_batch_acked
        start = pos
        while pos + 4 <= end and buf[pos] == 0x40 and buf[pos + 1] == 2:
            mid = (buf[pos + 2] << 8) | buf[pos + 3]
            if mid in own:   # paho's own message: its own path (on_publish, wait_for_publish)
                break
            acked(mid)
            pos += 4
        if pos != start:
            self._rpos = pos
            with self._msgtime_mutex:
                self._last_bytes_received = time_func()


__all__ = ["UplinkClient"]
