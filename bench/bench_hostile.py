"""A real panel's ACK latency while a hostile host holds thousands of idle connections (issue 18).

The daemon runs as a subprocess with its fd limit at 1,024 (soft and hard, as an unconfigured unit
had it); a "laptop" on 127.0.0.1 opens ``HOSTILE_CONNS`` idle TCP connections to the DC-09 port and
as many to the GB/T 26875.3 port and leaves them open; then a real panel from another address
(127.0.0.2) sends ``HOSTILE_BLOCKS`` DC-09 blocks over its own connection, each waiting for its ACK,
and one GB/T transmitter from 127.0.0.2 sends a heartbeat that must be confirmed. Written to
``bench/results/hostile.json``: the panel's ACK latency (p50/p95/p99/max), how many of the
hostile connections the gateway held vs closed unread, the gateway log's size, whether /health
answered. The aim (issue 18) is p99 < 50 ms.

tests/redteam/test_receivers.py runs :func:`scenario` with the full 2,000 connections and a few
blocks and asserts the behaviour (every block ACKed, the log small) -- never the timings.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from benchkit import summary, write_results  # noqa: E402
from conftest import GatewayProc, Mosquitto, free_port, own_fd_room  # noqa: E402

from drivers import gb26875 as gb  # noqa: E402
from drivers.sia_dc09 import Framer, build_block, parse_response  # noqa: E402

CONNS = int(os.environ.get("HOSTILE_CONNS", 2000))
BLOCKS = int(os.environ.get("HOSTILE_BLOCKS", 1000))
FD_LIMIT = 1024
ATTACKER, PANEL = "127.0.0.1", "127.0.0.2"


def site(dc_port: int, gb_port: int, extra: str = "") -> str:
    return f"""
[[alarm_receivers]]
id = "duty-panel"
protocol = "sia-dc09"
listen = "127.0.0.1:{dc_port}"
accounts = ["1234"]
{extra}

[[alarm_receivers]]
id = "fire-uitd"
protocol = "gb26875"
listen = "127.0.0.1:{gb_port}"
{extra}
"""


def start_limited(gw: GatewayProc, soft: int = FD_LIMIT) -> GatewayProc:
    """Start the daemon as GatewayProc.start does, with its fd limit at 1,024 (the soft one at ``soft``)."""
    gw.nofile = (soft, FD_LIMIT)   # the fd limit of a unit without LimitNOFILE
    return gw.start()


def flood(port: int, n: int, source: str = ATTACKER, first: bytes = b"\n") -> list[socket.socket]:
    """``n`` idle connections that each send ``first`` (a block's first byte) and then nothing.

    The byte matters: with SYN cookies, a handshake the listener's queue had no room for only
    becomes a connection on the gateway's side when data arrives; an attacker sends it.
    """
    out = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((source, 0))
        s.connect_ex(("127.0.0.1", port))
        out.append(s)
    todo, deadline = list(out), time.monotonic() + 30
    while todo and time.monotonic() < deadline:
        left = []
        for s in todo:
            try:
                s.send(first)
            except (BlockingIOError, InterruptedError, OSError) as exc:
                if getattr(exc, "errno", None) in (errno.ENOTCONN, errno.EAGAIN, errno.EINPROGRESS):
                    left.append(s)   # not connected yet: try again
        todo = left
        if todo:
            time.sleep(0.05)
    return out


def still_open(socks: list[socket.socket]) -> int:
    """Flood connections not reset: held by the gateway, or still waiting in the kernel's queues."""
    held = 0
    for s in socks:
        try:
            s.recv(1)
        except BlockingIOError:
            held += 1          # open and silent
        except OSError:
            pass               # reset / refused
    return held


async def panel(port: int, blocks: int) -> tuple[list[float], list[str]]:
    """A DC-09 panel on its own connection from 127.0.0.2: each block waits for its answer."""
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=(PANEL, 0)), 30)
    framer, lat, answers = Framer(), [], []
    try:
        for i in range(blocks):
            payload = "Nri1/BA001" if i % 2 == 0 else "Nri1/BR001"
            block = build_block("SIA-DCS", i % 9999 + 1, "1234", payload)
            t0 = time.perf_counter()
            w.write(block)
            await w.drain()
            answer = None
            while answer is None:
                data = await asyncio.wait_for(r.read(4096), 30)
                if not data:
                    raise ConnectionError("receiver closed the panel's connection")
                for body in framer.feed(data):
                    parsed = parse_response(body)
                    answer = parsed[0] if parsed else "?"
            lat.append(time.perf_counter() - t0)
            answers.append(answer)
    finally:
        w.close()
    return lat, answers


def gb_heartbeat(port: int) -> int:
    """A GB/T transmitter's heartbeat (send-data, no objects) from 127.0.0.2: the answer's command."""
    with socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(PANEL, 0)) as s:
        s.sendall(gb.build_frame(7, gb.CMD_SEND, source=bytes.fromhex("010203040506")))
        reader, deadline = gb.FrameReader(), time.monotonic() + 30
        while time.monotonic() < deadline:
            data = s.recv(4096)
            if not data:
                break
            for frame in reader.feed(data):
                if isinstance(frame, gb.Frame):
                    return frame.command
    return -1


def scenario(work: Path, broker_port: int, conns: int, blocks: int) -> dict[str, Any]:
    """Start the limited daemon, flood both receiver ports, run the panel; the figures and the facts."""
    dc_port, gb_port = free_port(), free_port()
    gw_dir = work / "gw-hostile"
    gw_dir.mkdir()
    gw = start_limited(GatewayProc(gw_dir, broker_port, site(dc_port, gb_port)))
    socks: list[socket.socket] = []
    try:
        log_before = gw.log.stat().st_size
        socks = flood(dc_port, conns) + flood(gb_port, conns, first=b"@")
        # let the gateway work through the backlog: held ones stay, the rest are reset
        time.sleep(2.0)
        lat, answers = asyncio.run(panel(dc_port, blocks))
        gb_answer = gb_heartbeat(gb_port)
        health = httpx.get(f"{gw.url}/api/v1/health", timeout=30).status_code
        metrics = [line for line in gw.get("/metrics").text.splitlines()
                   if line.startswith("estate_gateway_alarm_connections_refused_total")]
        return {"conns_per_port": conns, "fd_limit": FD_LIMIT, "still_open": still_open(socks),
                "closed_unread": int(sum(float(line.rsplit(" ", 1)[1]) for line in metrics)),
                "answers": answers, "gb_answer": gb_answer, "health_status": health,
                "log_bytes": gw.log.stat().st_size - log_before, "latency": lat, "refused_metric": metrics}
    finally:
        for s in socks:
            s.close()
        gw.stop()


def main() -> None:
    reason = own_fd_room(2 * CONNS + 256)
    if reason:
        print(f"skipped: {reason}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp)).start()
        try:
            res = scenario(Path(tmp), broker.port, CONNS, BLOCKS)
        finally:
            broker.stop()
    lat = res.pop("latency")
    answers = res.pop("answers")
    res["ack"] = summary(lat)
    res["acked"] = answers.count("ACK")
    res["blocks"] = len(answers)
    out = write_results("hostile", res)
    print(f"{res['acked']}/{res['blocks']} ACKed beside {CONNS} idle connections per port (fd limit {FD_LIMIT}); "
          f"ACK p50 {res['ack']['p50_ms']} ms, p99 {res['ack']['p99_ms']} ms; still open {res['still_open']}, "
          f"closed unread {res['closed_unread']}; log +{res['log_bytes']} B -> {out}")


if __name__ == "__main__":
    main()
