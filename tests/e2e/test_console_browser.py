"""The operator's shift in a real browser (Debian's chromium driven by Playwright) against the real daemon.

One daemon for the module (tests/console/browser.py): a real mosquitto, a simulated libosdp reader
bus, the pymodbus meter simulator, and the DC-09 panel simulator sending ADM-CID blocks. The tests
run in order, like a shift: sound on and remembered, a fire arriving while the Meters tab is open
(banner, Duty tab marked), acknowledging with a note (an empty note explained in the dialog), the
door the fire released with its cause and a relock (confirmed while the fire is active), the
handover form on screen at 1366x768, the missed-handover and uplink-down banners; then the same
duty room in Chinese on a phone with no English left on the page; central and wrong roles last.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import wait_until
from playwright.sync_api import expect
from console.browser import (
    DUTY_SCREEN,
    PHONE,
    Site,
    english_left,
    fits_width,
    in_view,
    needs_chromium,
    open_page,
    running_site,
    shot,
)

from drivers.cards import wiegand_encode
from gateway.api.i18n import CATALOGUE

pytestmark = [pytest.mark.timeout(120), needs_chromium]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One broker, reader bus, meter simulator, daemon and browser for the whole module."""
    with running_site(tmp_path_factory.mktemp("site")) as s:
        yield s


#: the site's own words (from the test config): left out when looking for English on the Chinese page
SITE_WORDS = ["test-site", "gw-test", "test-operator", "test-technician", "test-central", "b3-u1", "b3-main",
              "r-b3u1", "r-b3main", "duty-panel", "tcp-gw-1", "hw-3-1-0101", "hw-3-1-0102", "hw-5-2-0301",
              "Building 3 unit 1 entrance", "Building 3 main gate", "B3 stairwell smoke", "B3 shop back door",
              "guard sent to B3 stairwell", "false alarm confirmed by the guard", "Wang", "Chen",
              "burglary zone 5 still open"]
RAW_CODE = re.compile(r"\b(?:access|door|card|meter|alarm|device|gateway|shift)\.[a-z_]+\b")



def count(page: Any, selector: str, n: int) -> None:
    """Wait until ``selector`` matches ``n`` elements. Through Playwright's own selector engine: the console's CSP
    (script-src 'self') refuses the string eval ``wait_for_function`` may poll with (seen once on CI)."""
    expect(page.locator(selector)).to_have_count(n, timeout=20_000)

