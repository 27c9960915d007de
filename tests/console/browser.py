"""Harness for the console's browser tests: one real daemon per test module, Debian's chromium.

The daemon runs as a subprocess with a real mosquitto, a simulated libosdp reader bus, the
pymodbus meter simulator and a DC-09 receiver the panel simulator talks to, so what the page
shows comes from the same paths as on site. Module-scoped: a module starts one broker, one
daemon and one browser, and its tests play one shift after another against them (a couple of
seconds each instead of a daemon start per test).

Chromium is the system one (``/usr/bin/chromium``); ``playwright install`` is never needed.
Screenshots go to tests/artifacts/ (gitignored); the ones the docs show are written to docs/screenshots/ only
when ``EGW_UPDATE_SHOTS=1`` is set (else to tests/artifacts/screenshots/): a test run leaves the checkout clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, GatewayProc, Mosquitto, free_port, two_osdp_readers_site, wait_until
from panels import send_dc09

from drivers.sim.osdp_reader import OsdpReaderSim

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
#: where the docs' screenshots go: docs/screenshots/ on request only (``EGW_UPDATE_SHOTS=1 make test``)
DOC_SHOTS = ROOT / "docs" / "screenshots" if os.environ.get("EGW_UPDATE_SHOTS") == "1" else ARTIFACTS / "screenshots"
DUTY_SCREEN = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="/usr/bin/chromium is not installed (make test installs it)")

ALARMS = """
[alarms]
handover_grace_s = 2

[[alarm_receivers]]
id = "duty-panel"
protocol = "sia-dc09"
listen = "127.0.0.1:{port}"
accounts = ["1234"]

[[alarm_zones]]
receiver = "duty-panel"
zone = 12
building = "3"
name = "B3 stairwell smoke"
unlock_doors = ["b3-main"]

[[alarm_zones]]
receiver = "duty-panel"
zone = 5
building = "3"
name = "B3 shop back door"
"""


class MeterSimThread:
    """The pymodbus meter simulator on its own loop (the daemon is a subprocess).

    Meter 1 has a valve that can restrict; meter 2's supply is cold (no hot water); meter 3 is silent."""

    def __init__(self) -> None:
        from drivers.modbus import load_profile
        from drivers.sim.meters import MeterSimulator

        generic = load_profile(ROOT / "config" / "meters" / "generic-hot-water.toml")
        restrict = load_profile(ROOT / "config" / "meters" / "generic-hot-water-restrict.toml")
        self.loop = asyncio.new_event_loop()
        self.sim = MeterSimulator(framing="tcp")
        self.m1 = self.sim.add(1, restrict, total_m3=321.5, flow_m3h=40.0)
        self.m2 = self.sim.add(2, generic, total_m3=88.0, flow_m3h=10.0, temp_c=21.0)
        self.m3 = self.sim.add(3, generic, fault="silent")
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def meters_toml(port: int) -> str:
    out = (f'[metering]\noffline_after = 2\nno_hot_water_after_s = 1\n[[buses]]\nid = "tcp-gw-1"\ntransport = "tcp"\n'
           f'port = "127.0.0.1:{port}"\ntimeout_s = 0.2\nretries = 0\n')
    for mid, dev, profile in (("hw-3-1-0101", 1, "generic-hot-water-restrict"), ("hw-3-1-0102", 2, "generic-hot-water"),
                              ("hw-5-2-0301", 3, "generic-hot-water")):
        out += (f'[[meters]]\nid = "{mid}"\nbus = "tcp-gw-1"\ndevice_id = {dev}\nprofile = "{profile}"\n'
                f'unit = "{mid[3:]}"\npoll_s = 0.5\n')
    return out


