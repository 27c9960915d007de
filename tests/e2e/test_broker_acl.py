"""The shipped broker ACL (config/mosquitto/acl) keeps each gateway inside its own {root}.

A real mosquitto runs with that very file, a password file and no anonymous access.
The real daemon ("gw-test") works under it end to end; with gw-test's credentials a
client cannot command another gateway, read its events or fake its status.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import ROOT, GatewayProc, Mosquitto, mosquitto_user_line, wait_until

pytestmark = pytest.mark.timeout(120)

ACL = ROOT / "config" / "mosquitto" / "acl"
USERS = {"gw-test": "pw-test", "gw-other": "pw-other", "central": "pw-central"}
OTHER = "estate/test-site/gw-other"
MINE = "estate/test-site/gw-test"


class Client:
    """An MQTT v5 client (v5 PUBACKs carry 'not authorized') recording what it receives."""

    def __init__(self, port: int, user: str, subscribe: list[str] = ()) -> None:  # type: ignore[assignment]
        self.messages: list[tuple[str, Any]] = []
        self.pubacks: dict[int, Any] = {}
        self.granted: list[Any] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        c = self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-{time.monotonic_ns()}",
                                      protocol=mqtt.MQTTv5)
        c.username_pw_set(user, USERS[user])
        topics = list(subscribe)

        def on_connect(cl: Any, u: Any, f: Any, rc: Any, p: Any) -> None:
            if topics:
                cl.subscribe([(t, 1) for t in topics])
            else:
                self._ready.set()

        def on_subscribe(cl: Any, u: Any, mid: int, codes: Any, p: Any) -> None:
            self.granted = list(codes)
            self._ready.set()

        c.on_connect = on_connect
        c.on_subscribe = on_subscribe
        c.on_message = self._on_message
        c.on_publish = lambda cl, u, mid, rc, p: self.pubacks.__setitem__(mid, rc)
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert self._ready.wait(10), f"{user} could not connect/subscribe"

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, json.loads(msg.payload)))

    def topics(self) -> list[str]:
        with self._lock:
            return [t for t, _ in self.messages]

    def publish(self, topic: str, payload: dict[str, Any], retain: bool = False) -> bool:
        """True if the broker took it; False if it refused (v5 PUBACK 'not authorized' or,
        as mosquitto 2.0 also does, by dropping the connection)."""
        info = self.client.publish(topic, json.dumps(payload), qos=1, retain=retain)
        wait_until(lambda: info.mid in self.pubacks or not self.client.is_connected(), 10, what="PUBACK")
        rc = self.pubacks.get(info.mid)
        return rc is not None and not rc.is_failure

    def close(self) -> None:
        self.client.disconnect()  # first: loop_stop() alone waits out paho's 1 s select
        self.client.loop_stop()


@pytest.fixture
def acl_broker(tmp_path: Path) -> Any:
    pwfile = tmp_path / "estate.passwd"
    pwfile.touch()
    for user, password in USERS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(pwfile), user, password], check=True, capture_output=True)
    broker = Mosquitto(tmp_path, extra_conf=f"per_listener_settings false\nallow_anonymous false\n"
                                            f"password_file {pwfile}\nacl_file {ACL}\n").start()
    yield broker
    broker.stop()


@pytest.fixture
def clients() -> Any:
    made: list[Client] = []

    def make(port: int, user: str, subscribe: list[str] = ()) -> Client:  # type: ignore[assignment]
        c = Client(port, user, subscribe)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_gateway_works_under_the_acl(acl_broker: Mosquitto, clients: Any, tmp_path: Path) -> None:
    central = clients(acl_broker.port, "central", ["estate/#"])
    (tmp_path / "gw").mkdir()
    (tmp_path / "gw" / "mqtt.password").write_text(USERS["gw-test"])
    gw = GatewayProc(tmp_path / "gw", acl_broker.port,
                     mqtt_extra='username = "gw-test"\npassword_file = "mqtt.password"\n')
    try:
        gw.start()
        wait_until(lambda: gw.health()["uplink"]["connected"], 20, what="gateway connected under the ACL")
        assert gw.post("/api/v1/test-events", json={"count": 5}).status_code == 202
        wait_until(lambda: sum(t == f"{MINE}/event/gateway.test" for t in central.topics()) >= 5, 20,
                   what="events at central")
        assert f"{MINE}/status" in central.topics()
        # central may command the gateway, and the gateway may answer
        central.publish(f"{MINE}/cmd/ping", {"id": "acl-ping-1", "args": {}})
        wait_until(lambda: any(t == f"{MINE}/cmd-result" and p.get("id") == "acl-ping-1" and p.get("ok")
                               for t, p in list(central.messages)), 20, what="ping result at central")
    finally:
        gw.stop()


def test_gateway_credentials_cannot_command_another_gateway(acl_broker: Mosquitto, clients: Any) -> None:
    central = clients(acl_broker.port, "central", [f"{OTHER}/cmd/#", f"{MINE}/event/#"])
    port = acl_broker.port
    assert not clients(port, "gw-test").publish(f"{OTHER}/cmd/valve", {"id": "evil-1", "args": {"meter": "hw-1",
                                                                                              "action": "close"}})
    assert not clients(port, "gw-test").publish(f"{OTHER}/cmd/door.unlock", {"id": "evil-2", "args": {"door": "d1"}})
    # nor a command to itself (only central sends commands)
    assert not clients(port, "gw-test").publish(f"{MINE}/cmd/door.unlock", {"id": "evil-3", "args": {}})
    # control: its own events go through, so the broker did deliver what was allowed
    assert clients(port, "gw-test").publish(f"{MINE}/event/gateway.test", {"n": 1})
    wait_until(lambda: f"{MINE}/event/gateway.test" in central.topics(), 10, what="the allowed event")
    time.sleep(0.5)
    assert not [t for t in central.topics() if "/cmd/" in t], central.messages


def test_gateway_credentials_cannot_read_another_gateways_events(acl_broker: Mosquitto, clients: Any) -> None:
    snoop = clients(acl_broker.port, "gw-test", [f"{OTHER}/event/#", "estate/#", f"{OTHER}/cmd/#"])
    central = clients(acl_broker.port, "central", [f"{OTHER}/#"])
    other = clients(acl_broker.port, "gw-other", [f"{OTHER}/cmd/#"])
    for i in range(5):
        assert other.publish(f"{OTHER}/event/access.granted", {"n": i})
    central.publish(f"{OTHER}/cmd/ping", {"id": "c-1", "args": {}})
    wait_until(lambda: sum("/event/" in t for t in central.topics()) >= 5, 10, what="events at central")
    wait_until(lambda: other.topics(), 10, what="the command at its own gateway")
    time.sleep(0.5)
    assert snoop.topics() == [], snoop.messages


def test_gateway_credentials_cannot_fake_another_gateways_status(acl_broker: Mosquitto, clients: Any) -> None:
    assert not clients(acl_broker.port, "gw-test").publish(f"{OTHER}/status", {"state": "offline"}, retain=True)
    assert not clients(acl_broker.port, "gw-test").publish(f"{OTHER}/cmd-result", {"id": "x", "ok": True})
    # a late subscriber sees no retained status for gw-other
    central = clients(acl_broker.port, "central", [f"{OTHER}/status"])
    time.sleep(0.5)
    assert central.topics() == []


def test_shipped_mosquitto_conf_runs_with_tls_passwords_and_acl(tmp_path: Path) -> None:
    """config/mosquitto/mosquitto.conf with its /etc paths pointed at temp files: it starts,
    refuses anonymous clients and lets a gateway in over TLS with its password."""
    from conftest import free_port
    from pki import make_pki

    pki = make_pki(tmp_path / "pki")
    pwfile = tmp_path / "estate.passwd"
    pwfile.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(pwfile), "gw-test", USERS["gw-test"]], check=True,
                   capture_output=True)
    tls_port, local_port = free_port(), free_port()
    text = (ROOT / "config" / "mosquitto" / "mosquitto.conf").read_text()
    for old, new in {"/etc/mosquitto/estate.passwd": str(pwfile), "/etc/mosquitto/estate.acl": str(ACL),
                     "/etc/mosquitto/certs/ca.pem": str(pki.ca), "/etc/mosquitto/certs/broker.pem": str(pki.server_cert),
                     "/etc/mosquitto/certs/broker.key": str(pki.server_key), "/var/lib/mosquitto/": f"{tmp_path}/",
                     "listener 8883": f"listener {tls_port} 127.0.0.1",
                     "listener 1883 127.0.0.1": f"listener {local_port} 127.0.0.1"}.items():
        assert old in text, old
        text = text.replace(old, new)
    conf = tmp_path / "estate.conf"
    conf.write_text(mosquitto_user_line() + text)
    proc = subprocess.Popen([Mosquitto.binary(), "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: Mosquitto(tmp_path, tls_port)._listening() or proc.poll() is not None, 10, what="broker")
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""

        def connect(user: str | None, password: str | None) -> Any:
            results: list[Any] = []
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{time.monotonic_ns()}")
            c.tls_set(ca_certs=str(pki.ca))
            if user:
                c.username_pw_set(user, password)
            c.on_connect = lambda cl, u, f, rc, p: results.append(rc)
            c.connect("127.0.0.1", tls_port)
            c.loop_start()
            try:
                wait_until(lambda: results, 10, what="CONNACK")
            finally:
                c.disconnect()  # first: loop_stop() alone waits out paho's 1 s select
                c.loop_stop()
            return results[0]

        assert not connect("gw-test", USERS["gw-test"]).is_failure
        assert connect(None, None).is_failure
        assert connect("gw-test", "not-the-password").is_failure
    finally:
        proc.terminate()
        proc.wait(10)
