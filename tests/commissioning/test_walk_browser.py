"""The commissioning page in a real browser (Debian's chromium, Playwright) against the real daemon.

One daemon for the module (tests/console/browser.py: libosdp readers, pymodbus meters, a DC-09 receiver).
A technician on a phone starts a walk of building 3 from the page, sees the readers and the answering meter
turn "seen" by themselves, a door's contact seen as the simulated door opens and closes, marks a step not
applicable with a reason (an empty reason is refused in words); the same walk on the duty-room screen in
Chinese without English left on it; an operator follows without the buttons; the finish prints the report
(a PDF through the browser's print). Screenshots: commissioning-*.png in DOC_SHOTS (tests/artifacts/screenshots/,
or docs/screenshots/ with ``EGW_UPDATE_SHOTS=1``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import wait_until
from console.browser import (
    DOC_SHOTS,
    DUTY_SCREEN,
    PHONE,
    Site,
    english_left,
    fits_width,
    needs_chromium,
    open_page,
    running_site,
)

pytestmark = [pytest.mark.timeout(120), needs_chromium]

SITE_WORDS = ["test-site", "gw-test", "test-technician", "test-operator", "b3-u1", "b3-main", "r-b3u1", "r-b3main",
              "duty-panel/12", "duty-panel/5", "duty-panel", "hw-3-1-0101", "hw-3-1-0102", "3-1-0101", "3-1-0102",
              "Building 3 unit 1 entrance", "Building 3 main gate", "B3 stairwell smoke", "B3 shop back door",
              "total_m3", "flow_m3h", "temp_c", "closed", "open"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with running_site(tmp_path_factory.mktemp("site")) as s:
        yield s


def walk_page(site: Site, role: str, viewport: dict[str, int], lang: str) -> Any:
    page = open_page(site, role, viewport, lang)
    page.click("#commissioning-link")
    page.wait_for_selector("#runs h2")
    page.wait_for_load_state("networkidle")
    return page


def doc_shot(page: Any, name: str, *, full: bool = False, at: str = "#run") -> None:
    DOC_SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("(sel) => { const n = document.querySelector(sel); if (n) n.scrollIntoView(); }", at)
    page.evaluate("() => { const t = document.getElementById('toast'); if (t) { t.style.transition = 'none'; t.className = 'toast'; } }")
    page.screenshot(path=str(DOC_SHOTS / f"commissioning-{name}.png"), full_page=full)


def step(page: Any, device: str, name: str) -> Any:
    return page.locator(f'article[data-device="{device}"] li[data-step="{name}"]')


def test_technician_walks_building_3_on_a_phone_then_at_the_desk(site: Site) -> None:
    page = walk_page(site, "technician", PHONE, "en")
    page.select_option("#scope", "building")
    page.fill("#buildings", "3")
    page.fill("#note", "lobby works handed over")
    page.click("#start")
    page.wait_for_selector("#run:not(.hidden)")
    run_id = int(page.evaluate("location.hash.match(/run=(\\d+)/)[1]"))
    # seen by the gateway itself: readers online, a reading in range
    step(page, "r-b3u1", "online").locator(".pill.status-done").wait_for()
    step(page, "hw-3-1-0101", "reading").locator(".pill.status-done").wait_for()
    # the door's contact: opened and closed at the reader
    site.readers.door(True, 0)
    site.readers.door(False, 0)
    step(page, "b3-u1", "contact").locator(".pill.status-done").wait_for()
    # a reason is required to mark; then the step shows it
    step(page, "b3-main", "held_open").locator(".mark-na").click()
    page.click("#mark-ok")
    page.wait_for_selector("#mark-error:not(.hidden)")
    assert "reason" in page.inner_text("#mark-error").lower()
    page.fill("#mark-reason", "gate has no closer yet")
    page.click("#mark-ok")
    step(page, "b3-main", "held_open").locator(".pill.status-na").wait_for()
    assert "gate has no closer yet" in step(page, "b3-main", "held_open").inner_text()
    assert not step(page, "b3-u1", "contact").locator("button").count()  # nothing to mark on a seen step
    assert "Building 3" in page.inner_text("#run-buildings") and "left" in page.inner_text("#run-buildings")
    assert fits_width(page)
    doc_shot(page, "phone-en")
    assert page.errors == []

    # the same walk at the duty-room screen, in Chinese
    desk = walk_page(site, "technician", DUTY_SCREEN, "zh")
    desk.click(f'#run-list a[href="#run={run_id}"]')
    step(desk, "b3-main", "held_open").locator(".pill.status-na").wait_for()
    assert "剩余" in desk.inner_text("#run-buildings")
    assert english_left(desk, SITE_WORDS + ["lobby works handed over", "gate has no closer yet"]) == []
    doc_shot(desk, "desktop-zh")
    phone_zh = walk_page(site, "technician", PHONE, "zh")
    phone_zh.click(f'#run-list a[href="#run={run_id}"]')
    step(phone_zh, "b3-u1", "contact").locator(".pill.status-done").wait_for()
    assert fits_width(phone_zh)
    doc_shot(phone_zh, "phone-zh")

    # an operator follows the walk: no start form, no buttons
    follower = walk_page(site, "operator", DUTY_SCREEN, "en")
    assert not follower.is_visible("#new-run")
    follower.click(f'#run-list a[href="#run={run_id}"]')
    step(follower, "b3-u1", "contact").locator(".pill.status-done").wait_for()
    assert follower.locator("#run-buildings button").count() == 0 and not follower.is_visible("#finish")
    doc_shot(follower, "desktop-en")

    # the technician finishes; the report prints
    page.click("#finish")
    page.fill("#finish-note", "main gate to be redone")
    page.click("#finish-ok")
    page.wait_for_selector("#run-state.state-finished")
    assert page.locator("#run-buildings button").count() == 0
    report = page.context.new_page()
    report.goto(f"{site.gw.url}/api/v1/commissioning/{run_id}/report?lang=en")
    assert "Commissioning acceptance report" in report.inner_text("h1")
    assert "gate has no closer yet" in report.inner_text("body")
    report.set_viewport_size(DUTY_SCREEN)
    doc_shot(report, "report-en", at="h1")
    report.pdf(path=str(DOC_SHOTS / "commissioning-report-en.pdf"), format="A4", print_background=True)
    wait_until(lambda: (DOC_SHOTS / "commissioning-report-en.pdf").stat().st_size > 1000, 10, what="the PDF")
    for p in (page, desk, phone_zh, follower):
        assert p.errors == []
