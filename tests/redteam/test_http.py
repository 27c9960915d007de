"""Red team on the HTTP port (issue 18): slowloris, an idle-connection flood under a 1,024 fd limit,
huge bodies with and without a token, token guessing behind a forged X-Forwarded-For.

The daemon runs as a subprocess (real sockets, real mosquitto); nothing here asserts a time,
only that the daemon closes, refuses, keeps answering and keeps its memory.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from conftest import GatewayProc, Mosquitto, need_fd_room, wait_until

pytestmark = pytest.mark.timeout(120)

FD_LIMIT = 1024


def rss(gw: GatewayProc) -> int:
    assert gw.proc is not None
    return int(psutil.Process(gw.proc.pid).memory_info().rss)


@pytest.fixture
def gateway(tmp_path: Path, mosquitto: Mosquitto) -> Any:
    """The daemon with extra ``[api]`` keys and, optionally, its fd limit lowered to ``nofile``."""
    made: list[GatewayProc] = []

    def make(api: str = "", nofile: int | None = None) -> GatewayProc:
        workdir = tmp_path / f"gw{len(made)}"
        workdir.mkdir()
        gw = GatewayProc(workdir, mosquitto.port, api_extra=api, nofile=nofile)
        if "tls_cert_file" in api:
            gw.url, gw.verify = f"https://127.0.0.1:{gw.http_port}", False
        made.append(gw)
        return gw.start()

    yield make
    for gw in made:
        try:
            gw.stop()
        except AssertionError:
            pass


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True once the peer closed ``sock`` (EOF or reset) within ``timeout`` seconds."""
    sock.setblocking(False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, min(0.5, deadline - time.monotonic())))
        if ready:
            try:
                if sock.recv(65536) == b"":
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True
            except BlockingIOError:
                pass
    return False


def wait_closed(socks: list[socket.socket], at_least: int, timeout: float = 30) -> None:
    """Until the peer has closed ``at_least`` of ``socks`` (polled: a loaded box may take its time)."""
    closed: set[int] = set()

    def enough() -> bool:
        closed.update(i for i, s in enumerate(socks) if i not in closed and closed_by_peer(s, 0.05))
        return len(closed) >= at_least

    wait_until(enough, timeout, interval=0.2, what=f"{at_least} of {len(socks)} connections closed by the gateway")


# ---------------------------------------------------------------------- bounded connections
def test_slowloris_is_closed_within_the_header_timeout(gateway: Any) -> None:
    gw = gateway("header_timeout_s = 1\n")
    sock = socket.create_connection(("127.0.0.1", gw.http_port), timeout=5)
    head = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 60
    closed = False
    deadline = time.monotonic() + 30  # generous: the deadline is 1 s
    try:
        for byte in head:
            sock.sendall(bytes([byte]))
            ready, _, _ = select.select([sock], [], [], 0.3)  # a byte every 0.3 s: never idle for the timeout
            if ready and sock.recv(65536) == b"":
                closed = True
                break
            if time.monotonic() > deadline:
                break
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    finally:
        sock.close()
    assert closed, "a request head dripping a byte every 0.3 s was never closed"
    # a connection that never sends anything is closed too, and a body that stops halfway
    idle = socket.create_connection(("127.0.0.1", gw.http_port), timeout=5)
    assert closed_by_peer(idle, 30)
    idle.close()
    metrics = httpx.get(f"{gw.url}/metrics", timeout=10).text
    assert 'http_conn_refused_total{reason="header_timeout"}' in metrics
    assert gw.log.read_text().count("header_timeout_s") <= 2  # once a minute, not once a connection


def test_slow_body_is_closed_within_the_body_timeout(gateway: Any) -> None:
    gw = gateway("body_timeout_s = 1\n")
    sock = socket.create_connection(("127.0.0.1", gw.http_port), timeout=5)
    sock.sendall(b"POST /api/v1/test-events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer " + gw.token("admin").encode() + b"\r\nContent-Length: 100\r\n\r\n{")
    assert closed_by_peer(sock, 30), "a body that stopped halfway was never closed"
    sock.close()
    login = socket.create_connection(("127.0.0.1", gw.http_port), timeout=5)  # the public form, no token needed
    login.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: 100\r\n\r\ntoken=")
    assert closed_by_peer(login, 30)
    login.close()
    assert httpx.get(f"{gw.url}/api/v1/health", timeout=10).status_code == 200
    log = gw.log.read_text()
    assert "Traceback" not in log and " failed" not in log  # a client that went away is no crash


