"""Failover across the nodes of ``[mqtt] urls``, against three real mosquittos.

Separate mosquittos share no sessions, so "central" here is a persistent subscriber on every
node: what matters is that every event reaches *some* node, each node's stream is in seq order
(no reordering), and the link moves on when its node is killed (-9) or frozen (SIGSTOP, no
PUBACKs): the RabbitMQ cluster tests (test_cluster.py) check the shared-session side.
"""

from __future__ import annotations

import os
import re
import signal
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import GatewayProc, Mosquitto, Subscriber, wait_until

from examples.central_consumer import Central

pytestmark = pytest.mark.timeout(180)

ROOT = "estate/test-site/gw-test"


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[list[Mosquitto]]:
    nodes: list[Mosquitto] = []
    try:
        for i in range(3):
            d = tmp_path / f"node{i}"
            d.mkdir()
            nodes.append(Mosquitto(d).start())
        yield nodes
    finally:
        for b in nodes:
            if b.proc is not None and b.proc.poll() is None:
                os.kill(b.proc.pid, signal.SIGCONT)
            b.stop()


def cluster_gateway(tmp_path: Path, brokers: list[Mosquitto]) -> GatewayProc:
    workdir = tmp_path / "gw"
    workdir.mkdir()
    gw = GatewayProc(workdir, brokers[0].port, mqtt_extra="keepalive_s = 5\n")
    urls = ", ".join(f'"mqtt://127.0.0.1:{b.port}"' for b in brokers)
    text = gw.config_path.read_text().replace(f'url = "mqtt://127.0.0.1:{brokers[0].port}"', f"urls = [{urls}]")
    gw.config_path.write_text(text)
    return gw


def numbers(subs: list[Subscriber]) -> dict[int, list[int]]:
    """Per node: the ``n`` of each gateway.test event in the order that node delivered them."""
    return {i: [p["data"]["n"] for t, p in s.snapshot() if t.endswith("/event/gateway.test")]
            for i, s in enumerate(subs)}


def seqs(subs: list[Subscriber]) -> dict[int, list[int]]:
    return {i: [p["seq"] for t, p in s.snapshot() if "/event/" in t] for i, s in enumerate(subs)}


def local_events(gw: GatewayProc) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = 0
    for _ in range(100):
        page = gw.get(f"/api/v1/events?after={after}&limit=1000", role="operator").json()
        if not page["items"]:
            break
        out += page["items"]
        after = page["items"][-1]["seq"]
    return out


def central_numbers(central: Central) -> set[int]:
    with central.lock:
        return {e["data"]["n"] for e in central.events.values() if e["type"] == "gateway.test"}


def burst(gw: GatewayProc, count: int) -> None:
    r = gw.post("/api/v1/test-events", json={"count": count})
    assert r.status_code == 202, r.text


