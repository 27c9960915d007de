"""Uplink benchmark: durable recording and QoS 1 delivery to a local mosquitto.

Measures, with the real daemon as a subprocess and a real broker:
  * sustained: N events recorded (committed) and delivered (PUBACKed, seen by a subscriber), events/s
  * backlog: 200,000 events recorded with the broker down, then the drain rate once it is back, zero loss
  * resident memory: idle, and peak while draining (the backlog stays on disk)

Writes bench/results/uplink.json and prints a summary. Not part of `make test`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from benchkit import write_results  # noqa: E402

from conftest import GatewayProc, Mosquitto, wait_until  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

SUSTAINED = int(__import__("os").environ.get("SUSTAINED", 50_000))
BACKLOG = int(__import__("os").environ.get("BACKLOG", 200_000))


class Counter:
    """Counts distinct seqs of gateway.test events at the 'central' side."""

    def __init__(self, port: int, topic: str) -> None:
        self.seqs: set[int] = set()
        self.lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{time.monotonic_ns()}", clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.max_inflight_messages_set(1000)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        ready.wait(10)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        seq = int(json.loads(msg.payload)["seq"])
        with self.lock:
            self.seqs.add(seq)

    def count(self) -> int:
        with self.lock:
            return len(self.seqs)


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1e6


def main() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="egw-bench-"))
    broker = Mosquitto(work).start()
    gw = GatewayProc(work, broker.port, "[outbox]\nmax_events = 2000000\n", mqtt_extra="inflight = 1000\n")
    try:
        return measure(broker, gw)
    finally:
        gw.kill()
        broker.stop()


def measure(broker: Mosquitto, gw: GatewayProc) -> dict[str, Any]:
    gw.start()
    assert gw.proc is not None
    pid = gw.proc.pid
    results: dict[str, Any] = {}
    counter = Counter(broker.port, f"{gw.topic_root}/event/gateway.test")
    wait_until(lambda: gw.health()["uplink"]["connected"], 20, what="uplink")
    time.sleep(2)
    results["rss_idle_mb"] = round(rss_mb(pid), 1)

    # ---- sustained: record + deliver
    t0 = time.monotonic()
    gw.post("/api/v1/test-events", json={"count": SUSTAINED})
    wait_until(lambda: counter.count() >= SUSTAINED, 300, interval=0.02, what="sustained delivery")
    dt = time.monotonic() - t0
    results["sustained_events"] = SUSTAINED
    results["sustained_events_per_s"] = round(SUSTAINED / dt)

    # ---- backlog: broker down, record 200k, broker up, drain
    # delivered rows leave the outbox in batches (every 0.5 s): start from an empty one
    wait_until(lambda: gw.health()["outbox"]["depth"] == 0, 30, what="outbox empty after the sustained run")
    broker.stop()
    wait_until(lambda: not gw.health()["uplink"]["connected"], 30, what="uplink down")
    t0 = time.monotonic()
    base = gw.health()["outbox"]["depth"]
    for _ in range(BACKLOG // 100_000):
        gw.post("/api/v1/test-events", json={"count": 100_000})
    wait_until(lambda: gw.health()["outbox"]["depth"] >= base + BACKLOG, 600, interval=0.2, what="backlog recorded")
    results["record_only_events_per_s"] = round(BACKLOG / (time.monotonic() - t0))
    results["rss_with_backlog_mb"] = round(rss_mb(pid), 1)
    before = counter.count()
    peak = 0.0
    broker.start()
    t0 = time.monotonic()

    def drained() -> bool:
        nonlocal peak
        peak = max(peak, rss_mb(pid))
        return counter.count() >= before + BACKLOG

    wait_until(drained, 900, interval=0.1, what="backlog drained")
    dt = time.monotonic() - t0
    results["backlog_events"] = BACKLOG
    results["backlog_drain_s"] = round(dt, 1)
    results["backlog_drain_events_per_s"] = round(BACKLOG / dt)
    results["rss_peak_draining_mb"] = round(peak, 1)
    try:
        wait_until(lambda: gw.health()["outbox"]["depth"] == 0, 60, what="outbox empty")
    except AssertionError:
        print("outbox not empty:", gw.health(), file=sys.stderr)
        import sqlite3; print(sqlite3.connect(gw.data_dir / "gateway.db").execute("select count(*), min(seq), max(seq) from outbox").fetchall(), file=sys.stderr)
        raise
    last_seq = gw.get("/api/v1/events?after=0&limit=1").json()
    total = SUSTAINED + BACKLOG
    results["lost"] = total - counter.count()
    gw.stop()
    broker.stop()
    results["machine"] = {"cpus": psutil.cpu_count(), "python": sys.version.split()[0]}
    del last_seq
    return results


if __name__ == "__main__":
    res = main()
    out = write_results("uplink", res)
    for k, v in res.items():
        print(f"{k:32} {v}")
