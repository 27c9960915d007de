"""HTTP under an idle-connection flood. Writes bench/results/http.json and prints a summary. Not part of `make test`.

The real daemon (subprocess, real mosquitto) runs with its file-descriptor limit at 1,024 and the
default ``[api]`` limits. Measured: the latency of ``GET /api/v1/health`` and of the console page
(``GET /`` with a session) on a fresh connection each time, (1) quiet, (2) while 2,000 idle
connections from 40 loopback addresses are held open, (3) while an attacker keeps opening new idle
connections as fast as it can (every one evicts an older idle one). The red-team test
(tests/redteam/test_http.py) asserts that the console answers at all; this measures how fast.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from benchkit import summary, write_results  # noqa: E402

from conftest import BIN, GatewayProc, Mosquitto, token_for, wait_until  # noqa: E402

IDLE = int(os.environ.get("IDLE", 2000))
SAMPLES = int(os.environ.get("SAMPLES", 200))
FD_LIMIT = 1024


def start(gw: GatewayProc) -> None:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

    gw.proc = subprocess.Popen([str(BIN), "run", "-c", str(gw.config_path)], stdout=open(gw.log, "ab"),
                               stderr=subprocess.STDOUT, env=gw.env, cwd=gw.workdir, preexec_fn=limit)
    wait_until(gw._healthy, 30, what="gateway health")


def idle_connections(port: int, count: int) -> list[socket.socket]:
    socks = []
    for i in range(count):
        s = socket.socket()
        s.bind((f"127.0.0.{2 + i % 40}", 0))
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    time.sleep(2)  # let the daemon accept (and evict) them all
    return socks


def get(port: int, path: str, cookie: str = "") -> float:
    """One request on a fresh connection, as a browser's first request; seconds until the whole answer."""
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        extra = f"Cookie: egw_session={cookie}\r\n" if cookie else ""
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n{extra}\r\n".encode())
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    if not answer.startswith(b"HTTP/1.1 200"):
        raise OSError(answer[:40])
    return time.perf_counter() - t0


def measure(gw: GatewayProc, sid: str, budget_s: float = 60) -> dict[str, Any]:
    health: list[float] = []
    page: list[float] = []
    failed, deadline = 0, time.monotonic() + budget_s
    for _ in range(SAMPLES):
        if time.monotonic() > deadline:
            break
        for path, cookie, out in (("/api/v1/health", "", health), ("/", sid, page)):
            try:
                out.append(get(gw.http_port, path, cookie))
            except OSError:
                failed += 1
    return {"health": summary(health), "console_page": summary(page), "failed": failed}


def churn(port: int, stop: threading.Event, opened: list[int]) -> None:
    """An attacker opening idle connections as fast as it can, keeping the newest 2,000."""
    held: list[socket.socket] = []
    i = 0
    while not stop.is_set():
        s = socket.socket()
        s.bind((f"127.0.0.{2 + i % 40}", 0))
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        held.append(s)
        i += 1
        if len(held) > IDLE:
            held.pop(0).close()
    opened.append(i)
    for s in held:
        s.close()


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 3 * IDLE + 512)), hard))
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp)).start()
        gw = GatewayProc(Path(tmp), broker.port)
        start(gw)
        try:
            client = httpx.Client(base_url=gw.url, timeout=10)
            client.post("/login", data={"token": token_for("operator")})
            sid = client.cookies["egw_session"]
            results: dict[str, Any] = {"fd_limit": FD_LIMIT, "idle_connections": IDLE, "samples": SAMPLES,
                                       "quiet": measure(gw, sid)}
            socks = idle_connections(gw.http_port, IDLE)
            results["idle_flood_held"] = measure(gw, sid)
            for s in socks:
                s.close()
            stop, opened = threading.Event(), []
            attacker = threading.Thread(target=churn, args=(gw.http_port, stop, opened))
            t0 = time.monotonic()
            attacker.start()
            time.sleep(1)
            results["idle_flood_churning"] = measure(gw, sid)
            stop.set()
            attacker.join()
            results["churn_connections_per_s"] = round(opened[0] / (time.monotonic() - t0))
            results["daemon_alive"] = gw.proc is not None and gw.proc.poll() is None
            results["log_lines"] = len(gw.log.read_text().splitlines())
        finally:
            gw.stop()
            broker.stop()
    out = write_results("http", results)
    for phase in ("quiet", "idle_flood_held", "idle_flood_churning"):
        r = results[phase]
        print(f"{phase:22s} health p50 {r['health']['p50_ms']:7.2f} ms p99 {r['health']['p99_ms']:7.2f} ms   "
              f"console p50 {r['console_page']['p50_ms']:7.2f} ms p99 {r['console_page']['p99_ms']:7.2f} ms   "
              f"failed {r['failed']}")
    print(f"attacker: {results['churn_connections_per_s']} connections/s; log lines {results['log_lines']}; -> {out}")


if __name__ == "__main__":
    main()
