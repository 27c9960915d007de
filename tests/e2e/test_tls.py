"""MQTT over TLS and broker authentication, with a real mosquitto and the real daemon.

A throw-away PKI is generated with ``cryptography``: a CA, a server certificate for
127.0.0.1/localhost, a client certificate (mutual TLS) and an unrelated "wrong" CA.
The gateway must deliver over TLS, over mutual TLS and with username + password_file;
with the wrong CA it must not connect and ``/health`` must say why.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import GatewayProc, Mosquitto, wait_until
from pki import Pki, make_pki

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_broker(workdir: Path, pki: Pki, *, require_certificate: bool = False) -> Mosquitto:
    conf = (f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
            f"tls_version tlsv1.2\nrequire_certificate {'true' if require_certificate else 'false'}\n")
    return Mosquitto(workdir, extra_conf=conf).start()


# ---------------------------------------------------------------------- helpers


def gateway(workdir: Path, port: int, *, tls: bool, mqtt_extra: str = "") -> GatewayProc:
    """The real daemon pointed at ``port``; mqtts:// when ``tls``."""
    workdir.mkdir(parents=True, exist_ok=True)
    gw = GatewayProc(workdir, port, mqtt_extra=mqtt_extra)
    if tls:
        text = gw.config_path.read_text()
        gw.config_path.write_text(text.replace(f'url = "mqtt://127.0.0.1:{port}"', f'url = "mqtts://127.0.0.1:{port}"', 1))
    return gw


def tls_subscriber(port: int, pki: Pki | None, topic: str, *, username: str = "", password: str = "") -> Any:
    """A 'central' subscriber, over TLS with a client cert when ``pki`` (works on the mutual-TLS broker)."""
    import json
    import threading
    import time

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    class Sub:
        def __init__(self) -> None:
            self.messages: list[tuple[str, Any]] = []
            self.ready = threading.Event()
            c = self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"central-{time.monotonic_ns()}")
            if pki is not None:
                c.tls_set(ca_certs=str(pki.ca), certfile=str(pki.client_cert), keyfile=str(pki.client_key))
            if username:
                c.username_pw_set(username, password)
            c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(topic, qos=1)
            c.on_subscribe = lambda *a: self.ready.set()
            c.on_message = lambda cl, u, m: self.messages.append((m.topic, json.loads(m.payload)))
            c.connect_async("127.0.0.1", port)
            c.loop_start()
            assert self.ready.wait(10), "TLS subscriber could not subscribe"

        def close(self) -> None:
            self.client.disconnect()  # first: loop_stop() alone waits out paho's 1 s select
            self.client.loop_stop()

    return Sub()


def deliver_test_events(gw: GatewayProc, sub: Any, n: int = 20) -> None:
    r = gw.post("/api/v1/test-events", json={"count": n})
    assert r.status_code == 202, r.text
    wait_until(lambda: len({p["data"]["n"] for t, p in list(sub.messages) if t.endswith("/event/gateway.test")}) >= n,
               30, what=f"{n} test events over TLS")


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        try:
            thing.stop() if hasattr(thing, "stop") else thing.close()
        except Exception:  # noqa: BLE001 - cleanup must go on
            pass


# ---------------------------------------------------------------------- tests
def test_tls_with_ca_file_delivers_events(tmp_path: Path, pki: Pki, cleanup: list[Any]) -> None:
    broker = tls_broker(tmp_path, pki)
    cleanup.append(broker)
    gw = gateway(tmp_path / "gw", broker.port, tls=True, mqtt_extra=f'ca_file = "{pki.ca}"\n')
    cleanup.append(gw)
    sub = tls_subscriber(broker.port, pki, f"{gw.topic_root}/#")
    cleanup.append(sub)
    gw.start()
    wait_until(lambda: gw.health()["uplink"]["connected"], 20, what="uplink connected over TLS")
    deliver_test_events(gw, sub)
    assert gw.health()["uplink"]["last_error"] == ""


def test_mutual_tls_with_client_certificate(tmp_path: Path, pki: Pki, cleanup: list[Any]) -> None:
    broker = tls_broker(tmp_path, pki, require_certificate=True)
    cleanup.append(broker)
    sub = tls_subscriber(broker.port, pki, "estate/#")
    cleanup.append(sub)
    gw = gateway(tmp_path / "gw", broker.port, tls=True, mqtt_extra=(
        f'ca_file = "{pki.ca}"\nclient_cert_file = "{pki.client_cert}"\nclient_key_file = "{pki.client_key}"\n'))
    cleanup.append(gw)
    gw.start()
    wait_until(lambda: gw.health()["uplink"]["connected"], 20, what="uplink connected with mutual TLS")
    deliver_test_events(gw, sub)