def test_kill_9_and_sigstop_of_the_node_in_use(tmp_path: Path, brokers: list[Mosquitto]) -> None:
    subs = [Subscriber(b.port, f"{ROOT}/#") for b in brokers]
    # examples/central_consumer.py: dedupes by id, finds seq gaps, recovers them with events.resend
    central = Central([f"mqtt://127.0.0.1:{b.port}" for b in brokers])
    gw = cluster_gateway(tmp_path, brokers)
    try:
        gw.start()
        wait_until(lambda: gw.health()["uplink"]["connected"], 20, what="uplink")
        assert gw.health()["uplink"]["node"] == f"mqtt://127.0.0.1:{brokers[0].port}"
        assert gw.health()["uplink"]["failovers"] == 0

        # kill -9 the node in use in the middle of a burst: every event still reaches central
        burst(gw, 3000)
        wait_until(lambda: len(numbers(subs)[0]) >= 200, 30, what="the burst under way on node 0")
        assert brokers[0].proc is not None
        brokers[0].proc.kill()
        brokers[0].proc.wait()
        # a node that acknowledged events and died before passing them on loses them (separate mosquittos
        # share nothing): central sees the gap in seq and asks for it again (docs/scale-out.md)
        wait_until(lambda: gw.health()["uplink"]["connected"] and gw.health()["outbox"]["depth"] == 0, 90,
                   what="the outbox drained after the failover")
        for node, got in seqs(subs).items():
            assert got == sorted(got), f"node {node} saw events out of seq order"
        up = gw.health()["uplink"]
        assert up["connected"] and up["failovers"] == 1 and up["node"] != f"mqtt://127.0.0.1:{brokers[0].port}"
        log = gw.log.read_text()
        assert log.count("mqtt: failover 1 to ") == 1, log[-3000:]

        # a command after the failover is answered, on the node the gateway is on now: events.resend
        # (sent as cmd/events/resend, the way RabbitMQ delivers it) fills central's gaps
        now_on = next(i for i, b in enumerate(brokers) if up["node"].endswith(f":{b.port}"))
        last = local_events(gw)[-1]["seq"]
        central.recover(f"mqtt://127.0.0.1:{brokers[now_on].port}", ROOT, last)
        wait_until(lambda: central.gaps(ROOT, last) == [], 30, what="the gaps filled")
        # completeness on central's own view: the plain subscribers may all have missed what node 0
        # delivered only to central just before the kill (no gap for central, nothing resent)
        assert central_numbers(central) >= set(range(1, 3001))

        # a resend of more than one page (1,000 events a page): every event again, historical, same ids
        mark = len(subs[now_on].snapshot())
        answer = central.command(f"mqtt://127.0.0.1:{brokers[now_on].port}", ROOT, "events.resend",
                                 {"after_seq": 0, "limit": 1500})
        assert answer["ok"] and answer["result"]["resent"] == 1500, answer
        first = {e["seq"]: e["id"] for e in local_events(gw)[:1500]}

        def resent_again() -> dict[int, str]:
            # every copy of seq <= 1500 after the command is a resent one: historical, with its first id
            again = [p for t, p in subs[now_on].snapshot()[mark:] if "/event/" in t and p["seq"] <= 1500]
            assert all(p["historical"] is True for p in again), [p for p in again if not p["historical"]][:3]
            return {p["seq"]: p["id"] for p in again}

        wait_until(lambda: resent_again() == first, 60, what="1,500 events resent in two pages")

        # freeze that node (SIGSTOP: the TCP link stays, no PUBACK comes): the gateway moves on
        frozen = brokers[now_on]
        assert frozen.proc is not None
        before = len(numbers(subs)[now_on])
        burst(gw, 3000)
        wait_until(lambda: len(numbers(subs)[now_on]) > before + 100, 30, what="the second burst under way")
        os.kill(frozen.proc.pid, signal.SIGSTOP)
        # more events after the freeze: the uplink now sends 3,000 in a fraction of a second, and a burst
        # already acknowledged in full leaves nothing outstanding, so paho's keepalive (not the watchdog) would
        # find the dead link; these stay unacknowledged, which is what the watchdog is for
        burst(gw, 200)
        wait_until(lambda: gw.health()["uplink"]["failovers"] == 2 and gw.health()["uplink"]["connected"], 60,
                   what="the move off the frozen node")
        assert "stopped acknowledging" in gw.log.read_text()
        wait_until(lambda: gw.health()["outbox"]["depth"] == 0, 60, what="the outbox drained on the third node")
        os.kill(frozen.proc.pid, signal.SIGCONT)
        # the thawed node passes on what it had acknowledged; central asks for any gap still left
        wanted = {e["id"] for e in local_events(gw)}
        third = gw.health()["uplink"]["node"]
        wait_until(lambda: central.recover(third, ROOT, max(e["seq"] for e in local_events(gw))) >= 0 and
                   wanted <= set(central.events), 60, what="every event at central after the freeze")
        assert central.gaps(ROOT) == []
    finally:
        gw.stop()
        for s in subs:
            s.close()
        central.close()


