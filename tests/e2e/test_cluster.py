"""The gateway on a three-node RabbitMQ cluster (scripts/rabbitmq-cluster.sh, rabbitmq_mqtt, quorum sessions).

What an estate group runs: a node dies (kill -9) in the middle of a burst of alarms, a node freezes
(SIGSTOP: the TCP link stays, no PUBACK comes). Central is one persistent QoS 1 session on a node
the gateway is not on; every alarm must reach it, the panel must be ACKed throughout, and commands
(whose names RabbitMQ turns from ``cmd/events.resend`` into ``cmd/events/resend``) must be answered
after the failover. The cluster is started once for the module (≈ 30 s) and always stopped.
Skipped, with the reason, where rabbitmq-server is not installed or cannot start.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import GatewayProc, Subscriber, mqtt_pub, wait_until

from drivers.sim.alarm_panel import Dc09Panel

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "rabbitmq-cluster.sh"
TOPIC_ROOT = "estate/test-site/gw-test"
pytestmark = pytest.mark.timeout(300)


# the script's own deadline for a start or start-node (EGW_RMQ_BOOT_S): it always ends before the test's
# timeouts (start: BOOT_S + 40 s; pytest: 300 s), and says why
BOOT_S = 120


class Cluster:
    def __init__(self, base: int, workdir: str) -> None:
        self.env = {**os.environ, "EGW_RMQ_BASE": str(base), "EGW_RMQ_DIR": workdir, "EGW_RMQ_BOOT_S": str(BOOT_S)}
        self.mqtt_ports = [base + 200 + n for n in (1, 2, 3)]

    def run(self, *args: str, timeout: float = BOOT_S + 40) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def node_of(self, url: str) -> int:
        return next(n for n, port in enumerate(self.mqtt_ports, start=1) if url.endswith(f":{port}"))


def _free_base() -> int:
    for base in range(21000, 32000, 1000):   # below the ephemeral range (32768-)
        ports = [base + off + n for off in (0, 100, 200) for n in (1, 2, 3)]
        try:
            for p in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return base
    pytest.skip("no free port range for the RabbitMQ cluster")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists():
        pytest.skip("rabbitmq-server is not installed (scripts/system-deps.sh installs it)")
    if os.geteuid() != 0:
        pytest.skip("the RabbitMQ cluster runs its nodes as user rabbitmq: run the tests as root")
    workdir = tempfile.mkdtemp(prefix="egw-rmq-", dir="/tmp")
    os.chmod(workdir, 0o755)
    c = Cluster(_free_base(), workdir)
    try:
        try:
            res = c.run("start")
        except subprocess.TimeoutExpired as exc:
            pytest.skip(f"the RabbitMQ cluster did not start within {BOOT_S + 40} s: {_tail(exc.stdout, exc.stderr)}")
        except OSError as exc:
            pytest.skip(f"the RabbitMQ cluster did not start: {exc}")
        if res.returncode != 0:
            pytest.skip(f"the RabbitMQ cluster did not start: {_tail(res.stdout, res.stderr)}")
        yield c
    finally:
        try:   # stop: every node (pid file or not) and epmd; it kills what has not stopped after 30 s
            c.run("stop", timeout=120)
        except (subprocess.TimeoutExpired, OSError) as exc:
            warnings.warn(f"rabbitmq-cluster.sh stop: {exc}", stacklevel=1)
        shutil.rmtree(workdir, ignore_errors=True)


def _tail(*outputs: str | bytes | None) -> str:
    text = "\n".join(o.decode(errors="replace") if isinstance(o, bytes) else o for o in outputs if o)
    return text.strip()[-500:] or "no output"


def cluster_gateway(tmp_path: Path, cluster: Cluster, extra: str = "", gateway_id: str = "gw-test") -> GatewayProc:
    """A gateway on all three nodes; each test its own id (its sessions are not the previous test's)."""
    workdir = tmp_path / "gw"
    workdir.mkdir()
    gw = GatewayProc(workdir, cluster.mqtt_ports[0], extra, mqtt_extra="keepalive_s = 5\n")
    urls = ", ".join(f'"mqtt://127.0.0.1:{p}"' for p in cluster.mqtt_ports)
    gw.config_path.write_text(gw.config_path.read_text().replace(
        f'url = "mqtt://127.0.0.1:{cluster.mqtt_ports[0]}"', f"urls = [{urls}]").replace(
        'id = "gw-test"', f'id = "{gateway_id}"'))
    gw.topic_root = f"estate/test-site/{gateway_id}"
    return gw


def panel_site(port: int) -> str:
    return (f'[[alarm_receivers]]\nid = "duty-panel"\nprotocol = "sia-dc09"\nlisten = "127.0.0.1:{port}"\n'
            f'accounts = ["1234"]\n')


def send_alarms(port: int, zones: range, between: Any = None) -> list[str]:
    """One DC-09 panel sends a burglary alarm per zone; ``between(i)`` runs after the i-th; the answers."""
    async def go() -> list[str]:
        panel = Dc09Panel("127.0.0.1", port, timeout_s=10.0)
        answers = []
        try:
            for i, zone in enumerate(zones):
                answers.append(await panel.send("ADM-CID", f"1130 01 {zone:03d}", max_tries=20))
                if between is not None:
                    between(i)
        finally:
            await panel.close()
        return answers

    return asyncio.run(go())


def raised_ids(gw: GatewayProc) -> set[str]:
    return {e["id"] for e in gw.events_of_type("alarm.raised")}


def central_ids(central: Subscriber) -> set[str]:
    # RabbitMQ maps '.' to '/': central sees alarm.raised on {root}/event/alarm/raised
    return {p["id"] for t, p in central.snapshot() if t.endswith("/event/alarm/raised")}


def answer(central: Subscriber, cmd_id: str) -> dict[str, Any]:
    return central.wait_for(lambda t, p: t.endswith("/cmd-result") and p.get("id") == cmd_id, 30)[1]


def test_rolling_restart_of_all_three_nodes(tmp_path: Path, cluster: Cluster) -> None:
    """Each node stopped and started again in turn while alarms keep coming: nothing is lost.

    Runs first, on the fresh cluster: the next test leaves a node that was frozen and thawed, which
    the others had declared down (a partition RabbitMQ then settles with pause_minority).
    """
    panel_port = _free_port()
    gw = cluster_gateway(tmp_path, cluster, panel_site(panel_port), "gw-roll")
    central = Subscriber(cluster.mqtt_ports[2], f"{gw.topic_root}/#")
    stop = threading.Event()
    answers: list[str] = []

    def alarms() -> None:
        zone = 100
        while not stop.is_set() and zone < 400:
            answers.extend(send_alarms(panel_port, range(zone, zone + 1)))
            zone += 1
            stop.wait(0.3)

    sender = threading.Thread(target=alarms, daemon=True)
    try:
        gw.start()
        wait_until(lambda: gw.health()["uplink"]["connected"], 30, what="uplink on the cluster")
        wait_until(lambda: _listening(panel_port), 30, what="the DC-09 receiver listening")
        sender.start()
        for n in (1, 2, 3):
            assert cluster.run("stop-node", str(n)).returncode == 0
            res = cluster.run("start-node", str(n))
            assert res.returncode == 0, res.stderr
        stop.set()
        sender.join(30)
        assert answers and set(answers) == {"ACK"}, answers
        wait_until(lambda: len(raised_ids(gw)) == len(answers), 30, what="every alarm raised")
        wait_until(lambda: central_ids(central) >= raised_ids(gw), 120, what="every alarm at central")
        mqtt_pub(cluster.mqtt_ports[0], f"{gw.topic_root}/cmd/ping", {"id": "after-rolling"})
        assert answer(central, "after-rolling")["ok"] is True
    finally:
        stop.set()
        gw.stop()
        central.close()


def test_kill_9_and_sigstop_on_the_cluster(tmp_path: Path, cluster: Cluster) -> None:
    panel_port = _free_port()
    gw = cluster_gateway(tmp_path, cluster, panel_site(panel_port))
    # central: a persistent QoS 1 session on node 3; the gateway starts on node 1
    central = Subscriber(cluster.mqtt_ports[2], f"{TOPIC_ROOT}/#")
    try:
        gw.start()
        wait_until(lambda: gw.health()["uplink"]["connected"], 30, what="uplink on the cluster")
        wait_until(lambda: _listening(panel_port), 30, what="the DC-09 receiver listening")
        assert cluster.node_of(gw.health()["uplink"]["node"]) == 1

        # a dotted command name reaches the gateway through RabbitMQ (delivered as cmd/events/resend)
        mqtt_pub(cluster.mqtt_ports[1], f"{TOPIC_ROOT}/cmd/events.resend",
                 {"id": "dots-1", "args": {"after_seq": 0, "limit": 1}})
        assert answer(central, "dots-1") == {"id": "dots-1", "ok": True, "result": {"resent": 1, "last_seq": 1}}

        # kill -9 node 1 in the middle of a burst of alarms
        def kill_node_1(i: int) -> None:
            if i == 14:
                assert cluster.run("kill", "1").returncode == 0

        answers = send_alarms(panel_port, range(1, 41), kill_node_1)
        assert answers == ["ACK"] * 40, answers     # the panel is ACKed throughout
        wait_until(lambda: len(raised_ids(gw)) == 40, 30, what="40 alarms raised")
        wait_until(lambda: central_ids(central) >= raised_ids(gw), 90, what="every alarm at central")
        up = gw.health()["uplink"]
        assert up["connected"] and up["failovers"] >= 1 and cluster.node_of(up["node"]) != 1
        assert gw.log.read_text().count("mqtt: failover 1 to ") == 1

        # a command after the failover is answered
        mqtt_pub(cluster.mqtt_ports[2], f"{TOPIC_ROOT}/cmd/ping", {"id": "after-kill"})
        assert answer(central, "after-kill")["ok"] is True

        # node 1 back (the cluster keeps its majority for what follows), then freeze the node in use
        assert cluster.run("start-node", "1").returncode == 0
        on = cluster.node_of(gw.health()["uplink"]["node"])
        failovers = gw.health()["uplink"]["failovers"]

        mark = [0]

        def freeze(i: int) -> None:
            if i == 2:
                # a command just before the freeze: its packets reset paho's keepalive clock, so paho's own ping
                # timeout (2 x 5 s away) mostly leaves the move to the watchdog (5-6 s after the first unacked
                # publish); an idle gateway may have a PINGREQ in flight as the node freezes.
                mqtt_pub(cluster.mqtt_ports[2], f"{TOPIC_ROOT}/cmd/ping", {"id": "before-freeze"})
                assert answer(central, "before-freeze")["ok"] is True
                mark[0] = len(gw.log.read_text())
                assert cluster.run("freeze", str(on)).returncode == 0

        try:
            answers = send_alarms(panel_port, range(41, 61), freeze)
            assert answers == ["ACK"] * 20, answers
            wait_until(lambda: gw.health()["uplink"]["failovers"] > failovers and
                       gw.health()["uplink"]["connected"], 90, what="the move off the frozen node")
            # what the log says after the freeze (the kill -9 above already logged "connection ... lost")
            after = gw.log.read_text()[mark[0]:]
            # why the link was given up: the watchdog (PUBACKs outstanding for the keepalive), or paho's own
            # keepalive when a PINGREQ was already on its way as the node froze (seen twice in CI on a loaded
            # machine, with the round trip above). Either is a move off a frozen node that says why; the watchdog
            # itself is held to in test_cluster_failover.py, where a burst leaves no room for a ping.
            assert ("stopped acknowledging" in after or
                    after.count("lost (Keep alive timeout)") == 1), after[-3000:]
            assert after.count(f"mqtt: failover {failovers + 1} to ") == 1, after[-3000:]
            new = cluster.node_of(gw.health()["uplink"]["node"])
            assert new != on
            wait_until(lambda: gw.health()["outbox"]["depth"] == 0, 90, what="the outbox drained")
            mqtt_pub(cluster.mqtt_ports[new - 1], f"{TOPIC_ROOT}/cmd/ping", {"id": "after-freeze"})
        finally:
            cluster.run("thaw", str(on))
        answer(central, "after-freeze")
        wait_until(lambda: central_ids(central) >= raised_ids(gw), 120, what="every alarm at central after the freeze")
    finally:
        gw.stop()
        central.close()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

