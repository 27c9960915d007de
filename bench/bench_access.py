"""Door access benchmark. Writes bench/results/access.json and prints a summary. Not part of `make test`.

1. decision: card id -> decision recorded (committed) -> relay command, in process, with 100,000 cards and
   500 doors (the relay command is captured where it would go to the OSDP bus). Target p99 < 2 ms.
2. osdp_swipe_to_output: a swipe on the simulated libosdp reader (TCP) until the reader has received the
   output (relay) command, through the real control panel. Target p50 < 80 ms (poll period ~50 ms).
0. bare_commit: the p99 of a bare SQLite commit (WAL, synchronous=FULL) on the same disk in the same run,
   so the decision p99 reads as a ratio to what the disk allows.
3. snapshot: `cards.snapshot` with 100,000 cards through the command path (JSON, validation, one
   transaction) in process; and the daemon's resident memory holding them (target < 5 s, < 100 MB).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from benchkit import summary, write_results  # noqa: E402

from conftest import GatewayProc, Mosquitto, make_config, mqtt_pub, wait_until  # noqa: E402

from drivers.cards import wiegand_encode  # noqa: E402
from drivers.sim.osdp_reader import OsdpReaderSim  # noqa: E402
from gateway.access import AccessComponent  # noqa: E402
from gateway.daemon import build_context, stop_context  # noqa: E402

CARDS = int(os.environ.get("CARDS", 100_000))
DOORS = int(os.environ.get("DOORS", 500))
SWIPES = int(os.environ.get("SWIPES", 2000))
OSDP_SWIPES = int(os.environ.get("OSDP_SWIPES", 200))



def snapshot_cards(n: int, facility: int = 1) -> list[dict[str, Any]]:
    return [{"card": wiegand_encode("H10304", facility, i), "unit": f"{i % 20 + 1}-{i % 4 + 1}-{i % 1000:04d}",
             "holder": f"Holder {i}", "holder_kind": "resident", "doors": [f"building:{i % 20 + 1}"],
             "valid_until": "2030-12-31"} for i in range(n)]


class RelayRecorder:
    """Stands where the OSDP bus would be (a drivers.reader.ReaderDriver): records when the relay command was issued."""

    relay = True

    def __init__(self) -> None:
        self.last_output = 0.0
        self.stats: dict[str, int] = {}

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def output(self, reader: str, number: int, **kw: Any) -> bool:
        self.last_output = time.perf_counter()
        return True

    def led(self, *a: Any, **kw: Any) -> bool:
        return True

    def buzzer(self, *a: Any, **kw: Any) -> bool:
        return True


def doors_toml(n: int) -> str:
    out = []
    for i in range(n):
        out.append(f'[[readers]]\nid = "r{i}"\ndriver = "osdp"\nport = "socket://127.0.0.1:1"\naddress = {i % 120}\n'
                   f'[[doors]]\nid = "d{i}"\nbuilding = "{i % 20 + 1}"\nreader = "r{i}"\n')
    # 120 PDs per port: unique (port, address)
    text = "\n".join(out)
    for i in range(n):
        text = text.replace(f'id = "r{i}"\ndriver = "osdp"\nport = "socket://127.0.0.1:1"',
                            f'id = "r{i}"\ndriver = "osdp"\nport = "socket://127.0.0.1:{1 + i // 120}"', 1)
    return text


async def bench_decisions(work: Path) -> dict[str, Any]:
    cfg = make_config(work, doors_toml(DOORS))
    access = AccessComponent()
    access.readers.start = lambda ctx: None  # type: ignore[method-assign]  # no buses: relay captured below
    ctx = await build_context(cfg, components=[access])
    try:
        from gateway.access import SnapshotArgs

        args = SnapshotArgs.model_validate({"rev": 1, "cards": snapshot_cards(CARDS)})
        await access.sync.apply_snapshot(1, args.cards)
        recorder = RelayRecorder()
        for r in cfg.readers:
            access.readers.driver_of[r.id] = recorder
            access.readers.online[r.id] = True
        cards = [c["card"] for c in args.cards]
        by_building: dict[str, list[Any]] = {}
        for d in cfg.doors:
            by_building.setdefault(d.building, []).append(d)
        granted, denied = [], []
        for i in range(SWIPES):
            j = (i * 7919) % len(cards)
            card = cards[j]
            choices = by_building[str(j % 20 + 1)]
            door = choices[i % len(choices)]
            t0 = time.perf_counter()
            reason = await access.card_read(door.reader, card)
            if reason is None:
                granted.append(recorder.last_output - t0)
            unknown = wiegand_encode("H10304", 9, i)
            t0 = time.perf_counter()
            await access.card_read(door.reader, unknown)
            denied.append(time.perf_counter() - t0)
        return {"cards": CARDS, "doors": DOORS, "granted_to_relay": summary(granted),
                "denied_recorded": summary(denied)}
    finally:
        await stop_context(ctx)


def bench_bare_commit(work: Path, n: int = 2000) -> dict[str, Any]:
    """The floor under a decision on this disk: one tiny row committed with the store's settings (WAL,
    ``synchronous=FULL``), no gateway code. The decision p99 reads as a ratio to this p99."""
    from gateway.store import connect

    conn = connect(work / "bare.db", synchronous="FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t(v) VALUES(?)", (f"row {i}",))
        conn.execute("COMMIT")
        lat.append(time.perf_counter() - t0)
    conn.close()
    return summary(lat)


async def bench_osdp(work: Path) -> dict[str, Any]:
    sim = OsdpReaderSim([0]).start()
    cfg = make_config(work, f'[[readers]]\nid = "r0"\ndriver = "osdp"\nport = "{sim.url}"\n'
                            f'[[doors]]\nid = "d0"\nbuilding = "1"\nreader = "r0"\nunlock_s = 1\n')
    ctx = await build_context(cfg, components=[AccessComponent()])
    access: AccessComponent = ctx.components["access"]
    got = threading.Event()
    received: list[float] = []

    def on_cmd(address: int, cmd: dict[str, Any]) -> None:
        if cmd["command"] == 1:
            received.append(time.monotonic())
            got.set()

    sim.on_command(on_cmd)
    try:
        deadline = time.monotonic() + 30
        while access.readers.online.get("r0") is not True and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        from gateway.access import CardIn

        card = wiegand_encode("H10301", 1, 1)
        await access.cards.issue_card(CardIn.model_validate({"card": card, "unit": "1-1-0101", "holder_kind": "resident",
                                                       "doors": ["*"]}), "bench", "admin")
        lat = []
        for _ in range(OSDP_SWIPES):
            got.clear()
            t0 = time.monotonic()
            sim.swipe(card)
            ok = await asyncio.to_thread(got.wait, 5)
            if ok:
                lat.append(received[-1] - t0)
            await asyncio.sleep(0.02)
        return {"swipes": OSDP_SWIPES, "answered": len(lat), **summary(lat)}
    finally:
        await stop_context(ctx)
        sim.stop()


async def bench_snapshot_in_process(work: Path) -> dict[str, Any]:
    cfg = make_config(work, '[[readers]]\nid = "r0"\ndriver = "osdp"\nport = "socket://127.0.0.1:1"\n'
                            '[[doors]]\nid = "d0"\nreader = "r0"\n')
    ctx = await build_context(cfg, components=[AccessComponent()])
    try:
        out: dict[str, Any] = {}
        access: AccessComponent = ctx.components["access"]
        probe = wiegand_encode("H10304", 1, 5)
        for rev in (1, 2):
            payload = json.dumps({"id": f"snap-{rev}", "args": {"rev": rev, "cards": snapshot_cards(CARDS, rev)}})
            t0 = time.perf_counter()
            task = asyncio.ensure_future(ctx.commands.handle("cards.snapshot", payload))
            swipes = []
            while rev == 2 and not task.done():  # doors keep working while the register is replaced
                s0 = time.perf_counter()
                await access.card_read("r0", probe)
                swipes.append(time.perf_counter() - s0)
                await asyncio.sleep(0.02)
            res = await task
            dt = time.perf_counter() - t0
            assert res["ok"], res
            out[f"{'first' if rev == 1 else 'replace'}_s"] = round(dt, 2)
            if swipes:
                out["swipes_during_replace"] = summary(swipes)
        out["payload_mb"] = round(len(payload) / 1e6, 1)
        out["cards"] = CARDS
        return out
    finally:
        await stop_context(ctx)


def bench_daemon_rss(work: Path) -> dict[str, Any]:
    broker = Mosquitto(work).start()
    gw = GatewayProc(work, broker.port, '[[readers]]\nid = "r0"\ndriver = "osdp"\nport = "socket://127.0.0.1:1"\n'
                                        '[[doors]]\nid = "d0"\nreader = "r0"\n')
    gw.start()
    try:
        proc = psutil.Process(gw.proc.pid)  # type: ignore[union-attr]
        idle = proc.memory_info().rss / 1e6
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        results: list[dict[str, Any]] = []
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-access")
        sub.on_message = lambda c, u, m: results.append(json.loads(m.payload))
        sub.connect("127.0.0.1", broker.port)
        sub.subscribe(f"{gw.topic_root}/cmd-result", qos=1)
        sub.loop_start()
        time.sleep(0.5)
        body = json.dumps({"id": "bench-snap", "args": {"rev": 1, "cards": snapshot_cards(CARDS)}}).encode()
        t0 = time.monotonic()
        mqtt_pub(broker.port, f"{gw.topic_root}/cmd/cards.snapshot", body)
        wait_until(lambda: results, 120, what="snapshot result")
        dt = time.monotonic() - t0
        peak = proc.memory_info().rss / 1e6
        time.sleep(3)
        sub.loop_stop()
        return {"rss_idle_mb": round(idle, 1), "rss_with_cards_mb": round(proc.memory_info().rss / 1e6, 1),
                "rss_at_result_mb": round(peak, 1),
                "snapshot_over_mqtt_s": round(dt, 2), "ok": results[0].get("ok"), "cards": CARDS}
    finally:
        gw.stop()
        broker.stop()


def main() -> dict[str, Any]:
    res: dict[str, Any] = {"load_avg_1m_at_start": round(os.getloadavg()[0], 1)}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        bare = base / "bare_commit"
        bare.mkdir()
        res["bare_commit"] = bench_bare_commit(bare)
        print(f"bare_commit: {res['bare_commit']}", flush=True)
        for name, fn in (("decision", bench_decisions), ("osdp_swipe_to_output", bench_osdp),
                         ("snapshot", bench_snapshot_in_process)):
            work = base / name
            work.mkdir()
            res[name] = asyncio.run(fn(work))
            print(f"{name}: {res[name]}", flush=True)
        if Path("/dev/shm").is_dir():
            # the same decisions with the database on tmpfs: the software path without the disk's fsync
            with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
                res["decision_tmpfs"] = asyncio.run(bench_decisions(Path(shm)))
                print(f"decision_tmpfs: {res['decision_tmpfs']}", flush=True)
        work = base / "daemon"
        work.mkdir()
        res["daemon_memory"] = bench_daemon_rss(work)
        print(f"daemon_memory: {res['daemon_memory']}", flush=True)
    floor = res["bare_commit"]["p99_ms"]
    res["decision_p99_over_bare_commit_p99"] = round(res["decision"]["granted_to_relay"]["p99_ms"] / floor, 2) \
        if floor else None
    res["targets"] = {"decision_p99_ms": 2, "osdp_p50_ms": 80, "snapshot_s": 5, "rss_mb": 100}
    res["machine"] = {"cpus": psutil.cpu_count(), "python": sys.version.split()[0],
                      "load_avg_1m_at_end": round(os.getloadavg()[0], 1)}
    return res


if __name__ == "__main__":
    result = main()
    out = write_results("access", result)
    d, o, s, m = (result["decision"]["granted_to_relay"], result["osdp_swipe_to_output"], result["snapshot"],
                  result["daemon_memory"])
    print(f"\ndecision p50/p99 {d['p50_ms']}/{d['p99_ms']} ms (target p99 < 2) | OSDP swipe->output p50 "
          f"{o['p50_ms']} ms (target < 80) | snapshot {s['first_s']}/{s['replace_s']} s (target < 5) | "
          f"RSS {m['rss_with_cards_mb']} MB (target < 100) | bare FULL commit p99 {result['bare_commit']['p99_ms']} ms "
          f"(decision p99 = {result['decision_p99_over_bare_commit_p99']}x)\nwrote {out}")