def test_operator_shift_fire_on_another_tab(site: Site) -> None:
    page = open_page(site, "operator", DUTY_SCREEN)
    page.wait_for_selector('.door[data-door="b3-main"][data-state="closed"]')
    page.wait_for_selector('.device.online[data-device="r-b3main"]')
    # the gateway started less than the grace ago with no handover recorded: the missed-handover banner
    page.wait_for_selector("#missed-banner:not(.hidden)")
    # an operator's page has the register (to revoke a lost card) but no enrolment
    assert page.locator("#tab-cards").count() == 1 and page.locator("#enrol-form").count() == 0

    # sound: enabled once, still on after a reload (remembered)
    page.click("#sound-toggle")
    page.wait_for_selector('#sound-toggle[data-sound="on"]')
    page.reload()
    page.wait_for_selector("#live.on")
    page.wait_for_selector('#sound-toggle[data-sound="on"]')
    # "Latest events" is filled after the reload, in words (no raw event codes)
    page.wait_for_selector("#activity li")
    activity = page.inner_text("#activity")
    assert "Gateway started" in activity and not RAW_CODE.search(activity), activity

    # a fire arrives while the operator looks at the meters
    page.click("#tab-meters")
    page.wait_for_selector('.meter-row[data-meter="hw-3-1-0101"]')
    site.send_dc09("1130 01 005")           # burglary, zone 5
    page.wait_for_selector('#alarm-banner[data-kind="burglary"]')
    site.send_dc09("1110 01 012")           # fire, zone 12 (releases b3-main)
    banner = page.wait_for_selector('#alarm-banner.fire[data-kind="fire"]')
    assert page.is_visible("#view-meters") and banner.is_visible()
    text = banner.inner_text()
    assert "Fire" in text.title() and "B3 stairwell smoke" in text and "1 more unacknowledged" in text, text
    page.wait_for_selector("#tab-duty.alert.fire .tab-badge")
    assert page.inner_text("#tab-duty .tab-badge") == "2"
    assert page.evaluate("getComputedStyle(document.getElementById('alarm-banner')).animationName") == "banner-fire"
    shot(page, "fire-on-meters-tab-1366", doc=True)

    # fire and burglary look different, not only by their label
    page.click("#tab-duty")
    weights = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.alarm.unacked')].map(e =>
        [e.dataset.kind, getComputedStyle(e).animationName + '/' + getComputedStyle(e).borderLeftWidth]))""")
    assert weights["fire"] == "flash-fire/12px" and weights["burglary"].startswith("flash/"), weights
    count(page, '[data-section="open_alarms"] li', 2)
    shot(page, "alarms-1366", doc=True)

    # the banner leads to the acknowledgement; an empty note is explained in the dialog, which stays open
    page.click("#tab-meters")
    page.click("#alarm-banner-go")
    page.wait_for_selector("#confirm-dialog[open] #ack-note")
    assert page.is_visible("#view-duty")
    page.click("#confirm-ok")
    page.wait_for_selector("#confirm-error:not(.hidden)")
    assert "Write what was done" in page.inner_text("#confirm-error") and page.is_visible("#confirm-dialog[open]")
    page.fill("#ack-note", "guard sent to B3 stairwell")
    page.click("#confirm-ok")
    ack = page.wait_for_selector('.alarm.acked[data-kind="fire"] .alarm-ack')
    assert "test-operator" in ack.inner_text() and "guard sent to B3 stairwell" in ack.inner_text()
    page.wait_for_selector('#alarm-banner[data-kind="burglary"]')   # the next most urgent one
    fire = page.get_attribute('.alarm[data-kind="fire"]', "data-alarm")
    assert gw_alarm(site, fire)["note"] == "guard sent to B3 stairwell"

    # a stranger's card at the unit entrance: counted in the handover report by door and reason, in words
    site.readers.swipe(wiegand_encode("H10301", 9, 999), 0)
    swipes = page.wait_for_selector('.report-section.has-items[data-section="failed_swipes"]')
    assert "Building 3 unit 1 entrance · unknown card · ×1" in swipes.inner_text()
    count(page, '[data-section="open_alarms"] li', 2)

    # the door the fire released: its cause, and Relock instead of Unlock
    door = page.wait_for_selector('.door[data-door="b3-main"][data-state="unlocked"]')
    assert door.query_selector("button.relock") and not door.query_selector("button.unlock")
    hold = page.wait_for_selector('.door[data-door="b3-main"] .door-hold')
    assert f"#{fire}" in hold.inner_text() and "fire still active" in hold.inner_text()
    shot(page, "fire-door-held-1366", doc=True)
    page.click('.door[data-door="b3-main"] button.relock')
    page.click("#confirm-ok")                                  # no reason: said in words
    assert "Say why" in page.inner_text("#confirm-error")
    page.fill("#relock-reason", "false alarm confirmed by the guard")
    page.click("#confirm-ok")                                  # the fire is active: confirm first
    assert "tick the confirmation" in page.inner_text("#confirm-error")
    page.check("#relock-confirm")
    page.click("#confirm-ok")
    page.wait_for_selector('.door[data-door="b3-main"] button.unlock')
    audit = site.gw.get("/api/v1/audit?limit=1000", role="admin").json()["items"]
    assert any(a["action"] == "door.relock" and a["target"] == "b3-main" for a in audit)

    # the handover form is on screen at 1366x768 (with the banners shown), and recording it ends the missed one
    page.wait_for_selector('.report-section.has-items[data-section="handover_missed"]')
    # the report caught up with the ack and the relock
    count(page, '[data-section="open_alarms"] li', 2)
    count(page, '[data-section="unacknowledged_alarms"] li', 1)
    count(page, '[data-section="doors"] li', 1)
    assert in_view(page, "#handover-submit")
    # no handover on record yet: the report says from when its "since the last handover" parts count (24 h)
    assert "The \u201csince the last handover\u201d parts cover from" in page.inner_text("#handover-covers")
    shot(page, "duty-1366", doc=True)
    page.fill("#handover-from", "Wang")
    page.fill("#handover-to", "Chen")
    page.fill("#handover-notes", "burglary zone 5 still open")
    page.click("#handover-submit")
    page.wait_for_selector('#activity li[data-type="shift.handover"]')
    page.wait_for_selector("#missed-banner.hidden", state="attached")
    page.wait_for_selector("#handover-covers", state="detached")   # now they count from the handover itself

    # a card lost at night: the duty room finds it in the register and revokes it at once
    lost = wiegand_encode("H10301", 21, 777)
    r = site.gw.post("/api/v1/cards", role="technician", json={
        "card": lost, "unit": "3-1-0301", "holder": "x", "holder_kind": "resident", "doors": ["b3-u1"]})
    assert r.status_code == 201, r.text
    page.click("#tab-cards")
    page.fill("#cards-unit", "3-1-0301")
    page.click("#cards-show")
    page.wait_for_selector(f'.card-row.active[data-card="{lost}"] button.revoke')
    assert site.allows("post", "/api/v1/cards/{card}/revoke", "operator")
    page.click(f'button.revoke[data-card="{lost}"]')
    page.select_option("#revoke-reason", "lost")
    page.click("#confirm-ok")
    assert "Lost" in page.wait_for_selector(f'.card-row.revoked[data-card="{lost}"]').inner_text()

    # the uplink to central goes down: a banner says so on every tab, and goes when it is back
    site.broker.stop()
    try:
        page.click("#tab-meters")
        page.wait_for_selector("#uplink-banner:not(.hidden)")
        assert "Uplink to the service centre is down" in page.inner_text("#uplink-banner")
        # what waits, and for how long: the oldest undelivered event's age (issue 21)
        assert site.gw.post("/api/v1/test-events", json={"count": 1}).status_code == 202
        expect(page.locator("#uplink-banner")).to_contain_text("the oldest has waited", timeout=20_000)
        shot(page, "uplink-down-1366")
    finally:
        site.broker.start()
    page.wait_for_selector("#uplink-banner.hidden", state="attached", timeout=40_000)
    assert not page.errors  # type: ignore[attr-defined]


LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


def test_a_store_that_cannot_write_shows_a_banner_until_it_can(site: Site) -> None:
    """/health answers 503 "degraded" while another process holds the database's write lock: the duty view
    reads that answer (it does not go blank), says so on every tab, and the banner goes when writes succeed."""
    import subprocess
    import sys
    import threading

    import httpx

    page = open_page(site, "operator", DUTY_SCREEN)
    page.wait_for_selector('.device.online[data-device="r-b3main"]')
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(site.gw.data_dir / "gateway.db")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        # a write waits on the lock, fails, and the store says so (the request itself may wait or be refused)
        threading.Thread(target=lambda: httpx.post(f"{site.gw.url}/api/v1/test-events", json={"count": 1},
                                                   headers=site.gw.headers("admin"), timeout=120),
                         daemon=True).start()
        page.click("#tab-meters")
        page.wait_for_selector("#store-banner:not(.hidden)", timeout=90_000)
        assert "cannot write" in page.inner_text("#store-banner")
        assert "locked" in page.inner_text("#store-banner-detail")
        shot(page, "store-degraded-1366")
        page.click("#tab-duty")
        # the device list still shows while /health answers 503
        page.wait_for_selector('.device.online[data-device="r-b3main"]')
    finally:
        locker.communicate("go\n", timeout=30)
    page.wait_for_selector("#store-banner.hidden", state="attached", timeout=60_000)
    assert not page.errors  # type: ignore[attr-defined]


def gw_alarm(site: Site, alarm_id: str | None) -> dict[str, Any]:
    r = site.gw.get(f"/api/v1/alarms/{alarm_id}", role="operator")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_duty_room_in_chinese_on_a_phone(site: Site) -> None:
    """The same duty room in Chinese at 390x844: nothing left in English, nothing sticking out sideways."""
    page = open_page(site, "operator", PHONE, lang="zh")
    page.wait_for_selector('#alarm-banner[data-kind="burglary"]')
    assert "入侵" in page.inner_text("#alarm-banner")
    page.wait_for_selector('.alarm.acked[data-kind="fire"]')
    assert "火灾报警" in page.inner_text('.alarm[data-kind="fire"]')   # the code's text, not "Fire"
    page.wait_for_selector("#activity li")
    page.wait_for_selector(".report-section")
    assert fits_width(page)
    assert page.evaluate("document.getElementById('top').getBoundingClientRect().height") < 0.25 * PHONE["height"]
    shot(page, "duty-zh-phone", doc=True)
    left = english_left(page, SITE_WORDS)
    assert not left, f"English on the Chinese duty view: {left}"
    for tab, ready in (("#tab-meters", ".meter-row"), ("#tab-cards", "#cards-form")):
        page.click(tab)
        page.wait_for_selector(ready)
        left = english_left(page, SITE_WORDS)
        assert not left, f"English on the Chinese page ({tab}): {left}"
    # the uplink: the node in use (host:port only) and the failovers, under Chinese labels (issue 19)
    page.click("#tab-duty")
    uplink = page.wait_for_selector("#uplink-node")
    assert uplink.inner_text() == f"127.0.0.1:{site.broker.port}" and page.inner_text("#uplink-failovers") == "0"
    assert "当前服务器节点" in page.inner_text("#uplink") and "节点切换次数" in page.inner_text("#uplink")
    # a reader bus cut: the readers' reason is its code's Chinese text, not the driver's English (issue 21)
    site.readers.unplug()
    try:
        li = page.wait_for_selector('.device.offline[data-device="r-b3main"]:not([data-reason-code=""])',
                                    timeout=40_000)
        code = li.get_attribute("data-reason-code")
        zh = CATALOGUE[f"why.{code}"][0].split("{")[0]
        assert zh and zh in li.inner_text() and zh in (li.get_attribute("title") or ""), (code, li.inner_text())
    finally:
        site.readers.plug()
    wait_until(lambda: all(d["reader_online"] for d in site.gw.get("/api/v1/doors", role="operator").json()["items"]),
               40, what="readers back online")
    assert not page.errors  # type: ignore[attr-defined]
    # the fire is restored at the panel: the next shift starts clean
    site.send_dc09("3110 01 012", "3130 01 005")


def test_central_sees_meters_only_and_roles_are_enforced(site: Site) -> None:
    page = open_page(site, "central", DUTY_SCREEN)
    assert page.locator("#tab-duty").count() == 0 and page.locator("#tab-tech").count() == 0
    assert page.locator("#tab-cards").count() == 0 and page.locator("#alarm-banner").count() == 0
    page.click("#tab-meters")
    page.wait_for_selector('.meter-row[data-meter="hw-5-2-0301"] td.bad')   # the silent meter: offline
    page.wait_for_selector('.meter-row[data-meter="hw-3-1-0102"] .fault[data-fault="no_hot_water"]')
    assert page.locator(".building").count() == 2 and page.locator("button.valve-close").count() == 0
    wait_until(lambda: len(site.gw.get("/api/v1/console/meters/hw-3-1-0101/history", role="central")
                           .json()["items"]) >= 4, 30, what="a few readings")
    page.click('.meter-row[data-meter="hw-3-1-0101"]')
    page.wait_for_selector("#meter-chart svg.chart rect.bar")
    # an operator reaching for the technician's routes gets 403 from the API
    op = open_page(site, "operator", DUTY_SCREEN)
    status = op.evaluate("""async () => (await fetch('/api/v1/enrolments', {method: 'POST',
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': JSON.parse(
        document.getElementById('console-config').textContent).csrf},
        body: JSON.stringify({door: 'b3-u1', unit: '3-1-0201', holder_kind: 'resident', doors: ['b3-u1']})})).status""")
    assert status == 403
    assert not page.errors and not op.errors  # type: ignore[attr-defined]
