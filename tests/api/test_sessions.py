"""Console sessions against the real daemon: a random id per sign-in (never the token), rotated, ended
by sign-out, by idleness and by removing the token from the config; surviving a restart; HSTS over HTTPS.
"""

from __future__ import annotations

import hashlib
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import GatewayProc, Mosquitto, token_for
from pki import make_pki

pytestmark = pytest.mark.timeout(120)


def sign_in(gw: GatewayProc, role: str, client: httpx.Client | None = None) -> httpx.Client:
    client = client or httpx.Client(base_url=gw.url, timeout=10, verify=gw.verify)
    r = client.post("/login", data={"token": token_for(role)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


def as_session(gw: GatewayProc, sid: str) -> httpx.Client:
    return httpx.Client(base_url=gw.url, timeout=10, verify=gw.verify, cookies={"egw_session": sid})


def test_every_sign_in_rotates_the_session(gateway_factory: Any) -> None:
    gw = gateway_factory()
    client = sign_in(gw, "operator")
    first = client.cookies["egw_session"]
    sign_in(gw, "operator", client)  # the browser presents its old cookie: that session is dropped
    second = client.cookies["egw_session"]
    assert first != second and token_for("operator") not in (first, second)
    assert as_session(gw, first).get("/api/v1/doors").status_code == 401
    assert as_session(gw, second).get("/api/v1/doors").status_code == 200
    # only hashes are stored: neither the id nor the token is in the database
    db = (gw.data_dir / "gateway.db").read_bytes() + b"".join(p.read_bytes() for p in gw.data_dir.glob("*-wal"))
    assert second.encode() not in db and token_for("operator").encode() not in db
    assert hashlib.sha256(second.encode()).hexdigest().encode() in db


def test_a_session_ends_after_its_idle_time(tmp_path: Path, mosquitto: Mosquitto) -> None:
    # 1.8 s idle: requests 0.3 s apart (6x margin) keep it alive on a loaded box too, 4 s without one ends it
    gw = GatewayProc(tmp_path, mosquitto.port, api_extra="session_idle_h = 0.0005")
    gw.start()
    try:
        sid = sign_in(gw, "operator").cookies["egw_session"]
        session = as_session(gw, sid)
        for _ in range(9):  # requests keep it alive past its idle time (2.7 s of them)
            assert session.get("/api/v1/doors").status_code == 200
            time.sleep(0.3)
        assert session.get("/api/v1/doors").status_code == 200
        time.sleep(4.0)  # now idle for longer than session_idle_h
        r = session.get("/api/v1/doors")
        assert r.status_code == 401 and "sign in again" in r.json()["error"]["message"]
        assert session.get("/", follow_redirects=False).headers["location"] == "/login"
    finally:
        gw.stop()


def test_sessions_survive_a_restart_unless_their_token_was_removed(tmp_path: Path, mosquitto: Mosquitto) -> None:
    gw = GatewayProc(tmp_path, mosquitto.port)
    gw.start()
    operator = sign_in(gw, "operator").cookies["egw_session"]
    admin = sign_in(gw, "admin").cookies["egw_session"]
    assert gw.stop() == 0
    # the operator's token is taken out of the config
    digest = hashlib.sha256(token_for("operator").encode()).hexdigest()
    text = gw.config_path.read_text()
    block = f'[[api.tokens]]\nname = "test-operator"\nrole = "operator"\nsha256 = "{digest}"\n'
    assert block in text
    gw.config_path.write_text(text.replace(block, ""))
    gw.start()
    try:
        assert as_session(gw, admin).get("/api/v1/doors").status_code == 200  # still signed in
        assert as_session(gw, operator).get("/api/v1/doors").status_code == 401  # revoked with its token
        assert "ended at start" in gw.log.read_text()
    finally:
        gw.stop()


def test_hsts_over_https_only(tmp_path: Path, mosquitto: Mosquitto, gateway_factory: Any) -> None:
    plain = gateway_factory()
    assert "strict-transport-security" not in httpx.get(f"{plain.url}/api/v1/health", timeout=10).headers
    pki = make_pki(tmp_path / "pki")
    gw = GatewayProc(tmp_path, mosquitto.port,
                     api_extra=f'tls_cert_file = "{pki.server_cert}"\ntls_key_file = "{pki.server_key}"')
    gw.url = f"https://127.0.0.1:{gw.http_port}"
    gw.verify = ssl.create_default_context(cafile=str(pki.ca))
    gw.start()
    try:
        r = httpx.get(f"{gw.url}/api/v1/health", timeout=10, verify=gw.verify)
        assert r.headers["strict-transport-security"].startswith("max-age=")
        client = sign_in(gw, "operator")
        assert "secure" in client.post("/login", data={"token": token_for("operator")}).headers["set-cookie"].lower()
        assert client.get("/").headers["strict-transport-security"].startswith("max-age=")
    finally:
        gw.stop()
