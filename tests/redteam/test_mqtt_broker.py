"""Red team, the shipped broker config: it keeps what it acknowledged, and a 100k-card snapshot gets through.

Before: ``config/mosquitto/mosquitto.conf`` saved its database every 60 s, so a kill -9 of the broker lost
every event already PUBACKed to a gateway and queued for an offline central (503 of 503); and its
``max_packet_size 262144`` dropped any ``cards.snapshot`` over 256 KB (100,000 cards are 12-17 MB).
Here the SHIPPED file runs (its /etc paths, ports and persistence folder rewritten to temp ones, its
password file and ACL in force), with the daemon as a real subprocess.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from conftest import DOOR_SITE, ROOT, GatewayProc, Mosquitto, free_port, mosquitto_user_line, wait_until
from paho.mqtt.enums import CallbackAPIVersion

from drivers.cards import wiegand_encode

pytestmark = pytest.mark.timeout(300)

USERS = {"gw-test": "pw-test", "central": "pw-central"}
ROOT_TOPIC = "estate/test-site/gw-test"


class ShippedBroker:
    """config/mosquitto/mosquitto.conf as shipped, but for paths and ports; kill() is a kill -9."""

    def __init__(self, workdir: Path) -> None:
        from pki import make_pki

        workdir.mkdir()
        pki = make_pki(workdir / "pki")
        pwfile = workdir / "estate.passwd"
        pwfile.touch()
        for user, password in USERS.items():
            subprocess.run(["mosquitto_passwd", "-b", str(pwfile), user, password], check=True, capture_output=True)
        self.port = free_port()
        text = (ROOT / "config" / "mosquitto" / "mosquitto.conf").read_text()
        for old, new in {"/etc/mosquitto/estate.passwd": str(pwfile),
                         "/etc/mosquitto/estate.acl": str(ROOT / "config" / "mosquitto" / "acl"),
                         "/etc/mosquitto/certs/ca.pem": str(pki.ca), "/etc/mosquitto/certs/broker.pem": str(pki.server_cert),
                         "/etc/mosquitto/certs/broker.key": str(pki.server_key), "/var/lib/mosquitto/": f"{workdir}/",
                         "listener 8883": f"listener {free_port()} 127.0.0.1",
                         "listener 1883 127.0.0.1": f"listener {self.port} 127.0.0.1"}.items():
            assert old in text, old
            text = text.replace(old, new)
        self.conf = workdir / "estate.conf"
        self.conf.write_text(mosquitto_user_line() + text)
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ShippedBroker:
        self.proc = subprocess.Popen([Mosquitto.binary(), "-c", str(self.conf)], stdout=open(self.log, "ab"),
                                     stderr=subprocess.STDOUT)
        wait_until(lambda: Mosquitto(self.conf.parent, self.port)._listening(), 15, what="the shipped broker")
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Central:
    """The office system: user ``central``, a persistent session (clean_session false), QoS 1."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="central-test", clean_session=False)
        self.client.username_pw_set("central", USERS["central"])
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(15), "central could not subscribe"

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.messages.append((msg.topic, json.loads(msg.payload)))

    def payloads(self) -> list[Any]:
        with self.lock:
            return [p for _t, p in self.messages]

    def publish(self, topic: str, body: bytes) -> None:
        self.client.publish(topic, body, qos=1).wait_for_publish(60)

    def close(self) -> None:
        self.client.disconnect()  # first: loop_stop() alone waits out paho's 1 s select
        self.client.loop_stop()


@pytest.fixture
def shipped(tmp_path: Path) -> Any:
    broker = ShippedBroker(tmp_path / "broker").start()
    yield broker
    broker.stop()


def gateway(tmp_path: Path, broker: ShippedBroker, extra: str = "") -> GatewayProc:
    (tmp_path / "gw").mkdir()
    pw = tmp_path / "gw" / "mqtt.pw"
    pw.write_text(USERS["gw-test"])
    pw.chmod(0o600)
    return GatewayProc(tmp_path / "gw", broker.port, extra,
                       mqtt_extra=f'username = "gw-test"\npassword_file = "{pw}"\n').start()


def test_a_broker_killed_with_9_keeps_every_event_it_acknowledged(tmp_path: Path, shipped: ShippedBroker) -> None:
    central = Central(shipped.port, f"{ROOT_TOPIC}/event/gateway.test")
    central.close()                                # offline: its persistent session queues for it
    gw = gateway(tmp_path, shipped)
    try:
        wait_until(lambda: gw.health()["uplink"]["connected"], 30, what="uplink to the shipped broker")
        n = 500
        assert gw.post("/api/v1/test-events", json={"count": n}).status_code == 202
        # every event PUBACKed by the broker: the gateway's outbox holds none of them any more
        wait_until(lambda: len(gw.events_of_type("gateway.test")) == n and gw.health()["outbox"]["depth"] == 0, 60,
                   what="all events acknowledged")
    finally:
        gw.stop()
    shipped.kill()
    shipped.start()
    back = Central(shipped.port, f"{ROOT_TOPIC}/event/gateway.test")
    try:
        wait_until(lambda: len({p["id"] for p in back.payloads()}) >= n, 60, what=f"{n} events after kill -9")
    finally:
        back.close()
    assert len({p["id"] for p in back.payloads()}) == n


def test_a_100k_card_snapshot_reaches_the_gateway_through_the_shipped_config(tmp_path: Path,
                                                                            shipped: ShippedBroker) -> None:
    gw = gateway(tmp_path, shipped, DOOR_SITE)
    central = Central(shipped.port, f"{ROOT_TOPIC}/cmd-result")
    try:
        wait_until(lambda: gw.health()["uplink"]["connected"], 30, what="uplink to the shipped broker")
        # the cards of tests/access/test_sync.py's 100k snapshot, as central sends them
        cards = [{"card": wiegand_encode("H10304", 2, i), "unit": f"3-{i % 9 + 1}-{i % 1000:04d}",
                  "holder": f"Holder {i}", "holder_kind": "resident", "doors": ["building:3"],
                  "valid_until": "2030-12-31"} for i in range(100_000)]
        body = json.dumps({"id": "snap-100k", "args": {"rev": 1, "cards": cards}}).encode()
        assert len(body) > 10 * 1024 * 1024     # far over the old 256 KB packet limit
        central.publish(f"{ROOT_TOPIC}/cmd/cards.snapshot", body)
        wait_until(lambda: any(p.get("id") == "snap-100k" for p in central.payloads()), 240,
                   what="the snapshot's cmd-result")
        result = next(p for p in central.payloads() if p.get("id") == "snap-100k")
        assert result["ok"] is True, result
        assert result["result"]["applied_rev"] == 1 and result["result"]["count"] == 100_000
        for card in (cards[0]["card"], cards[-1]["card"]):   # applied: the first and the last are in the register
            assert gw.get(f"/api/v1/cards/{card}", role="technician").status_code == 200
    finally:
        central.close()
        gw.stop()
