"""Uplink benchmark: durable recording and QoS 1 delivery to a local mosquitto.

Measures, with the real daemon as a subprocess and a real broker:
  * versus mosquitto: COMPARE events posted to /api/v1/test-events and delivered, against `mosquitto_pub -q 1`
    publishing as many messages of the same size, the same C subscriber (`mosquitto_sub -q 1 -C N`) counting
    on both sides, in the same run, alternated REPEATS times: the ratio is the figure (events/s alone depend
    on the box and its load)
  * sustained: N events recorded (committed) and delivered (PUBACKed, seen by a subscriber), events/s
  * backlog: BACKLOG events recorded with the broker down, then the drain rate once it is back, zero loss
  * resident memory: idle, and peak while draining (the backlog stays on disk)

Sizes by env var (SUSTAINED, BACKLOG, COMPARE, REPEATS) so a test keeps it runnable small. Writes
bench/results/uplink.json and prints a summary. Not part of `make test`.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from benchkit import write_results  # noqa: E402

from conftest import GatewayProc, Mosquitto, wait_until  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

SUSTAINED = int(os.environ.get("SUSTAINED", 50_000))
BACKLOG = int(os.environ.get("BACKLOG", 200_000))
COMPARE = int(os.environ.get("COMPARE", 20_000))
REPEATS = int(os.environ.get("REPEATS", 3))
POST_CHUNK = 100_000
# POST /test-events answers once its events are committed: ~10 s for 100k on a quiet box, more under load
POST_TIMEOUT_S = 300.0


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


def post_events(gw: GatewayProc, total: int) -> None:
    """Post ``total`` test events in chunks of at most 100,000 (the API's limit), each answered once committed."""
    remaining = total
    while remaining > 0:
        n = min(POST_CHUNK, remaining)
        r = httpx.post(f"{gw.url}/api/v1/test-events", json={"count": n}, headers=gw.headers("admin"),
                       timeout=POST_TIMEOUT_S, verify=gw.verify)
        r.raise_for_status()
        remaining -= n


class CSub:
    """``mosquitto_sub -q 1 -C n``: the same C subscriber for both sides. Its persistent session is made
    first (``-E`` exits once subscribed), so nothing published after that is missed, however slow it starts.

    It prints to a file, not a pipe: a pipe nobody reads until the end fills after 64 KiB (a few hundred
    messages), the subscriber then blocks in ``write()``, and the broker queues the rest for it -- the run
    then measured the broker's catch-up after the fact as much as the publisher (0.2-0.3 s of a ~1 s run)."""

    def __init__(self, port: int, topic: str, n: int, workdir: Path | None = None) -> None:
        exe = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
        ident = f"cmp-{time.monotonic_ns()}"
        base = [exe, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-c", "-i", ident, "-t", topic]
        subprocess.run([*base, "-E"], check=True, timeout=30, capture_output=True)
        self.out = tempfile.NamedTemporaryFile(prefix="csub-", dir=workdir)  # noqa: SIM115 (closed in wait)
        self.proc = subprocess.Popen([*base, "-C", str(n)], stdout=self.out, stderr=subprocess.DEVNULL)

    def wait(self, timeout: float) -> bytes:
        self.proc.wait(timeout=timeout)
        self.out.seek(0)
        data = self.out.read()
        self.out.close()
        return data


def ref_run(port: int, n: int, payload: bytes) -> float:
    """events/s of ``mosquitto_pub -q 1 -l`` (one message per stdin line) to the C subscriber."""
    topic = f"ref/{time.monotonic_ns()}"
    sub = CSub(port, topic, n)
    exe = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
    t0 = time.monotonic()
    subprocess.run([exe, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, "-l"],
                   input=(payload + b"\n") * n, check=True, timeout=600, capture_output=True)
    sub.wait(600)
    return n / (time.monotonic() - t0)


def gw_run(port: int, gw: GatewayProc, n: int) -> tuple[float, int, float]:
    """events/s of ``n`` test events posted to the gateway until the C subscriber has them; mean payload bytes;
    the daemon's CPU time per event (user + system, all its threads: recording, the uplink, HTTP) in us."""
    sub = CSub(port, f"{gw.topic_root}/event/gateway.test", n)
    assert gw.proc is not None
    proc = psutil.Process(gw.proc.pid)
    c0 = proc.cpu_times()
    t0 = time.monotonic()
    post_events(gw, n)
    out = sub.wait(600)
    rate = n / (time.monotonic() - t0)
    c1 = proc.cpu_times()
    cpu_us = (c1.user + c1.system - c0.user - c0.system) * 1e6 / n
    lines = out.splitlines()
    return rate, round(sum(map(len, lines)) / max(1, len(lines))), cpu_us


def compare(broker: Mosquitto, gw: GatewayProc, n: int, repeats: int) -> dict[str, Any]:
    """Gateway and mosquitto_pub alternated ``repeats`` times on the same broker: ratio per pair, median."""
    gw_rates, ref_rates, ratios, cpu = [], [], [], []
    payload_len = 0
    for _ in range(repeats):
        g, payload_len, cpu_us = gw_run(broker.port, gw, n)
        r = ref_run(broker.port, n, b"x" * payload_len)
        cpu.append(round(cpu_us, 1))
        gw_rates.append(round(g))
        ref_rates.append(round(r))
        ratios.append(round(g / r, 3))
        wait_until(lambda: gw.health()["outbox"]["depth"] == 0, 60, what="outbox empty after a comparison")
    return {"events": n, "payload_bytes": payload_len, "gateway_events_per_s": gw_rates,
            "mosquitto_pub_q1_events_per_s": ref_rates, "ratios": ratios,
            "ratio_median": statistics.median(ratios), "gateway_cpu_us_per_event": cpu,
            "load_avg_1": round(os.getloadavg()[0], 2),
            "meaning": "gateway events/s over mosquitto_pub -q 1 events/s, same broker, same mosquitto_sub -q 1 -C N"}


def main(sustained: int = SUSTAINED, backlog: int = BACKLOG, cmp_n: int = COMPARE,
         repeats: int = REPEATS) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="egw-bench-"))
    broker = Mosquitto(work).start()
    gw = GatewayProc(work, broker.port, "[outbox]\nmax_events = 2000000\n", mqtt_extra="inflight = 1000\n")
    try:
        return measure(broker, gw, sustained, backlog, cmp_n, repeats)
    finally:
        gw.kill()
        broker.stop()


