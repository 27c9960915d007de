"""Many sites on one broker setup: N simulated gateways -> broker(s) -> central.

Every simulated gateway is the REAL uplink code (``gateway.uplink.Uplink``) over its own
store and event log (``gateway.daemon.build_context`` with no components), recording
``gateway.test`` events at a steady rate. Gateways run as asyncio tasks inside a few
worker processes (one process per gateway would need ~40 MB each). "Central" is one
MQTT subscriber with a persistent session on the central broker, as the office system
would be.

Three topologies, all with real brokers:
  * direct: every gateway connects straight to the central broker (one mosquitto);
  * bridge: gateways connect to edge brokers (one per ``GW_PER_EDGE`` gateways), each
    bridged to the central broker (QoS 1, persistent bridge session);
  * cluster: a three-node RabbitMQ cluster (scripts/rabbitmq-cluster.sh, quorum MQTT sessions);
    every gateway has all three nodes in ``[mqtt] urls`` (each starting at node i % 3), central
    is a persistent session on node 3, and node 1 is killed (-9) half way through the run.

Reported per (topology, N): offered and delivered events/s, loss (recorded but never
seen by central), duplicates, end-to-end latency (recorded -> at central) percentiles,
CPU of the central broker. Writes bench/results/sites.json and prints a summary.

    .venv/bin/python bench/bench_sites.py                  # N = 10, 50, 200, both topologies
    .venv/bin/python bench/bench_sites.py --n 10 --topology bridge --seconds 5
Not part of `make test`; stores live on /dev/shm (each real gateway has its own disk).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import select
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

GW_PER_EDGE = 50            # gateways per edge broker in the bridge topology
GW_PER_WORKER = 50          # gateways per worker process
#: per-gateway event rate for each N, chosen so the whole run fits in < 10 minutes on 2 cores
DEFAULT_RATES = {10: 40.0, 50: 12.0, 200: 4.0}
TOPIC_ROOT = "estate"


# ---------------------------------------------------------------------- brokers
def edge_bridge_conf(central_port: int, edge_name: str) -> str:
    """mosquitto bridge section of an edge broker (same as config/mosquitto/bridge.conf)."""
    return (f"connection {edge_name}\naddress 127.0.0.1:{central_port}\nclientid {edge_name}\n"
            "cleansession false\nbridge_protocol_version mqttv311\ntry_private true\nnotifications false\n"
            "restart_timeout 1 5\nkeepalive_interval 30\n"
            f"topic {TOPIC_ROOT}/+/+/event/# out 1\ntopic {TOPIC_ROOT}/+/+/status out 1\n"
            f"topic {TOPIC_ROOT}/+/+/cmd-result out 1\ntopic {TOPIC_ROOT}/+/+/cmd/# in 1\n")


class Topology:
    """The central broker and, for 'bridge', the edge brokers; .ports_for(i) = broker of gateway i."""

    def __init__(self, kind: str, n: int, workdir: Path) -> None:
        from conftest import Mosquitto

        self.kind = kind
        self.edges: list[Any] = []
        self.rmq: RabbitCluster | None = None
        if kind == "cluster":
            self.rmq = RabbitCluster()
            self.central_port = self.rmq.ports[2]
            return
        (workdir / "central").mkdir(parents=True, exist_ok=True)
        self.central = Mosquitto(workdir / "central").start()
        self.central_port = self.central.port
        if kind == "bridge":
            for e in range(max(1, math.ceil(n / GW_PER_EDGE))):
                d = workdir / f"edge{e}"
                d.mkdir(parents=True, exist_ok=True)
                self.edges.append(Mosquitto(d, extra_conf=edge_bridge_conf(self.central.port,
                                                                                          f"edge-{e}")).start())

    def urls_for(self, i: int) -> str:
        """Gateway i's broker url(s), ``|``-separated: on the cluster every node, starting at node i % 3."""
        if self.rmq is not None:
            k = i % 3
            ports = self.rmq.ports[k:] + self.rmq.ports[:k]
            return "|".join(f"mqtt://127.0.0.1:{p}" for p in ports)
        return f"mqtt://127.0.0.1:{self.edges[i // GW_PER_EDGE].port if self.edges else self.central.port}"

    def broker_pids(self) -> list[int]:
        if self.rmq is not None:
            return self.rmq.pids()
        return [self.central.proc.pid]

    def stop(self) -> None:
        if self.rmq is not None:
            self.rmq.stop()
            return
        for b in [*self.edges, self.central]:
            b.stop()


