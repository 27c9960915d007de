"""UplinkClient against a real mosquitto: a batch arrives whole and in order at QoS 1, every PUBACK reaches
the batch hook (read through the buffer), paho's own publishes are still paho's, and a batch on no link is refused."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from conftest import Mosquitto, Subscriber, wait_until
from gateway.uplink_client import UplinkClient


def _client(port: int) -> tuple[UplinkClient, list[int], list[int]]:
    acked: list[int] = []
    own: list[int] = []
    lock = threading.Lock()
    connected = threading.Event()
    client = UplinkClient(CallbackAPIVersion.VERSION2, client_id="egw-batch-test", clean_session=True,
                          topic_prefix="t/event/")
    client.max_inflight_messages_set(0)

    def batch_acked(mid: int) -> None:
        with lock:
            acked.append(mid)

    client.on_batch_acked = batch_acked
    client.on_publish = lambda c, u, mid, reason, props: own.append(mid)
    client.on_connect = lambda c, u, f, rc, p: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(10)
    return client, acked, own


def test_batches_arrive_in_order_and_every_puback_is_seen(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path).start()
    sub = Subscriber(broker.port, "t/event/#")
    client, acked, own = _client(broker.port)
    try:
        # sizes across the remaining-length encoding's 1, 2 and 3 byte forms
        sizes = [0, 1, 120, 200, 16_000, 20_000, 70_000] + [150] * 3000
        rows = [(seq, "x.y" if seq % 2 else "gateway.test", f'{{"seq":{seq},"pad":"{"p" * n}"}}')
                for seq, n in enumerate(sizes, start=1)]
        mids: list[int] = []
        for start in range(0, len(rows), 500):
            page = client.publish_rows(rows[start:start + 500])
            assert page is not None
            mids += page
        assert len(set(mids)) == len(rows)
        status = client.publish("t/status", b"online", qos=1)   # paho's own path beside the batches
        wait_until(lambda: len(sub.snapshot()) >= len(rows), 60, what="every batch message at the subscriber")
        got = [(topic, payload["seq"]) for topic, payload in sub.snapshot()]
        assert got == [(f"t/event/{type_}", seq) for seq, type_, _ in rows]   # whole, in order, once
        assert [len(payload["pad"]) for _, payload in sub.snapshot()] == sizes
        wait_until(lambda: len(acked) >= len(rows), 60, what="every PUBACK at the batch hook")
        assert sorted(acked) == sorted(mids)
        wait_until(lambda: own == [status.mid], 10, what="paho's own PUBACK at on_publish")
        assert status.mid not in acked
    finally:
        client.disconnect()  # first: loop_stop() alone waits out paho's 1 s select
        client.loop_stop()
        sub.close()
        broker.stop()


def test_a_batch_with_no_link_is_refused(tmp_path: Path) -> None:
    client = UplinkClient(CallbackAPIVersion.VERSION2, client_id="egw-batch-none")
    assert client.publish_rows([(1, "gateway.test", "{}")]) is None
    assert client.publish_batch([]) is None


def test_mqtt5_batches_go_through_paho_s_own_publish(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path).start()
    sub = Subscriber(broker.port, "t/event/#")
    own: list[int] = []
    connected = threading.Event()
    client = UplinkClient(CallbackAPIVersion.VERSION2, client_id="egw-batch-v5", protocol=mqtt.MQTTv5,
                          topic_prefix="t/event/")
    client.on_publish = lambda c, u, mid, reason, props: own.append(mid)
    client.on_connect = lambda c, u, f, rc, p: connected.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert connected.wait(10)
        mids = client.publish_rows([(seq, "gateway.test", f'{{"seq":{seq}}}') for seq in range(1, 51)])
        assert mids is not None and len(mids) == 50
        wait_until(lambda: len(sub.snapshot()) >= 50 and sorted(own) == sorted(mids), 30, what="50 at QoS 1")
        assert [p["seq"] for _, p in sub.snapshot()] == list(range(1, 51))
    finally:
        client.disconnect()  # first: loop_stop() alone waits out paho's 1 s select
        client.loop_stop()
        sub.close()
        broker.stop()