def measure(broker: Mosquitto, gw: GatewayProc, sustained: int, backlog: int, cmp_n: int,
            repeats: int) -> dict[str, Any]:
    gw.start()
    assert gw.proc is not None
    pid = gw.proc.pid
    results: dict[str, Any] = {}
    counter = Counter(broker.port, f"{gw.topic_root}/event/gateway.test")
    wait_until(lambda: gw.health()["uplink"]["connected"], 20, what="uplink")
    time.sleep(2)
    results["rss_idle_mb"] = round(rss_mb(pid), 1)
    results["load_avg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    expected = 0
    if cmp_n > 0 and repeats > 0:
        results["vs_mosquitto_pub"] = compare(broker, gw, cmp_n, repeats)
        expected = cmp_n * repeats
    expected += sustained

    # ---- sustained: record + deliver
    t0 = time.monotonic()
    post_events(gw, sustained)
    wait_until(lambda: counter.count() >= expected, 300, interval=0.02, what="sustained delivery")
    dt = time.monotonic() - t0
    results["sustained_events"] = sustained
    results["sustained_events_per_s"] = round(sustained / dt)
    results.update(backlog_run(broker, gw, counter, pid, backlog))
    results["lost"] = expected + backlog - counter.count()
    gw.stop()
    broker.stop()
    results["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["machine"] = {"cpus": psutil.cpu_count(), "python": sys.version.split()[0]}
    return results


def backlog_run(broker: Mosquitto, gw: GatewayProc, counter: Counter, pid: int, backlog: int) -> dict[str, Any]:
    """Broker down, record ``backlog`` events, broker up, drain: rates, RSS, and the expected total seen.

    The drain rate counts from the moment the link is back (paho's reconnect backoff, up to 30 s after a
    long outage, is reported apart as ``backlog_reconnect_s``). No backlog: nothing to measure, no outage."""
    results: dict[str, Any] = {"backlog_events": backlog}
    if backlog <= 0:
        return results
    # delivered rows leave the outbox in batches (every 0.5 s): start from an empty one
    wait_until(lambda: gw.health()["outbox"]["depth"] == 0, 30, what="outbox empty after the sustained run")
    broker.stop()
    wait_until(lambda: not gw.health()["uplink"]["connected"], 30, what="uplink down")
    t0 = time.monotonic()
    base = gw.health()["outbox"]["depth"]
    post_events(gw, backlog)
    wait_until(lambda: gw.health()["outbox"]["depth"] >= base + backlog, 600, interval=0.2, what="backlog recorded")
    results["record_only_events_per_s"] = round(backlog / (time.monotonic() - t0))
    results["rss_with_backlog_mb"] = round(rss_mb(pid), 1)
    before = counter.count()
    peak = 0.0
    broker.start()
    t_up = time.monotonic()
    wait_until(lambda: gw.health()["uplink"]["connected"], 60, interval=0.02, what="uplink back")
    t0 = time.monotonic()
    results["backlog_reconnect_s"] = round(t0 - t_up, 1)

    def drained() -> bool:
        nonlocal peak
        peak = max(peak, rss_mb(pid))
        return counter.count() >= before + backlog

    wait_until(drained, 900, interval=0.05, what="backlog drained")
    dt = time.monotonic() - t0
    results["backlog_drain_s"] = round(dt, 2)
    results["backlog_drain_events_per_s"] = round(backlog / dt)
    results["rss_peak_draining_mb"] = round(peak, 1)
    wait_until(lambda: gw.health()["outbox"]["depth"] == 0, 60, what="outbox empty")
    return results


if __name__ == "__main__":
    res = main()
    out = write_results("uplink", res)
    for k, v in res.items():
        print(f"{k:32} {v}")