class RabbitCluster:
    """scripts/rabbitmq-cluster.sh: three nodes, MQTT on BASE+201..203 (needs root and rabbitmq-server)."""

    SCRIPT = ROOT / "scripts" / "rabbitmq-cluster.sh"

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="egw-rmq-bench-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        base = 29000
        self.env = {**os.environ, "EGW_RMQ_BASE": str(base), "EGW_RMQ_DIR": self.dir}
        self.ports = [base + 200 + n for n in (1, 2, 3)]
        res = self.run("start")
        if res.returncode != 0:
            self.stop()
            raise RuntimeError(f"rabbitmq cluster did not start: {res.stderr[-500:]}")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(self.SCRIPT), *args], env=self.env, capture_output=True, text=True,
                              timeout=300)

    def pids(self) -> list[int]:
        out = []
        for n in (1, 2, 3):
            try:
                out.append(int(Path(self.dir, f"egw{n}", "pid").read_text().strip()))
            except (OSError, ValueError):
                pass
        return out

    def stop(self) -> None:
        self.run("stop")
        subprocess.run(["rm", "-rf", self.dir], check=False)


# ---------------------------------------------------------------------- central
class Central:
    """The office system's subscriber: distinct (gateway root, seq) seen, with latency."""

    def __init__(self, port: int, topic: str = f"{TOPIC_ROOT}/+/+/event/gateway.test") -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.seen: set[tuple[str, int]] = set()
        self.latencies_ms: list[float] = []
        self.duplicates = 0
        self.first = self.last = 0.0
        self.lock = threading.Lock()
        ready = threading.Event()
        c = self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"central-{time.monotonic_ns()}",
                                      clean_session=False)
        c.max_inflight_messages_set(0)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(topic, qos=1)
        c.on_subscribe = lambda *a: ready.set()
        c.on_message = self._on_message
        c.reconnect_delay_set(0.2, 2)
        c.connect_async("127.0.0.1", port)
        c.loop_start()
        if not ready.wait(10):
            raise RuntimeError("central subscriber could not subscribe")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        now = time.time()
        env = json.loads(msg.payload)
        key = (msg.topic.rsplit("/event/", 1)[0], int(env["seq"]))
        sent = datetime.fromisoformat(env["ts"].replace("Z", "+00:00")).timestamp()
        with self.lock:
            if key in self.seen:
                self.duplicates += 1
                return
            self.seen.add(key)
            if not env["historical"]:
                self.latencies_ms.append((now - sent) * 1000)
            self.first = self.first or now
            self.last = now

    def count(self) -> int:
        with self.lock:
            return len(self.seen)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# ---------------------------------------------------------------------- one simulated gateway
class SimGateway:
    """A gateway minus hardware: its own store + event log + the real Uplink."""

    def __init__(self, index: int, urls: str | int, data_root: Path, *, site: str | None = None) -> None:
        self.index = index
        self.id = f"gw-{index:04d}"
        self.site = site or f"site-{index:04d}"
        self.urls = f"mqtt://127.0.0.1:{urls}" if isinstance(urls, int) else urls   # '|'-separated
        self.data_dir = data_root / self.id
        self.ctx: Any = None
        self.uplink: Any = None
        self.task: asyncio.Task[Any] | None = None
        self.recorded = 0

    @property
    def root(self) -> str:
        return f"{TOPIC_ROOT}/{self.site}/{self.id}"

    async def start(self) -> None:
        from gateway import __version__
        from gateway.config import GatewayConfig
        from gateway.daemon import build_context
        from gateway.uplink import Uplink

        cfg = GatewayConfig.model_validate({
            "gateway": {"id": self.id, "site": self.site, "data_dir": str(self.data_dir)},
            "mqtt": {**({"urls": self.urls.split("|")} if "|" in self.urls else {"url": self.urls}),
                     "topic_root": TOPIC_ROOT, "inflight": 100},
            "api": {"listen": "127.0.0.1:0"},
        })
        self.ctx = await build_context(cfg, components=[])
        self.uplink = Uplink(cfg, self.ctx.events, self.ctx.commands, self.ctx.metrics,
                             boot_id=f"bench-{self.id}", version=__version__)
        self.ctx.uplink = self.uplink
        self.task = asyncio.get_running_loop().create_task(self.uplink.run())

    @property
    def connected(self) -> bool:
        return bool(self.uplink and self.uplink.state.connected)

    async def record(self, n: int = 1) -> None:
        def batch(conn: Any, emit: Any) -> None:
            for _ in range(n):
                self.recorded += 1
                emit("gateway.test", {"n": self.recorded, "gateway": self.id})

        await self.ctx.events.transact(batch)

    async def run_steady(self, rate: float, seconds: float) -> None:
        """Record at ``rate`` events/s for ``seconds`` (random phase, no drift)."""
        start = time.monotonic() + random.random() / max(rate, 0.001)
        k = 0
        while True:
            due = start + k / rate
            if due - start >= seconds:
                return
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.record()
            k += 1

    async def stop(self) -> None:
        from gateway.daemon import stop_context

        if self.uplink is not None:
            await self.uplink.drain(2.0)
            await self.uplink.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.ctx is not None:
            await stop_context(self.ctx)


