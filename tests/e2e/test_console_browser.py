"""The console in a real browser (Debian's chromium driven by Playwright) against the real daemon.

The daemon runs as a subprocess with a real mosquitto and a simulated libosdp reader bus,
so what the page shows comes from the same paths as on site: a swipe at the simulated
reader, the access component's decision, the event log, the SSE stream, the page.
Screenshots go to tests/artifacts/ (the best ones are copied to docs/screenshots/).
"""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import ROOT, free_port, two_osdp_readers_site, wait_until
from drivers.cards import wiegand_encode
from drivers.sim.osdp_reader import OsdpReaderSim

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
DUTY_SCREEN = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (make test installs it)"),
]

CARD_NEW = wiegand_encode("H10301", 21, 501)
EXTRA_CARDS = [wiegand_encode("H10301", 21, n) for n in (502, 503, 504)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


@pytest.fixture
def sim() -> Iterator[OsdpReaderSim]:
    s = OsdpReaderSim([0, 1]).start()
    yield s
    s.stop()


def site(sim: OsdpReaderSim) -> str:
    return two_osdp_readers_site(sim.url, output=1)


ALARMS = """
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

[[alarm_zones]]
receiver = "duty-panel"
zone = 5
building = "3"
name = "B3 shop back door"
"""


def send_dc09(port: int, *payloads: str) -> None:
    """The alarm panel reports over SIA DC-09 (ADM-CID payloads) until each block is ACKed."""
    from drivers.sim.alarm_panel import Dc09Panel

    async def main() -> None:
        panel = Dc09Panel("127.0.0.1", port, account="1234")
        try:
            for payload in payloads:
                assert await panel.send("ADM-CID", payload) == "ACK"
        finally:
            await panel.close()

    # Playwright's sync API keeps its own loop on this thread: the panel talks from another one
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "DC-09 panel did not finish"
    if errors:
        raise errors[0]


@pytest.fixture
def gw(gateway_factory: Any, sim: OsdpReaderSim) -> Any:
    panel_port = free_port()
    gw = gateway_factory(site(sim) + ALARMS.format(port=panel_port))
    gw.panel_port = panel_port

    def online() -> bool:
        r = gw.get("/api/v1/doors", role="operator")
        return r.status_code == 200 and all(d["reader_online"] for d in r.json()["items"])

    wait_until(online, 30, what="readers online")
    return gw


def open_page(browser: Any, gw: Any, role: str, viewport: dict[str, int], lang: str = "en") -> Any:
    """A fresh browser context that logs in through the form, like a person would."""
    ctx = browser.new_context(viewport=viewport, locale="en-US" if lang == "en" else "zh-CN")
    page = ctx.new_page()
    page.set_default_timeout(30_000)  # generous: CI machines are slow and shared
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(f"{gw.url}/lang/{lang}")
    assert page.url.endswith("/login")
    page.fill("#token", gw.token(role))
    page.click("#login-submit")
    page.wait_for_selector("#live.on")
    return page


def fits_width(page: Any) -> bool:
    """Nothing sticks out sideways (a phone must not need horizontal scrolling)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=False)


def test_operator_unlocks_a_door_and_sees_it_live(browser: Any, gw: Any, sim: OsdpReaderSim) -> None:
    page = open_page(browser, gw, "operator", DUTY_SCREEN)
    page.wait_for_selector('.door[data-door="b3-main"][data-state="closed"]')
    assert page.locator("#tab-tech").count() == 0 and page.locator("#enrol-form").count() == 0
    # device health shows both readers online
    page.wait_for_selector('.device.online[data-device="r-b3main"]')

    # unlock: a confirmation dialog first; cancelling does nothing
    page.click('.door[data-door="b3-main"] button.unlock')
    page.wait_for_selector("#confirm-dialog[open]")
    page.click("#confirm-cancel")
    page.click('.door[data-door="b3-main"] button.unlock')
    page.click("#confirm-ok")
    page.wait_for_selector('#activity li[data-type="door.unlocked"]')
    page.wait_for_selector('.door[data-door="b3-main"][data-state="unlocked"]')

    # a forced door turns red on the board without a reload
    sim.door(True, 0)
    page.wait_for_selector('.door[data-door="b3-u1"][data-state="forced"]')
    page.wait_for_selector('#activity li[data-type="door.forced"]')
    shot(page, "duty-1366")
    sim.door(False, 0)
    page.wait_for_selector('.door[data-door="b3-u1"][data-state="closed"]')
    audit = gw.get("/api/v1/audit?limit=1000", role="admin").json()["items"]
    assert any(a["action"] == "door.unlock" and a["target"] == "b3-main" and a["role"] == "operator" for a in audit)
    assert not page.errors  # type: ignore[attr-defined]


def test_alarm_appears_live_fire_on_top_and_is_acknowledged(browser: Any, gw: Any) -> None:
    page = open_page(browser, gw, "operator", DUTY_SCREEN)
    page.wait_for_selector("#alarms-empty:not(.hidden)")
    send_dc09(gw.panel_port, "1130 01 005")           # burglary, zone 5
    page.wait_for_selector('.alarm.unacked[data-kind="burglary"]')
    send_dc09(gw.panel_port, "1110 01 012")           # fire, zone 12: goes to the top
    page.wait_for_selector('.alarm.unacked[data-kind="fire"]')
    kinds = page.eval_on_selector_all("#alarm-list .alarm", "els => els.map(e => e.dataset.kind)")
    assert kinds[0] == "fire" and "burglary" in kinds
    assert "B3 stairwell smoke" in page.inner_text('.alarm[data-kind="fire"]')
    # unacknowledged alarms flash (a CSS animation)
    # (looked up and checked in one step: the list may be redrawn between two protocol calls)
    page.wait_for_function("""() => { const e = document.querySelector('.alarm.unacked[data-kind="fire"]');
                                      return e !== null && getComputedStyle(e).animationName === 'flash'; }""")
    page.wait_for_selector('.report-section.has-items[data-section="open_alarms"]')  # the handover caught up
    shot(page, "alarms-1366")
    # the browser lets the page sound once someone clicked (the button is the gesture)
    page.click("#sound-toggle")
    page.wait_for_selector("#sound-toggle.on")

    page.click('.alarm[data-kind="fire"] button.ack')
    page.fill("#ack-note", "guard sent to B3 stairwell")
    page.click("#confirm-ok")
    page.wait_for_selector('.alarm.acked[data-kind="fire"]')
    fire = page.get_attribute('.alarm[data-kind="fire"]', "data-alarm")
    alarm = gw.get(f"/api/v1/alarms/{fire}", role="operator").json()
    assert alarm["acked_by"] == "test-operator" and alarm["note"] == "guard sent to B3 stairwell"
    # the other operator's page saw the acknowledgement live too
    other = open_page(browser, gw, "operator", PHONE)
    other.wait_for_selector('.alarm.acked[data-kind="fire"]')
    other.wait_for_selector('.alarm.unacked[data-kind="burglary"]')
    shot(other, "alarms-phone")
    assert fits_width(other)

    # the handover form shows what is still open and records the shift change
    page.wait_for_selector('.report-section.has-items[data-section="open_alarms"]')
    page.fill("#handover-from", "Wang")
    page.fill("#handover-to", "Chen")
    page.fill("#handover-notes", "burglary zone 5 still open")
    page.click("#handover-submit")
    page.wait_for_selector('#activity li[data-type="shift.handover"]')
    assert not page.errors  # type: ignore[attr-defined]


def test_technician_enrols_by_swipe_and_verifies_each_door(browser: Any, gw: Any, sim: OsdpReaderSim) -> None:
    page = open_page(browser, gw, "technician", PHONE)
    # what a technician may not do is not on the page, and the API refuses it anyway
    assert page.locator("#door-board").count() == 0 and page.locator("button.unlock").count() == 0
    status = page.evaluate("""async () => (await fetch('/api/v1/doors/b3-main/unlock', {method: 'POST',
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': JSON.parse(
        document.getElementById('console-config').textContent).csrf}, body: '{}'})).status""")
    assert status == 403

    page.select_option("#enrol-door", "b3-main")
    page.fill("#enrol-unit", "3-1-0201")
    page.fill("#enrol-holder", "Li Na")
    page.select_option("#enrol-kind", "family")
    page.fill("#enrol-scope", "b3-main, b3-u1")
    page.click("#enrol-start")
    page.wait_for_selector('#enrol-status[data-state="waiting"]')
    shot(page, "enrol-waiting-phone")
    sim.swipe(CARD_NEW, 1)
    page.wait_for_selector('#enrol-status[data-state="done"]')
    assert CARD_NEW in page.inner_text("#enrol-status")
    page.wait_for_selector('.verify[data-door="b3-main"][data-verified="true"]')
    page.wait_for_selector('.verify[data-door="b3-u1"][data-verified="false"]')
    # carried to the unit door and swiped: that door turns verified live
    sim.swipe(CARD_NEW, 0)
    page.wait_for_selector('.verify[data-door="b3-u1"][data-verified="true"]')
    page.wait_for_selector("#verify-complete:not(.hidden)")
    shot(page, "verify-phone")

    # three more household cards: the unit is past its free cards and the page says so
    for card in EXTRA_CARDS:
        r = gw.post("/api/v1/cards", role="technician", json={
            "card": card, "unit": "3-1-0201", "holder": "x", "holder_kind": "resident", "doors": ["b3-u1"]})
        assert r.status_code == 201, r.text
    page.click("#cards-show")
    page.wait_for_selector('#cards-summary[data-count="4"]')
    assert page.is_visible("#cards-fee")

    # a lost card is revoked from the list (with confirmation), and the next swipe is denied
    page.click(f'button.revoke[data-card="{EXTRA_CARDS[0]}"]')
    page.click("#confirm-ok")
    page.wait_for_selector(f'.card-row.revoked[data-card="{EXTRA_CARDS[0]}"]')
    page.wait_for_selector('#cards-summary[data-count="3"]')
    shot(page, "cards-phone")
    assert fits_width(page)
    assert not page.errors  # type: ignore[attr-defined]


def test_temporary_worker_card_and_language_switch(browser: Any, gw: Any, sim: OsdpReaderSim) -> None:
    page = open_page(browser, gw, "technician", DUTY_SCREEN, lang="zh")
    assert "刷卡登记" in page.inner_text("#enrol-panel")
    page.select_option("#enrol-kind", "worker")
    assert page.is_visible("#worker-fields")
    page.select_option("#enrol-door", "b3-u1")
    page.fill("#enrol-unit", "3-1-0502")
    page.fill("#enrol-scope", "")
    page.fill("#enrol-from", "09:00")
    page.fill("#enrol-to", "17:00")
    page.click("#enrol-start")
    page.wait_for_selector('#enrol-status[data-state="waiting"]')
    worker = wiegand_encode("H10301", 21, 900)
    sim.swipe(worker, 0)
    page.wait_for_selector('#enrol-status[data-state="done"]')
    row = page.wait_for_selector(f'.card-row[data-card="{worker}"]')
    text = row.inner_text()
    assert "09:00-17:00" in text and re.search(r"\d+-\d\d \d\d:\d\d", text)  # hours and an expiry
    shot(page, "tech-zh-1366")
    page.click("#lang-switch")
    page.wait_for_selector("#live.on")
    assert "Enrol a card by swipe" in page.inner_text("#enrol-panel")


class MeterSimThread:
    """The pymodbus meter simulator on its own loop (the daemon is a subprocess)."""

    def __init__(self) -> None:
        from drivers.modbus import load_profile
        from drivers.sim.meters import MeterSimulator

        root = ROOT
        generic = load_profile(root / "config" / "meters" / "generic-hot-water.toml")
        self.loop = asyncio.new_event_loop()
        self.sim = MeterSimulator(framing="tcp")
        self.sim.add(1, generic, total_m3=321.5, flow_m3h=40.0)
        self.sim.add(2, generic, total_m3=88.0, flow_m3h=10.0)
        self.sim.add(3, generic, fault="silent")
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def meters_toml(port: int) -> str:
    out = (f'[metering]\noffline_after = 2\n[[buses]]\nid = "tcp-gw-1"\ntransport = "tcp"\n'
           f'port = "127.0.0.1:{port}"\ntimeout_s = 0.2\nretries = 0\n')
    for mid, dev in (("hw-3-1-0101", 1), ("hw-3-1-0102", 2), ("hw-5-2-0301", 3)):
        unit = mid[3:]
        out += (f'[[meters]]\nid = "{mid}"\nbus = "tcp-gw-1"\ndevice_id = {dev}\nprofile = "generic-hot-water"\n'
                f'unit = "{unit}"\npoll_s = 0.5\n')
    return out


def test_meters_view_with_chart_and_wrong_role(browser: Any, gateway_factory: Any) -> None:
    meters = MeterSimThread()
    try:
        gw = gateway_factory(meters_toml(meters.port))
        page = open_page(browser, gw, "central", DUTY_SCREEN)
        assert page.locator("#tab-duty").count() == 0 and page.locator("#tab-tech").count() == 0
        page.click("#tab-meters")
        page.wait_for_selector('.meter-row[data-meter="hw-3-1-0101"]')
        page.wait_for_selector('.meter-row[data-meter="hw-5-2-0301"] td.bad')  # the silent meter: offline
        assert page.locator(".building").count() == 2  # buildings 3 and 5
        wait_until(lambda: len(gw.get("/api/v1/console/meters/hw-3-1-0101/history", role="central")
                               .json()["items"]) >= 4, 30, what="a few readings")
        page.click('.meter-row[data-meter="hw-3-1-0101"]')
        page.wait_for_selector("#meter-chart svg.chart rect.bar")
        assert "321." in page.inner_text('.meter-row[data-meter="hw-3-1-0101"]')
        shot(page, "meters-1366")
    finally:
        meters.stop()


def test_wrong_role_cannot_reach_technician_routes(browser: Any, gw: Any) -> None:
    # an operator reaching for the technician's routes gets 403 from the API
    op = open_page(browser, gw, "operator", DUTY_SCREEN)
    status = op.evaluate("""async () => (await fetch('/api/v1/enrolments', {method: 'POST',
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': JSON.parse(
        document.getElementById('console-config').textContent).csrf},
        body: JSON.stringify({door: 'b3-u1', unit: '3-1-0201', holder_kind: 'resident', doors: []})})).status""")
    assert status == 403