class Site:
    """One running site for a test module: broker, readers, meters, the daemon, the browser."""

    def __init__(self, workdir: Path, browser: Any) -> None:
        self.browser = browser
        self.broker = Mosquitto(workdir).start()
        self.readers = OsdpReaderSim([0, 1]).start()
        self.meters = MeterSimThread()
        self.panel_port = free_port()
        gwdir = workdir / "gw"
        gwdir.mkdir()
        extra = (two_osdp_readers_site(self.readers.url, output=1) + ALARMS.format(port=self.panel_port)
                 + meters_toml(self.meters.port))
        self.gw = GatewayProc(gwdir, self.broker.port, extra).start()

        def online() -> bool:
            r = self.gw.get("/api/v1/doors", role="operator")
            return r.status_code == 200 and all(d["reader_online"] for d in r.json()["items"])

        wait_until(online, 30, what="readers online")

    def stop(self) -> None:
        for step in (self.gw.stop, self.meters.stop, self.readers.stop, self.broker.stop):
            try:
                step()
            except Exception:  # the others still stop
                pass

    def spec(self) -> dict[str, Any]:
        r = self.gw.get("/api/v1/openapi.json")
        assert r.status_code == 200 and "paths" in r.json(), r.text[:200]
        return dict(r.json())

    def has_route(self, method: str, path: str) -> bool:
        """Does this build serve the route (areas built in parallel may not have landed yet)?"""
        return method.lower() in self.spec()["paths"].get(path, {})

    def allows(self, method: str, path: str, role: str) -> bool:
        """Does this build let ``role`` use the route (the roles are in the OpenAPI schema's security)?"""
        op = self.spec()["paths"].get(path, {}).get(method.lower())
        if op is None:
            return False
        return any(role in roles for sec in op.get("security", []) for roles in sec.values())

    def send_dc09(self, *payloads: str) -> None:
        send_dc09(self.panel_port, *payloads)


@contextlib.contextmanager
def running_site(workdir: Path) -> Iterator[Site]:
    """A site and a browser for one test module (each test module wraps this in its module-scoped fixture)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"])
        s = Site(workdir, browser)
        try:
            yield s
        finally:
            s.stop()
            browser.close()


def open_page(site: Site, role: str, viewport: dict[str, int], lang: str = "en", context: Any = None) -> Any:
    """A fresh browser context (or a given one) that logs in through the form, like a person would."""
    ctx = context or site.browser.new_context(viewport=viewport, locale="en-US" if lang == "en" else "zh-CN")
    page = ctx.new_page()
    page.set_default_timeout(20_000)  # generous: CI machines are slow and shared
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(f"{site.gw.url}/lang/{lang}")
    if page.url.endswith("/login"):
        page.fill("#token", site.gw.token(role))
        page.click("#login-submit")
    page.wait_for_selector("#live.on")
    return page


def fits_width(page: Any) -> bool:
    """Nothing sticks out sideways (a phone must not need horizontal scrolling)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def in_view(page: Any, selector: str) -> bool:
    """The element is on screen without scrolling (the page is at its top)."""
    return bool(page.evaluate("""(sel) => { window.scrollTo(0, 0); const r = document.querySelector(sel).getBoundingClientRect();
        return r.width > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }""", selector))


def shot(page: Any, name: str, *, doc: bool = False) -> None:
    """A screenshot in tests/artifacts/ (and in DOC_SHOTS for the ones the docs show)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"console-{name}.png"
    page.evaluate("() => { const t = document.getElementById('toast'); if (t) { t.style.transition = 'none'; t.className = 'toast'; } }")
    page.screenshot(path=str(path), full_page=False)
    if doc:
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_SHOTS / path.name)


#: words that may stand in a Chinese page: the language switch names English in English
ZH_PAGE_ALLOWED = {"English"}


def english_left(page: Any, site_words: list[str]) -> list[str]:
    """Latin words (2+ letters) on a Chinese page once the site's own data (ids, names from the config, card
    ids, token names) is taken out: each one is an untranslated label or an English fallback."""
    text = page.evaluate("document.body.innerText")
    for word in sorted(site_words, key=len, reverse=True):
        text = text.replace(word, " ")
    text = re.sub(r"\b\d+:[0-9a-f]+\b", " ", text)   # card ids (26:0a1b2c40)
    return sorted({w for w in re.findall(r"[A-Za-z_]{2,}(?:\.[a-z_]+)*", text) if w not in ZH_PAGE_ALLOWED})