async def wait_for(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------------- worker process
async def worker_main(args: argparse.Namespace) -> None:
    """Run gateways [first, first+count): connect, READY, wait for GO, record, drain, report."""
    import psutil

    urls = args.ports.split(",")
    gws = [SimGateway(i, urls[k], Path(args.data)) for k, i in enumerate(range(args.first, args.first + args.count))]
    for gw in gws:
        await gw.start()
    await wait_for(lambda: all(g.connected for g in gws), 60, "all gateways connected")
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # GO
    t0 = time.monotonic()
    await asyncio.gather(*(g.run_steady(args.rate, args.seconds) for g in gws))
    recording_s = time.monotonic() - t0
    try:
        await wait_for(lambda: all(g.ctx.events.outbox_depth == 0 for g in gws), 120, "outboxes drained")
    except TimeoutError:
        pass
    report = {"recorded": sum(g.recorded for g in gws), "recording_s": recording_s,
              "outbox_left": sum(g.ctx.events.outbox_depth for g in gws),
              "rss_mb": psutil.Process().memory_info().rss / 1e6,
              "reconnects": sum(g.uplink.state.connects - 1 for g in gws),
              "failovers": sum(g.uplink.state.failovers for g in gws)}
    print("RESULT " + json.dumps(report), flush=True)
    for g in gws:
        await g.stop()


# ---------------------------------------------------------------------- one case
def run_case(kind: str, n: int, rate: float, seconds: float, workdir: Path) -> dict[str, Any]:
    import psutil

    topo = Topology(kind, n, workdir / f"{kind}-{n}")
    central = Central(topo.central_port)
    data_root = Path(tempfile.mkdtemp(prefix=f"egw-sites-{kind}-{n}-", dir="/dev/shm" if Path("/dev/shm").is_dir()
                                      else None))
    workers: list[subprocess.Popen[str]] = []
    killer: threading.Timer | None = None
    brokers = [psutil.Process(pid) for pid in topo.broker_pids()]
    last_cpu: dict[int, float] = {}
    last_rss: dict[int, float] = {}

    def sample() -> None:   # the killed node's figures are its last ones
        for p in brokers:
            try:
                t = p.cpu_times()
                last_cpu[p.pid], last_rss[p.pid] = t.user + t.system, p.memory_info().rss / 1e6
            except psutil.Error:
                pass
    edge_cpu = [psutil.Process(e.proc.pid) for e in topo.edges]
    try:
        for first in range(0, n, GW_PER_WORKER):
            count = min(GW_PER_WORKER, n - first)
            ports = ",".join(topo.urls_for(i) for i in range(first, first + count))
            workers.append(subprocess.Popen(
                [sys.executable, __file__, "--worker", "--first", str(first), "--count", str(count),
                 "--ports", ports, "--rate", str(rate), "--seconds", str(seconds), "--data", str(data_root)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}))
        for w in workers:
            line = _read_line(w, 120)
            if line.strip() != "READY":
                raise RuntimeError(f"worker did not get ready: {line!r}")
        sample()
        cpu0 = dict(last_cpu)
        if topo.rmq is not None:   # node 1 killed half way through the recording
            rmq = topo.rmq

            def kill_node_1() -> None:
                sample()
                rmq.run("kill", "1")

            killer = threading.Timer(seconds / 2, kill_node_1)
            killer.start()
        edge0 = [p.cpu_times() for p in edge_cpu]
        t0 = time.time()
        for w in workers:
            assert w.stdin is not None
            w.stdin.write("GO\n")
            w.stdin.flush()
        reports = []
        for w in workers:
            line = _read_line(w, seconds + 180)
            if not line.startswith("RESULT "):
                raise RuntimeError(f"worker failed: {line!r}")
            reports.append(json.loads(line[len("RESULT "):]))
        recorded = sum(r["recorded"] for r in reports)
        deadline = time.time() + 60
        while central.count() < recorded and time.time() < deadline:
            time.sleep(0.1)
        t_end = central.last or time.time()
        sample()
        delivered = central.count()
        lat = sorted(central.latencies_ms)
        busy = sum(last_cpu[pid] - cpu0.get(pid, 0.0) for pid in last_cpu)
        edge_busy = sum((p.cpu_times().user + p.cpu_times().system) - (c.user + c.system)
                        for p, c in zip(edge_cpu, edge0))
        elapsed = max(t_end - t0, 1e-6)
        return {
            "topology": kind, "gateways": n, "edge_brokers": len(topo.edges), "rate_per_gateway": rate,
            "seconds": seconds, "offered_events_s": round(n * rate, 1), "recorded": recorded,
            "delivered": delivered, "lost": recorded - delivered, "duplicates": central.duplicates,
            "delivered_events_s": round(delivered / elapsed, 1),
            "latency_ms": {"p50": _pct(lat, 50), "p95": _pct(lat, 95), "p99": _pct(lat, 99),
                           "max": round(lat[-1], 1) if lat else None},
            "central_broker_cpu_pct": round(100 * busy / elapsed, 1),   # all three nodes on the cluster
            "broker_rss_mb": round(sum(last_rss.values()), 1),
            "broker_nodes": len(brokers), "node_killed": topo.rmq is not None,
            "failovers": sum(r.get("failovers", 0) for r in reports),
            "edge_brokers_cpu_pct": round(100 * edge_busy / elapsed, 1),
            "worker_rss_mb": round(sum(r["rss_mb"] for r in reports), 1),
            "rss_mb_per_gateway": round(sum(r["rss_mb"] for r in reports) / n, 2),
            "outbox_left": sum(r["outbox_left"] for r in reports),
            "reconnects": sum(r["reconnects"] for r in reports),
        }
    finally:
        if topo.rmq is not None and killer is not None:
            killer.cancel()
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
        central.close()
        topo.stop()
        subprocess.run(["rm", "-rf", str(data_root)], check=False)


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        raise RuntimeError("worker timed out")
    return proc.stdout.readline()


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * p / 100))], 1)