def open_idle(port: int, count: int, sources: int) -> list[socket.socket]:
    """``count`` connections that never send a byte, from ``sources`` loopback addresses (127.0.0.2 ...)."""
    socks: list[socket.socket] = []
    for i in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((f"127.0.0.{2 + i % sources}", 0))
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        socks.append(sock)
    poller = select.poll()  # select() cannot take descriptors above 1,024
    for sock in socks:
        poller.register(sock, select.POLLOUT)
    pending, deadline = len(socks), time.monotonic() + 30
    while pending and time.monotonic() < deadline:  # wait until every connect has an answer
        for fd, _ in poller.poll(1000):
            poller.unregister(fd)
            pending -= 1
    return socks


def test_two_thousand_idle_connections_under_a_1024_fd_limit(gateway: Any) -> None:
    need_fd_room(2 * 2000 + 256)
    gw = gateway("max_connections = 256\nmax_per_source = 64\n", nofile=FD_LIMIT)
    socks = open_idle(gw.http_port, 2000, sources=40)
    try:
        # the console and /health still answer, from an address of their own and from a flooding one
        assert httpx.get(f"{gw.url}/api/v1/health", timeout=10).status_code == 200
        assert gw.get("/api/v1/doors", role="operator").status_code == 200
        assert httpx.get(f"{gw.url}/login", timeout=10).status_code == 200
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10) as c:
            assert c.get(f"{gw.url}/api/v1/health").status_code == 200
        assert gw.proc is not None and gw.proc.poll() is None
        held = len([c for c in psutil.Process(gw.proc.pid).net_connections("tcp")
                    if c.laddr and c.laddr.port == gw.http_port and c.status == psutil.CONN_ESTABLISHED])
        assert held <= 256 + 8, f"the daemon holds {held} HTTP connections (max_connections 256)"
        metrics = httpx.get(f"{gw.url}/metrics", timeout=10).text
        assert 'http_conn_refused_total{reason="evicted_total"}' in metrics
    finally:
        for s in socks:
            s.close()
    assert "out of system resource" not in gw.log.read_text()
    assert len(gw.log.read_text().splitlines()) < 50  # no line per connection


# ---------------------------------------------------------------------- nothing read before it is allowed
HUGE = 150 * 1024 * 1024


