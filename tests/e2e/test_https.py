"""HTTPS on the site network: a site certificate made by the CLI, the real daemon serving it, phones' cookies Secure.

Plain HTTP beyond loopback is refused by check-config unless the site says so, because the
technician's phone would send its token in clear.
"""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import BIN, GatewayProc, Mosquitto, token_for


def make_cert(tmp_path: Path) -> Path:
    out = tmp_path / "tls"
    r = subprocess.run([str(BIN), "tls", "new", "--out", str(out), "--site", "test-site", "--host", "localhost",
                        "--ip", "127.0.0.1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert 'tls_cert_file = "' in r.stdout and "site-ca.pem" in r.stdout
    assert (out / "server.key").stat().st_mode & 0o077 == 0 and (out / "site-ca.key").stat().st_mode & 0o077 == 0
    return out


def test_console_and_api_over_https_with_the_site_ca(tmp_path: Path, mosquitto: Mosquitto) -> None:
    tls = make_cert(tmp_path)
    gw = GatewayProc(tmp_path, mosquitto.port)
    text = gw.config_path.read_text().replace(
        f'listen = "127.0.0.1:{gw.http_port}"',
        f'listen = "127.0.0.1:{gw.http_port}"\ntls_cert_file = "{tls / "server.pem"}"\n'
        f'tls_key_file = "{tls / "server.key"}"')
    gw.config_path.write_text(text)
    gw.url = f"https://127.0.0.1:{gw.http_port}"
    gw.verify = ssl.create_default_context(cafile=str(tls / "site-ca.pem"))
    gw.start()
    try:
        assert gw.get("/api/v1/doors", role="operator").status_code == 200
        # a client that does not trust the site CA refuses the connection
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            httpx.get(f"{gw.url}/api/v1/health", timeout=5)
        # plain HTTP to the HTTPS port gets nothing usable
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{gw.http_port}/api/v1/health", timeout=5)
        # the console's session cookie is Secure, HttpOnly and SameSite=Strict
        r = httpx.post(f"{gw.url}/login", data={"token": token_for("operator")}, verify=gw.verify, timeout=10)
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        # the renewal keeps the site CA, so phones that trust it keep working
        ca_before = (tls / "site-ca.pem").read_bytes()
        make_cert(tmp_path)
        assert (tls / "site-ca.pem").read_bytes() == ca_before
    finally:
        gw.stop()


def test_plain_http_beyond_loopback_is_refused_unless_allowed(tmp_path: Path) -> None:
    base = ('[gateway]\nid = "gw-1"\nsite = "s"\ndata_dir = "var"\n\n[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n\n'
            '[api]\nlisten = "0.0.0.0:8080"\n')
    path = tmp_path / "gw.toml"

    def check(text: str) -> subprocess.CompletedProcess[str]:
        path.write_text(text)
        return subprocess.run([str(BIN), "check-config", "-c", str(path)], capture_output=True, text=True, timeout=60)

    r = check(base)
    assert r.returncode == 2
    assert "api: plain HTTP on 0.0.0.0 would send every token in clear" in r.stderr
    assert "estate-gateway tls new" in r.stderr
    assert check(base + "allow_plain_http = true\n").returncode == 0
    r = check(base + 'tls_cert_file = "server.pem"\n')
    assert r.returncode == 2 and "tls_cert_file and tls_key_file go together" in r.stderr
    r = check(base + 'tls_cert_file = "nope.pem"\ntls_key_file = "nope.key"\n')
    assert r.returncode == 2 and "api.tls_cert_file: file not found" in r.stderr