# ---------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="10,50,200", help="gateway counts, comma separated")
    ap.add_argument("--topology", default="direct,bridge")
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SITES_SECONDS", 30)))
    ap.add_argument("--rate", type=float, default=0.0, help="events/s per gateway (default: by N)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sites.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--ports", default="", help=argparse.SUPPRESS)
    ap.add_argument("--data", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import logging

        logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
        logging.getLogger("gateway.mqtt").setLevel(logging.CRITICAL)  # paho chatter during teardown
        asyncio.run(worker_main(args))
        return 0

    results = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="egw-sites-") as tmp:
        for kind in args.topology.split(","):
            for n in (int(x) for x in args.n.split(",")):
                rate = args.rate or DEFAULT_RATES.get(n, max(1.0, 800.0 / n))
                res = run_case(kind, n, rate, args.seconds, Path(tmp))
                results.append(res)
                print(f"{kind:6} N={n:4d} offered {res['offered_events_s']:7.1f}/s  delivered "
                      f"{res['delivered_events_s']:7.1f}/s  recorded {res['recorded']:6d}  lost {res['lost']}  "
                      f"dup {res['duplicates']}  p50 {res['latency_ms']['p50']} ms  p99 {res['latency_ms']['p99']} ms  "
                      f"central broker {res['central_broker_cpu_pct']}% CPU", flush=True)
    out = {"benchmark": "sites", "host": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
           "mosquitto": _mosquitto_version(), "total_s": round(time.time() - started, 1), "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out} ({out['total_s']} s)")
    return 0 if all(r["lost"] == 0 for r in results) else 1


def _mosquitto_version() -> str:
    try:
        from conftest import Mosquitto

        out = subprocess.run([Mosquitto.binary(), "-h"], capture_output=True, text=True).stdout
        return out.splitlines()[0].strip()
    except Exception:  # noqa: BLE001 - informational only
        return "?"


if __name__ == "__main__":
    sys.exit(main())
