"""Console over HTTP against the real daemon: login cookie, CSRF, role-shaped pages, the live SSE stream."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import httpx
import pytest

from conftest import wait_until
from gateway.api.auth import csrf_for

pytestmark = pytest.mark.timeout(120)


def login(gw: Any, role: str) -> httpx.Client:
    """A browser-like client that logged in through the form (the cookie jar holds the session)."""
    client = httpx.Client(base_url=gw.url, timeout=10, follow_redirects=False)
    r = client.post("/login", data={"token": gw.token(role)})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return client


@pytest.fixture
def gw(gateway_factory: Any) -> Any:
    return gateway_factory('[[readers]]\nid = "r1"\ndriver = "osdp"\nport = "socket://127.0.0.1:9"\n\n'
                           '[[doors]]\nid = "d1"\nname = "Gate 1"\nbuilding = "3"\nreader = "r1"\n')


def test_login_cookie_flags_and_logout(gw: Any) -> None:
    anon = httpx.Client(base_url=gw.url, timeout=10)
    r = anon.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = anon.get("/login")
    assert r.status_code == 200 and 'name="token"' in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    r = anon.post("/login", data={"token": "wrong"})
    assert r.status_code == 401 and 'id="login-error"' in r.text
    assert "egw_session" not in r.headers.get("set-cookie", "")
    # a form posted from another site is refused even with a good token
    r = anon.post("/login", data={"token": gw.token("operator")}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403

    client = httpx.Client(base_url=gw.url, timeout=10)
    r = client.post("/login", data={"token": gw.token("operator")}, follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert "egw_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    sid = client.cookies["egw_session"]
    assert gw.token("operator") not in cookie and len(sid) >= 40  # a session id, never the token
    page = client.get("/")
    assert page.status_code == 200 and 'id="view-duty"' in page.text
    # the token itself never appears in the page; the session's CSRF value does
    assert gw.token("operator") not in page.text
    assert csrf_for(sid) in page.text
    # logout needs the CSRF value too
    assert client.post("/logout", data={"csrf": "nope"}).status_code == 403
    r = client.post("/logout", data={"csrf": csrf_for(sid)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    client.cookies.clear()
    assert client.get("/", follow_redirects=False).status_code == 303
    # the signed-out session id is dead, even presented again
    stale = httpx.Client(base_url=gw.url, timeout=10, cookies={"egw_session": sid})
    assert stale.get("/", follow_redirects=False).status_code == 303
    assert stale.get("/api/v1/doors").status_code == 401
    audit = gw.get("/api/v1/audit?limit=1000", role="admin").json()["items"]
    assert {"console.login", "console.logout"} <= {a["action"] for a in audit}
    assert not any(gw.token("operator") in json.dumps(a) for a in audit)
    assert gw.token("operator") not in gw.log.read_text()


def test_pages_show_only_what_the_role_may_do(gw: Any) -> None:
    op = login(gw, "operator").get("/").text
    assert 'id="view-duty"' in op and 'id="view-tech"' not in op and 'id="enrol-form"' not in op
    assert '"unlock": true' in op and '"enrol": false' in op
    tech = login(gw, "technician").get("/").text
    assert 'id="view-tech"' in tech and 'id="view-duty"' not in tech and 'id="door-board"' not in tech
    assert '"unlock": false' in tech and '"revoke": true' in tech
    assert 'value="d1"' in tech  # the enrolment door list comes from the config
    central = login(gw, "central").get("/").text
    assert 'id="view-meters"' in central and 'id="view-duty"' not in central and 'id="view-tech"' not in central
    admin = login(gw, "admin").get("/").text
    assert all(f'id="view-{v}"' in admin for v in ("duty", "tech", "meters"))


def test_language_switch(gw: Any) -> None:
    client = login(gw, "operator")
    client.get("/lang/en")
    assert "Acknowledge" in client.get("/").text or "Alarms" in client.get("/").text
    client.get("/lang/zh")
    assert "报警" in client.get("/").text
    client.get("/lang/xx")  # unknown: ignored
    assert "报警" in client.get("/").text


def test_cookie_writes_need_csrf_and_the_right_role(gw: Any) -> None:
    op = login(gw, "operator")
    csrf = csrf_for(op.cookies["egw_session"])
    # cookie session without the CSRF header: refused before anything happens
    r = op.post("/api/v1/test-events", json={"count": 1})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    r = op.post("/api/v1/doors/d1/unlock", json={})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    # with it, the role decides (the reader is unreachable: done or 409, never 403)
    r = op.post("/api/v1/doors/d1/unlock", json={}, headers={"X-CSRF-Token": csrf})
    assert r.status_code in (200, 409), r.text
    tech = login(gw, "technician")
    r = tech.post("/api/v1/doors/d1/unlock", json={}, headers={"X-CSRF-Token": csrf_for(tech.cookies["egw_session"])})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    # another session's CSRF value does not work
    r = tech.post("/api/v1/doors/d1/unlock", json={}, headers={"X-CSRF-Token": csrf})
    assert r.json()["error"]["code"] == "csrf"
    # a console session's write is audited as its holder (the session id leads to the token's name)
    audit = gw.get("/api/v1/audit?limit=1000", role="admin").json()["items"]
    assert any(a["action"] == "POST /api/v1/doors/d1/unlock" and a["actor"] == "test-operator" for a in audit)
    # reads need no CSRF; bearer clients (central, scripts) are not affected
    assert op.get("/api/v1/doors").status_code == 200
    assert gw.post("/api/v1/test-events", role="admin", json={"count": 1}).status_code == 202


def test_static_assets_and_unknown_names(gw: Any) -> None:
    anon = httpx.Client(base_url=gw.url, timeout=10)
    assert anon.get("/static/console.js").headers["content-type"].startswith("text/javascript")
    assert anon.get("/static/console.css").status_code == 200
    for bad in ("../console.py", "..%2Fconsole.py", "nope.js", "%00"):
        assert anon.get(f"/static/{bad}").status_code == 404
    assert anon.get("/api/v1/stream").status_code == 401


class SseReader:
    """Reads an SSE stream in a thread and keeps the parsed ``ev`` messages."""

    def __init__(self, client: httpx.Client, headers: dict[str, str] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.other: list[str] = []
        self.opened = threading.Event()
        self._client = client
        self._headers = headers or {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.opened.wait(10), "stream did not open"

    def _run(self) -> None:
        try:
            with self._client.stream("GET", "/api/v1/stream", headers=self._headers, timeout=None) as r:
                self.status = r.status_code
                self.opened.set()
                kind, data = "message", ""
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data = line[5:].strip()
                    elif line == "":
                        if kind == "ev" and data:
                            self.events.append(json.loads(data))
                        elif data:
                            self.other.append(kind)
                        kind, data = "message", ""
        except httpx.HTTPError:
            pass
        finally:
            self.opened.set()

    def close(self) -> None:
        self._client.close()


def test_stream_is_live_filtered_and_resumes(gw: Any) -> None:
    admin = login(gw, "admin")
    tech = login(gw, "technician")
    a = SseReader(admin)
    t = SseReader(tech)
    try:
        time.sleep(0.3)  # both subscribed
        assert gw.post("/api/v1/test-events", role="admin", json={"count": 3}).status_code == 202
        wait_until(lambda: sum(1 for e in a.events if e["type"] == "gateway.test") == 3, 10, what="3 live events")
        seqs = [e["seq"] for e in a.events if e["type"] == "gateway.test"]
        assert seqs == sorted(seqs) and len(set(seqs)) == 3
        # a technician's page does not get gateway.* events
        assert not any(e["type"] == "gateway.test" for e in t.events)
        # a reconnect with Last-Event-ID replays what came after it
        again = SseReader(login(gw, "admin"), headers={"Last-Event-ID": str(seqs[0])})
        wait_until(lambda: [e["seq"] for e in again.events if e["type"] == "gateway.test"] == seqs[1:], 10,
                   what="replay after Last-Event-ID")
        again.close()
    finally:
        a.close()
        t.close()


def streams_open(gw: Any) -> int:
    text = httpx.get(f"{gw.url}/metrics", timeout=5).text
    found = re.search(r"^estate_gateway_console_streams(?:\{\})? (\d+)", text, re.M)
    return int(found.group(1)) if found else 0


def test_closed_pages_do_not_leave_streams_behind(gw: Any) -> None:
    readers = [SseReader(login(gw, "operator")) for _ in range(3)]
    wait_until(lambda: streams_open(gw) == 3, 10, what="3 streams")
    for r in readers:
        r.close()
    wait_until(lambda: streams_open(gw) == 0, 20, what="streams gone after the pages closed")


def test_open_stream_does_not_delay_a_clean_stop(gw: Any) -> None:
    """An open stream neither holds the daemon up (it exits 0 on SIGTERM by itself: gw.stop() kills it and
    fails otherwise) nor is left hanging: the server ends it, so the page's reader sees its end."""
    reader = SseReader(login(gw, "operator"))
    assert gw.stop() == 0
    reader._thread.join(30)
    assert not reader._thread.is_alive(), "the stream was not ended by the stop"
    reader.close()