def send_huge(port: int, head: bytes, chunked: bool, timeout: float = 60) -> tuple[bytes, int]:
    """Send ``head`` then up to 150 MB of body as fast as the daemon takes it; (its answer, bytes it took)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(head)
    chunk = b"x" * (1 << 20)
    if chunked:
        chunk = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent, answer, pending = 0, b"", memoryview(b"")
    deadline = time.monotonic() + timeout
    try:
        while sent < HUGE and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if readable:
                data = sock.recv(65536)
                answer += data
                if not data or b"\r\n\r\n" in answer:
                    break
            if writable:
                pending = pending or memoryview(chunk)
                n = sock.send(pending)
                pending, sent = pending[n:], sent + n
        sock.settimeout(10)
        while not _complete(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        sock.close()
    return answer, sent


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_150_mb_body_costs_no_memory(gateway: Any, chunked: bool) -> None:
    gw = gateway()
    for _ in range(3):  # warm the paths up, so the baseline includes what any request allocates once
        gw.post("/api/v1/test-events", role="admin", json={"count": 1})
        httpx.post(f"{gw.url}/api/v1/test-events", json={"count": 1}, timeout=10)
    before = rss(gw)
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {HUGE}\r\n".encode()
    base = b"POST /api/v1/test-events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing
    cases = {
        401: base + b"\r\n",  # no token
        4010: base + b"Authorization: Bearer guess\r\n\r\n",  # a wrong one
        413: base + b"Authorization: Bearer " + gw.token("admin").encode() + b"\r\n\r\n",  # a valid one
    }
    for expected, head in cases.items():
        answer, sent = send_huge(gw.http_port, head, chunked)
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
        assert status == (401 if expected == 4010 else expected), answer[:300]
        assert sent < HUGE, "the daemon read the whole 150 MB body"
        if status == 413:
            assert b'"body_too_large"' in answer
    grown = rss(gw) - before
    print(f"RSS {before / 1e6:.1f} MB -> {(before + grown) / 1e6:.1f} MB after three 150 MB bodies")
    assert grown < 8 * 1024 * 1024, f"the daemon's RSS grew by {grown / 1e6:.1f} MB"
    assert gw.get("/api/v1/health").status_code == 200


def test_https_connections_that_never_handshake_are_closed_and_capped(gateway: Any, tmp_path: Path) -> None:
    from pki import make_pki

    pki = make_pki(tmp_path / "pki")
    gw = gateway(f'tls_cert_file = "{pki.server_cert}"\ntls_key_file = "{pki.server_key}"\n'
                 "header_timeout_s = 2\nmax_per_source = 8\n")
    gw.url = f"https://127.0.0.1:{gw.http_port}"
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    silent = [socket.create_connection(("127.0.0.1", gw.http_port), timeout=5) for _ in range(20)]
    try:
        r = httpx.get(f"{gw.url}/api/v1/health", timeout=10, verify=ctx)  # evicts a silent one of its source
        assert r.status_code == 200 and r.headers["strict-transport-security"]
        assert all(closed_by_peer(s, 30) for s in silent)  # evicted, or closed at the header deadline
        # and HTTPS itself works as before: kept-alive connections, bodies, fresh connections
        with httpx.Client(base_url=gw.url, verify=ctx, timeout=10, headers=gw.headers("admin")) as client:
            for i in range(30):
                assert client.post("/api/v1/test-events", json={"count": 1}).status_code == 202
                assert client.get("/api/v1/events", params={"limit": 1}).status_code == 200
        for _ in range(10):
            assert httpx.get(f"{gw.url}/api/v1/health", timeout=10, verify=ctx).status_code == 200
    finally:
        for s in silent:
            s.close()


def test_a_busy_connection_is_never_evicted(gateway: Any) -> None:
    """A console's live stream is busy: idle newcomers from its own address evict each other, never it."""
    gw = gateway("max_per_source = 4\n")
    with httpx.Client(timeout=10) as client, client.stream(
            "GET", f"{gw.url}/api/v1/stream", headers=gw.headers("operator")) as stream:
        assert stream.status_code == 200
        idle = [socket.create_connection(("127.0.0.1", gw.http_port), timeout=5) for _ in range(12)]
        try:
            wait_closed(idle[:8], 5)  # the older idle ones made room
            assert httpx.get(f"{gw.url}/api/v1/health", timeout=10).status_code == 200
            # the stream still delivers: an event recorded now arrives on it
            assert gw.post("/api/v1/test-events", role="admin", json={"count": 1}).status_code == 202
            lines = stream.iter_lines()
            assert any("gateway.test" in next(lines) for _ in range(50))
        finally:
            for s in idle:
                s.close()
    metrics = httpx.get(f"{gw.url}/metrics", timeout=10).text
    assert 'http_conn_refused_total{reason="evicted_per_source"}' in metrics


def test_slow_login_bodies_cannot_pin_the_connection_table(gateway: Any) -> None:
    """A body still arriving is evictable: dripping the public login form from many connections holds nothing."""
    gw = gateway("max_per_source = 4\nbody_timeout_s = 60\n")
    drips = []
    for _ in range(12):
        s = socket.create_connection(("127.0.0.1", gw.http_port), timeout=5)
        s.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: 1000\r\n\r\ntoken=")
        drips.append(s)
    try:
        wait_closed(drips[:8], 5)  # the oldest made room for the newest
        assert httpx.get(f"{gw.url}/api/v1/health", timeout=10).status_code == 200
        r = httpx.post(f"{gw.url}/login", data={"token": gw.token("operator")}, timeout=10)
        assert r.status_code == 303
    finally:
        for s in drips:
            s.close()
    assert "Traceback" not in gw.log.read_text()