def test_mutual_tls_without_client_certificate_is_refused(tmp_path: Path, pki: Pki, cleanup: list[Any]) -> None:
    broker = tls_broker(tmp_path, pki, require_certificate=True)
    cleanup.append(broker)
    gw = gateway(tmp_path / "gw", broker.port, tls=True, mqtt_extra=f'ca_file = "{pki.ca}"\n')
    cleanup.append(gw)
    gw.start()
    wait_until(lambda: gw.health()["uplink"]["last_error"], 30, what="an uplink error")
    health = gw.health()["uplink"]
    assert not health["connected"] and health["connects"] == 0
    assert "certificate" in health["last_error"].lower(), health


def test_wrong_ca_is_refused_with_a_clear_error(tmp_path: Path, pki: Pki, cleanup: list[Any]) -> None:
    broker = tls_broker(tmp_path, pki)
    cleanup.append(broker)
    gw = gateway(tmp_path / "gw", broker.port, tls=True, mqtt_extra=f'ca_file = "{pki.wrong_ca}"\n')
    cleanup.append(gw)
    gw.start()
    error = wait_until(lambda: gw.health()["uplink"]["last_error"], 30, what="an uplink error")
    health = gw.health()["uplink"]
    assert not health["connected"] and health["connects"] == 0
    # what a technician needs: it is TLS, the server certificate is not trusted, which setting to check
    assert "TLS" in error and "certificate verify failed" in error and "ca_file" in error, error
    # and as a code the console says in the page's language (issue 21), the node as host:port
    assert health["last_error_code"] == "tls_untrusted" and health["last_error_args"]["where"].endswith(
        f":{broker.port}"), health
    # and it stays down: no silent fallback to plain MQTT
    r = gw.post("/api/v1/test-events", json={"count": 3})
    assert r.status_code == 202
    wait_until(lambda: gw.health()["outbox"]["depth"] >= 3, 10, what="events kept in the outbox")
    assert not gw.health()["uplink"]["connected"]
    assert "certificate verify failed" in gw.log.read_text()


def test_plain_mqtt_url_against_tls_listener_does_not_connect(tmp_path: Path, pki: Pki, cleanup: list[Any]) -> None:
    broker = tls_broker(tmp_path, pki)
    cleanup.append(broker)
    gw = gateway(tmp_path / "gw", broker.port, tls=False)
    cleanup.append(gw)
    gw.start()
    wait_until(lambda: gw.health()["uplink"]["last_error"], 30, what="an uplink error")
    assert not gw.health()["uplink"]["connected"]


def password_broker(workdir: Path, users: dict[str, str], extra: str = "") -> Mosquitto:
    pwfile = workdir / "mosquitto.passwd"
    pwfile.touch()
    for user, password in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(pwfile), user, password], check=True, capture_output=True)
    return Mosquitto(workdir, extra_conf=f"allow_anonymous false\npassword_file {pwfile}\n{extra}").start()


def test_username_and_password_file(tmp_path: Path, cleanup: list[Any]) -> None:
    broker = password_broker(tmp_path, {"gw-test": "s3cret-gw", "central": "s3cret-central"})
    cleanup.append(broker)
    sub = tls_subscriber(broker.port, None, "estate/#", username="central", password="s3cret-central")
    cleanup.append(sub)
    (tmp_path / "gw").mkdir()
    pw = tmp_path / "gw" / "mqtt.password"
    pw.write_text("s3cret-gw\n")
    gw = gateway(tmp_path / "gw", broker.port, tls=False,
                 mqtt_extra='username = "gw-test"\npassword_file = "mqtt.password"\n')
    cleanup.append(gw)
    gw.start()
    wait_until(lambda: gw.health()["uplink"]["connected"], 20, what="uplink connected with a password")
    deliver_test_events(gw, sub)
    assert "s3cret" not in gw.log.read_text()


def test_wrong_password_is_refused_clearly(tmp_path: Path, cleanup: list[Any]) -> None:
    broker = password_broker(tmp_path, {"gw-test": "right"})
    cleanup.append(broker)
    (tmp_path / "gw").mkdir()
    (tmp_path / "gw" / "mqtt.password").write_text("wrong-password\n")
    gw = gateway(tmp_path / "gw", broker.port, tls=False,
                 mqtt_extra='username = "gw-test"\npassword_file = "mqtt.password"\n')
    cleanup.append(gw)
    gw.start()
    error = wait_until(lambda: gw.health()["uplink"]["last_error"], 30, what="an uplink error")
    assert not gw.health()["uplink"]["connected"]
    assert "refused" in error and ("authori" in error.lower() or "password" in error.lower()), error
    assert "wrong-password" not in gw.log.read_text()
