"""What it costs the broker to keep what it acknowledged: mosquitto's autosave settings, measured.

mosquitto 2.0 keeps its queues in memory and writes the whole database at autosave points. With
``autosave_interval 60`` a crash loses up to a minute of messages it already PUBACKed (the issue
saw 503 of 503 events for an offline central gone). ``autosave_on_changes true`` with
``autosave_interval 1`` saves after every loop of the broker that queued anything: nothing
acknowledged is lost to a kill -9, at the price of rewriting the database (every queued message)
on each save. This bench measures that price: one QoS 1 publisher (a window of 500, as the
gateway's ``[mqtt] inflight``) sends N events of ~300 bytes while central's persistent session
is offline, so the queue grows to N; then the broker is killed with -9, started again, and
central counts what it gets. The same again with central online (the queue stays short: the
normal day). Per case: messages/s overall and for the last tenth (the deepest queue), and
messages lost.

    .venv/bin/python bench/bench_broker_persistence.py            # -> bench/results/broker_persistence.json
    .venv/bin/python bench/bench_broker_persistence.py --n 2000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchkit import write_results  # noqa: E402
from conftest import Mosquitto, free_port, mosquitto_user_line, wait_until  # noqa: E402

CASES = {
    "autosave_interval 60 (seconds; was shipped)": "autosave_interval 60\n",
    "autosave_on_changes, every 100 changes": "autosave_on_changes true\nautosave_interval 100\n",
    "autosave_on_changes, every change (shipped)": "autosave_on_changes true\nautosave_interval 1\n",
}
TOPIC = "estate/bench/gw-1/event/gateway.test"


def start(conf: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([Mosquitto.binary(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_until(lambda: Mosquitto(conf.parent, port)._listening(), 10, what="broker")
    return proc


def central(port: int, seen: set[int] | None) -> mqtt.Client:
    """central's persistent session; with ``seen`` it records event numbers, without it subscribes and leaves."""
    ready = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="central", clean_session=False)
    c.on_connect = lambda cl, u, f, rc, p: cl.subscribe("estate/#", qos=1)
    c.on_subscribe = lambda *a: ready.set()
    if seen is not None:
        c.on_message = lambda cl, u, m: seen.add(json.loads(m.payload)["seq"])
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert ready.wait(10), "central could not subscribe"
    return c


def publish(port: int, n: int, window: int) -> list[float]:
    """Publish n QoS 1 events, at most ``window`` unacknowledged; the time of each PUBACK."""
    acked: list[float] = []
    done = threading.Event()
    room = threading.Semaphore(window)

    def on_publish(cl: Any, u: Any, mid: int, rc: Any, p: Any) -> None:
        acked.append(time.perf_counter())
        room.release()
        if len(acked) == n:
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-1")
    c.max_inflight_messages_set(0)
    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    pad = "x" * 200
    try:
        for seq in range(1, n + 1):
            room.acquire()
            c.publish(TOPIC, json.dumps({"id": f"e-{seq}", "seq": seq, "type": "gateway.test", "data": {"pad": pad}}),
                      qos=1)
        assert done.wait(600), f"only {len(acked)} of {n} acknowledged"
    finally:
        c.loop_stop()
        c.disconnect()
    return acked


def run_case(name: str, autosave: str, n: int, window: int, online: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-persist-") as tmp:
        port = free_port()
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                        f"persistence_location {tmp}/\nmax_queued_messages 1000000\nmax_inflight_messages 0\n"
                        f"{mosquitto_user_line()}{autosave}")
        broker = start(conf, port)
        seen: set[int] = set()
        first = central(port, seen if online else None)
        if not online:
            first.loop_stop()
            first.disconnect()
        t0 = time.perf_counter()
        acked = publish(port, n, window)
        tenth = max(1, n // 10)
        if online:
            try:
                wait_until(lambda: len(seen) >= n, 60, what="central keeping up")
            finally:
                first.loop_stop()
                first.disconnect()
        broker.kill()                       # kill -9 with everything acknowledged (and queued, for an offline central)
        broker.wait()
        db_bytes = (Path(tmp) / "mosquitto.db").stat().st_size if (Path(tmp) / "mosquitto.db").exists() else 0
        broker = start(conf, port)
        back = central(port, seen)
        try:
            wait_until(lambda: len(seen) >= n, 20, what="the queue") if db_bytes else None
        except AssertionError:
            pass
        finally:
            back.loop_stop()
            back.disconnect()
            broker.terminate()
            broker.wait(10)
        return {"case": name, "central": "online" if online else "offline (queue grows to n)",
                "config": autosave.strip().replace("\n", "; "), "n": n, "window": window,
                "msgs_per_s": round(n / (acked[-1] - t0)),
                "last_tenth_msgs_per_s": round(tenth / (acked[-1] - acked[-tenth - 1])) if n > tenth else None,
                "db_bytes_at_kill": db_bytes, "received": len(seen), "lost": n - len(seen)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--window", type=int, default=500)
    args = ap.parse_args()
    rows = []
    for online in (False, True):
        for name, autosave in CASES.items():
            row = run_case(name, autosave, args.n, args.window, online)
            print(json.dumps(row), flush=True)
            rows.append(row)
    out = write_results("broker_persistence", {"bench": "broker_persistence", "mosquitto": mosquitto_version(),
                                               "cases": rows})
    print(f"-> {out}")


def mosquitto_version() -> str:
    r = subprocess.run([Mosquitto.binary(), "-h"], capture_output=True, text=True)
    return (r.stdout or r.stderr).splitlines()[0]


if __name__ == "__main__":
    main()