def test_check_config_refuses_url_and_urls_together_or_neither(tmp_path: Path) -> None:
    import subprocess

    from conftest import BIN, config_text, free_port

    base = config_text(tmp_path / "var", 1883, free_port())
    for text, words in [
        (base.replace('url = "mqtt://127.0.0.1:1883"', 'url = "mqtt://127.0.0.1:1883"\nurls = ["mqtt://n2:1883"]'),
         "not both"),
        (base.replace('url = "mqtt://127.0.0.1:1883"', 'keepalive_s = 30'), "one broker"),
        (base.replace('url = "mqtt://127.0.0.1:1883"', 'urls = ["mqtt://n1:1883", "mqtts://n2:8883"]'),
         "mixes mqtt:// and mqtts://"),
        (base.replace('url = "mqtt://127.0.0.1:1883"', 'urls = ["http://n1"]'), "mqtts://host:port"),
    ]:
        path = tmp_path / "gw.toml"
        path.write_text(text)
        res = subprocess.run([str(BIN), "check-config", "-c", str(path)], capture_output=True, text=True)
        assert res.returncode == 2 and words in res.stderr, res.stderr
    path.write_text(base.replace('url = "mqtt://127.0.0.1:1883"', 'urls = ["mqtt://n1:1883", "mqtt://n2:1883"]'))
    res = subprocess.run([str(BIN), "check-config", "-c", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_central_looks_for_gaps_from_the_first_seq_it_saw_of_each_gateway() -> None:
    central = Central([])   # no broker: only its bookkeeping
    central.seqs = {"estate/s/late": {500, 501, 504}, "estate/s/early": {1, 3}}
    assert central.gaps("estate/s/late") == [(501, 2)]          # not 1..499: it started after them
    assert central.gaps("estate/s/late", 506) == [(501, 2), (504, 2)]
    assert central.gaps("estate/s/early") == [(1, 1)]
    assert central.gaps("estate/s/unknown") == []


def test_failover_between_two_tls_nodes(tmp_path: Path) -> None:
    """``urls`` of mqtts:// nodes: the next node gets the same TLS settings (CA, server name check)."""
    import json

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from pki import make_pki

    pki = make_pki(tmp_path / "pki")
    tls = (f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\ntls_version tlsv1.2\n"
           f"require_certificate false\n")
    nodes: list[Mosquitto] = []
    got: list[dict[str, Any]] = []
    gw: GatewayProc | None = None
    central = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="central-tls", clean_session=False)
    try:
        for i in range(2):
            (tmp_path / f"tls{i}").mkdir()
            nodes.append(Mosquitto(tmp_path / f"tls{i}", extra_conf=tls).start())
        central.tls_set(ca_certs=str(pki.ca))
        subscribed = threading.Event()
        central.on_connect = lambda cl, u, f, rc, p: cl.subscribe(f"{ROOT}/event/#", qos=1)
        central.on_subscribe = lambda *a: subscribed.set()
        central.on_message = lambda cl, u, m: got.append(json.loads(m.payload))
        central.connect_async("127.0.0.1", nodes[1].port)
        central.loop_start()
        assert subscribed.wait(10), "TLS central could not subscribe on node 2"

        workdir = tmp_path / "gw"
        workdir.mkdir()
        gw = GatewayProc(workdir, nodes[0].port, mqtt_extra=f'keepalive_s = 5\nca_file = "{pki.ca}"\n')
        urls = ", ".join(f'"mqtts://127.0.0.1:{b.port}"' for b in nodes)
        gw.config_path.write_text(gw.config_path.read_text().replace(
            f'url = "mqtt://127.0.0.1:{nodes[0].port}"', f"urls = [{urls}]"))
        gw.start()
        wait_until(lambda: gw.health()["uplink"]["connected"], 20, what="uplink over TLS on node 1")
        assert gw.health()["uplink"]["node"] == f"mqtts://127.0.0.1:{nodes[0].port}"
        assert nodes[0].proc is not None
        nodes[0].proc.kill()
        nodes[0].proc.wait()
        wait_until(lambda: gw.health()["uplink"]["connected"] and gw.health()["uplink"]["failovers"] == 1, 30,
                   what="the failover to the second TLS node")
        up = gw.health()["uplink"]
        assert up["node"] == f"mqtts://127.0.0.1:{nodes[1].port}" and up["last_error"] == "", up
        burst(gw, 50)
        wait_until(lambda: {e["data"]["n"] for e in list(got) if e["type"] == "gateway.test"} >= set(range(1, 51)),
                   30, what="50 events over TLS on the second node")
    finally:
        if gw is not None:
            gw.stop()
        central.disconnect()  # first: loop_stop() alone waits out paho's 1 s select
        central.loop_stop()
        for b in nodes:
            b.stop()


class NoPingBroker(socketserver.ThreadingTCPServer):
    """A node that accepts, acknowledges publishes and subscriptions, and never answers a PINGREQ.

    What paho's own keepalive catches (the watchdog does not: nothing stays unacknowledged). paho 2.2 reports
    that timeout twice; the gateway must act on it once: one "lost" line, and on to the *next* node.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), NoPingHandler)
        self.port = self.server_address[1]
        self.pings = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class NoPingHandler(socketserver.StreamRequestHandler):
    server: NoPingBroker

    def handle(self) -> None:
        f, conn = self.rfile, self.request
        while head := f.read(1):
            size, shift = 0, 0
            while True:
                byte = f.read(1)[0]
                size |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            body = f.read(size)
            kind = head[0] >> 4
            if kind == 1:                        # CONNECT -> CONNACK
                conn.sendall(b"\x20\x02\x00\x00")
            elif kind == 3 and head[0] & 0x06:   # PUBLISH, QoS 1 -> PUBACK
                pid = body[2 + int.from_bytes(body[:2], "big"):][:2]
                conn.sendall(b"\x40\x02" + pid)
            elif kind == 8:                      # SUBSCRIBE -> SUBACK (one filter, QoS 1)
                conn.sendall(b"\x90\x03" + body[:2] + b"\x01")
            elif kind == 12:                     # PINGREQ: never answered
                self.server.pings += 1
            elif kind == 14:
                return


def test_a_keepalive_timeout_moves_on_to_the_next_node_once(tmp_path: Path, brokers: list[Mosquitto]) -> None:
    silent = NoPingBroker()
    gw = cluster_gateway(tmp_path, brokers)
    urls = ", ".join(f'"mqtt://127.0.0.1:{p}"' for p in (silent.port, brokers[0].port, brokers[1].port))
    gw.config_path.write_text(re.sub(r"urls = \[.*\]", f"urls = [{urls}]", gw.config_path.read_text()))
    try:
        gw.start()
        wait_until(lambda: gw.health()["uplink"]["connected"], 20, what="uplink on the node that never pongs")
        assert gw.health()["uplink"]["node"] == f"mqtt://127.0.0.1:{silent.port}"
        # keepalive 5 s: a PINGREQ after 5 idle seconds, the link given up 5 s later
        wait_until(lambda: gw.health()["uplink"]["failovers"] == 1 and gw.health()["uplink"]["connected"], 30,
                   what="the move off the node that never answers a ping")
        assert silent.pings >= 1
        assert gw.health()["uplink"]["node"] == f"mqtt://127.0.0.1:{brokers[0].port}"   # the next, not the one after
        log = gw.log.read_text()
        assert log.count(f"mqtt: connection to mqtt://127.0.0.1:{silent.port} lost (Keep alive timeout)") == 1, log
        assert "closed before the broker accepted it" not in log, log
        assert log.count("mqtt: failover 1 to ") == 1, log
    finally:
        gw.stop()
        silent.close()
