"""Console benchmark. Writes bench/results/console.json and prints a summary. Not part of `make test`.

Everything runs against the real daemon (subprocess), a real mosquitto and the DC-09 panel simulator.

1. dc09_to_sse: a DC-09 alarm block sent by the panel simulator until the operator's SSE stream
   delivers its alarm.raised (the path the duty page is fed by). Target p99 < 1 s (the issue's bound).
2. dc09_to_browser: the same, until the alarm's row is in the page's DOM in a real chromium
   (MutationObserver timestamp); skipped without /usr/bin/chromium.
3. fanout: 50 pages connected; 500 events recorded in a burst; latency from each event's commit
   timestamp to its arrival at every page, and whether every page got every event.
4. page_ready: login cookie set -> GET / -> stream open (#live.on) in chromium.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from benchkit import summary, write_results  # noqa: E402

from conftest import GatewayProc, Mosquitto, free_port, wait_until  # noqa: E402

from drivers.sim.alarm_panel import Dc09Panel  # noqa: E402

ALARMS = int(os.environ.get("ALARMS", 100))
BROWSER_ALARMS = int(os.environ.get("BROWSER_ALARMS", 30))
PAGES = int(os.environ.get("PAGES", 50))
BURST = int(os.environ.get("BURST", 500))
CHROMIUM = Path("/usr/bin/chromium")


class Stream:
    """One SSE client in a thread: (arrival time, event) for each ``ev`` message."""

    def __init__(self, url: str, token: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=None)
        self.client.post("/login", data={"token": token})
        self.got: list[tuple[float, dict[str, Any]]] = []
        self.open = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        assert self.open.wait(10)

    def _run(self) -> None:
        try:
            with self.client.stream("GET", "/api/v1/stream") as r:
                self.open.set()
                for line in r.iter_lines():
                    if line.startswith("data:") and '"seq"' in line:
                        self.got.append((time.time(), json.loads(line[5:])))
        except httpx.HTTPError:
            pass

    def close(self) -> None:
        self.client.close()


class PanelThread:
    """The DC-09 panel simulator on its own loop (it is asyncio; the bench is threads)."""

    def __init__(self, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.panel = Dc09Panel("127.0.0.1", port, account="1234")

    def send(self, payload: str) -> str:
        return asyncio.run_coroutine_threadsafe(self.panel.send("ADM-CID", payload), self.loop).result(30)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.panel.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def site(panel_port: int) -> str:
    return (f'[[alarm_receivers]]\nid = "duty-panel"\nprotocol = "sia-dc09"\nlisten = "127.0.0.1:{panel_port}"\n'
            f'accounts = ["1234"]\n')


def bench_dc09_to_sse(gw: GatewayProc, panel: PanelThread, zones: range) -> dict[str, Any]:
    stream = Stream(gw.url, gw.token("operator"))
    lat = []
    try:
        for zone in zones:
            seen = len(stream.got)
            t0 = time.time()
            assert panel.send(f"1130 01 {zone:03d}") == "ACK"
            arrived = wait_until(lambda: next((t for t, ev in stream.got[seen:] if ev["type"] == "alarm.raised"
                                               and ev["data"]["zone"] == zone), None), 10, 0.001)
            lat.append(arrived - t0)
    finally:
        stream.close()
    return summary(lat)


def bench_fanout(gw: GatewayProc) -> dict[str, Any]:
    streams = [Stream(gw.url, gw.token("admin")) for _ in range(PAGES)]
    time.sleep(0.5)
    t0 = time.time()
    r = httpx.post(f"{gw.url}/api/v1/test-events", headers=gw.headers("admin"), json={"count": BURST}, timeout=10)
    assert r.status_code == 202
    wait_until(lambda: all(sum(1 for _, e in s.got if e["type"] == "gateway.test") >= BURST for s in streams), 60)
    done = time.time() - t0
    lat = []
    complete = True
    for s in streams:
        seqs = [e["seq"] for _, e in s.got if e["type"] == "gateway.test"]
        complete &= len(seqs) == BURST and seqs == sorted(seqs)
        for t, e in s.got:
            if e["type"] == "gateway.test":
                committed = datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()
                lat.append(max(0.0, t - committed))
    for s in streams:
        s.close()
    return {"pages": PAGES, "events": BURST, "every_page_got_every_event_in_order": complete,
            "burst_done_s": round(done, 3), "commit_to_page": summary(lat)}


def bench_browser(gw: GatewayProc, panel: PanelThread, zones: range) -> dict[str, Any]:
    if not CHROMIUM.exists():
        return {"skipped": "no /usr/bin/chromium"}
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        page = ctx.new_page()
        ready = []
        for i in range(10):
            if i == 0:
                page.goto(f"{gw.url}/login")
                page.fill("#token", gw.token("operator"))
                t0 = time.time()
                page.click("#login-submit")
            else:
                t0 = time.time()
                page.goto(f"{gw.url}/")
            page.wait_for_selector("#live.on")
            ready.append(time.time() - t0)
        out["page_ready"] = summary(ready)
        page.evaluate("""() => { window.__seen = {};
            new MutationObserver(() => { for (const e of document.querySelectorAll('.alarm')) {
                const z = e.querySelector('.alarm-where').textContent;
                if (!(z in window.__seen)) window.__seen[z] = Date.now(); } })
              .observe(document.getElementById('alarm-list'), {childList: true, subtree: true}); }""")
        lat = []
        for zone in zones:
            t0 = time.time()
            assert panel.send(f"1110 01 {zone:03d}") == "ACK"
            key = f"Zone {zone}"
            page.wait_for_function("k => Object.keys(window.__seen).some(z => z.includes(k))", arg=key + "", timeout=10000)
            seen = page.evaluate("k => Object.entries(window.__seen).find(([z]) => z.includes(k))[1]", key)
            lat.append(seen / 1000 - t0)
        out["dc09_to_browser"] = summary(lat)
        browser.close()
    return out


def main() -> None:
    results: dict[str, Any] = {"cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work).start()
        panel_port = free_port()
        gw = GatewayProc(work, broker.port, site(panel_port)).start()
        panel = PanelThread(panel_port)
        try:
            results["dc09_to_sse"] = bench_dc09_to_sse(gw, panel, range(1, ALARMS + 1))
            results.update(bench_browser(gw, panel, range(ALARMS + 1, ALARMS + 1 + BROWSER_ALARMS)))
            results["fanout"] = bench_fanout(gw)
        finally:
            panel.close()
            gw.stop()
            broker.stop()
    write_results("console", results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
