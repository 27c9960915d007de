"""The commissioning walk end to end: the daemon as a subprocess with a real mosquitto, a libosdp reader bus,
pymodbus meters and a DC-09 transmitter. A run started over HTTP completes its steps as real swipes, door
contacts, readings, a confirmed valve, a panel's signal and its restore, and a panel's walk test of another zone
happen, and the main gate's reader comes up on the OSDP secure channel; steps are marked failed and not applicable
with reasons (never done by hand); the finish stores the printed report and sends ``site.commissioned``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from commissioning.walk_site import (
    MAIN_SCBK,
    SIDE_COIL,
    TEST_CARD,
    UNKNOWN_CARD,
    MeterSim,
    new_panel_port,
    site_toml,
    step_of,
    wiegand_line,
)
from conftest import LineServer, wait_until
from panels import send_dc09

from drivers.sim.osdp_reader import OsdpReaderSim

pytestmark = pytest.mark.timeout(150)

API = "/api/v1/commissioning"


@pytest.fixture
def parts() -> Iterator[tuple[OsdpReaderSim, MeterSim, LineServer]]:
    readers = OsdpReaderSim([0, 1], scbk={1: MAIN_SCBK}).start()
    meters = MeterSim()
    line = LineServer()
    yield readers, meters, line
    line.close()
    meters.stop()
    readers.stop()


def run_of(gw: Any, run: int, role: str = "technician") -> dict[str, Any]:
    r = gw.get(f"{API}/{run}", role=role)
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_step(gw: Any, run: int, device: str, step: str, status: str = "done") -> dict[str, Any]:
    return dict(wait_until(lambda: (s := step_of(run_of(gw, run), device, step))["status"] == status and s, 20,
                           what=f"{device} {step} {status}"))


def mark(gw: Any, run: int, device: str, step: str, status: str, reason: str = "") -> Any:
    return gw.post(f"{API}/{run}/steps", role="technician",
                   json={"device": device, "step": step, "status": status, "reason": reason})


def test_a_walk_over_building_3(gateway_factory: Any, mosquitto: Any, mqtt_sub: Any, tmp_path: Path,
                                parts: tuple[OsdpReaderSim, MeterSim, LineServer]) -> None:
    readers, meters, line = parts
    panel_port = new_panel_port()
    key = tmp_path / "r-b3main.scbk"
    key.write_text(MAIN_SCBK.hex())
    gw = gateway_factory(site_toml(readers.url, meters.port, panel_port, line.port, meters.relay_port, str(key)))
    central = mqtt_sub(mosquitto.port, f"{gw.topic_root}/event/site.commissioned")

    # who may start; what the scope must name
    body = {"scope": "building", "buildings": ["3"], "note": "handover after the lobby works"}
    assert gw.post(API, role="operator", json=body).status_code == 403
    assert gw.post(API, role="central", json=body).status_code == 403
    r = gw.post(API, role="technician", json={"scope": "building", "buildings": ["9"]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_building"
    r = gw.post(API, role="technician", json=body)
    assert r.status_code == 201, r.text
    run = r.json()["id"]
    started = r.json()
    assert [b["building"] for b in started["buildings"]] == ["3"]
    devices = {d["device"] for b in started["buildings"] for d in b["devices"]}
    assert devices == {"b3-u1", "b3-main", "b3-side", "r-b3u1", "r-b3main", "r-b3side", "hw-3-1-0101", "hw-3-1-0102",
                       "duty-panel/5", "duty-panel/6"}
    side = [s["step"] for b in started["buildings"] for d in b["devices"] if d["device"] == "b3-side" for s in d["steps"]]
    assert side == ["granted", "refuse"]   # a Wiegand reader reports no door contact
    assert step_of(started, "hw-3-1-0101", "valve")["status"] == "pending"       # its profile has a valve
    assert gw.get(f"{API}/{run}", role="operator").status_code == 200            # the duty room follows
    assert gw.get(API, role="central").status_code == 200

    # readers are online (since before the run): the gateway sees it for itself
    wait_step(gw, run, "r-b3u1", "online")
    # the main gate's reader: its secure channel up with the configured key
    secure = wait_step(gw, run, "r-b3main", "secure")
    assert secure["by"] == "gateway" and set(secure["seen"]["parts"]) == {"secure"}
    # the meter that answers is read in range
    reading = wait_step(gw, run, "hw-3-1-0101", "reading")
    assert reading["by"] == "gateway" and reading["seen"]["parts"]["reading"]["values"]["total_m3"] >= 321.5

    # a test card granted, the relay pulsed; an unknown card refused
    r = gw.post("/api/v1/cards", role="technician", json={
        "card": TEST_CARD, "unit": "3-1-0101", "holder": "Test card", "holder_kind": "resident",
        "doors": ["b3-u1", "b3-side"], "valid_until": "2099-01-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    readers.swipe(TEST_CARD, 0)
    wait_until(lambda: gw.events_of_type("access.granted"), 15, what="the test card granted")
    # the door opens on it (the lock released), is held past held_open_s (the alarm is tried), then closes
    readers.door(True, 0)
    grant = wait_step(gw, run, "b3-u1", "grant")
    assert grant["seen"]["parts"]["granted"]["card"] == TEST_CARD
    wait_step(gw, run, "b3-u1", "held_open")
    readers.door(False, 0)
    contact = wait_step(gw, run, "b3-u1", "contact")
    readers.swipe(UNKNOWN_CARD, 0)
    wait_step(gw, run, "b3-u1", "refuse")
    # the side door: a Wiegand reader, its lock on a Modbus relay board
    line.send(wiegand_line(TEST_CARD))
    wait_step(gw, run, "b3-side", "granted")
    wait_until(lambda: [w for w in meters.board.writes if w[1] == SIDE_COIL and w[2]], 10, what="the relay pulsed")
    line.send(wiegand_line(UNKNOWN_CARD))
    wait_step(gw, run, "b3-side", "refuse")
    assert set(contact["seen"]["parts"]) == {"opened", "closed"}

    # nothing the gateway can see is marked done by hand; a failure needs a reason
    r = mark(gw, run, "b3-main", "grant", "done", "worked when I tried")
    assert r.status_code == 422 and r.json()["error"]["code"] == "done_not_by_hand"
    r = mark(gw, run, "hw-3-1-0102", "reading", "failed")
    assert r.status_code == 422 and r.json()["error"]["code"] == "reason_required"
    r = mark(gw, run, "b3-u1", "grant", "na", "no relay")
    assert r.status_code == 409 and r.json()["error"]["code"] == "step_done"
    assert mark(gw, run, "nowhere", "grant", "na", "x").status_code == 404
    assert gw.post(f"{API}/{run}/steps", role="operator",
                   json={"device": "b3-main", "step": "grant", "status": "na", "reason": "x"}).status_code == 403
    assert mark(gw, run, "hw-3-1-0102", "reading", "failed", "meter does not answer on the bus").status_code == 200
    assert mark(gw, run, "hw-3-1-0102", "valve", "na", "no valve fitted in this flat").status_code == 200
    for step in ("grant", "contact", "refuse", "held_open"):  # (its online and secure steps the gateway saw)
        assert mark(gw, run, "b3-main", step, "na", "gate motor replaced next week").status_code == 200

    # the valve: marked failed first, then commanded and read back: the gateway's proof wins, the mark stays
    assert mark(gw, run, "hw-3-1-0101", "valve", "failed", "actuator stuck at first").status_code == 200
    r = gw.post("/api/v1/meters/hw-3-1-0101/valve", role="technician", json={"action": "close"})
    assert r.status_code == 200, r.text
    valve = wait_step(gw, run, "hw-3-1-0101", "valve")
    assert valve["seen"]["marked"]["reason"] == "actuator stuck at first"

    # the alarm zone: a real signal from the DC-09 transmitter and its restore
    send_dc09(panel_port, "1130 01 005", "3130 01 005")
    signal = wait_step(gw, run, "duty-panel/5", "signal")
    assert set(signal["seen"]["parts"]) == {"raised", "restored"}
    # another zone walk-tested (Contact ID 613): no alarm, no restore, and the zone is proven by the test alone
    send_dc09(panel_port, "1613 01 006")
    walked = wait_step(gw, run, "duty-panel/6", "signal")
    assert set(walked["seen"]["parts"]) == {"test"} and walked["seen"]["parts"]["test"]["code"] == "613"
    [test_event] = gw.events_of_type("alarm.test_received")
    assert test_event["data"] == {"receiver": "duty-panel", "account": "1234", "zone": 6, "code": "613"}
    assert not [a for a in gw.get("/api/v1/alarms", role="operator").json()["items"] if a["zone"] == 6]

    # what is left, per building, live
    live = run_of(gw, run)
    assert live["state"] == "open" and live["summary"]["result"] == "failed"
    assert live["buildings"][0]["failed"] == 1

    # finish: the report is stored, central hears of it
    assert gw.post(f"{API}/{run}/finish", role="operator", json={}).status_code == 403
    r = gw.post(f"{API}/{run}/finish", role="technician", json={"note": "B3 main gate to be redone"})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["state"] == "finished" and done["finished_by"] == "test-technician"
    counts = done["summary"]["steps"]
    assert counts["failed"] == 1 and counts["na"] == 5 and counts["done"] >= 11, counts
    _, event = central.wait_for(lambda t, p: p["type"] == "site.commissioned", 15)
    data = event["data"]
    assert data["run"] == run and data["result"] == "failed" and data["site"] == "test-site"
    assert data["failures"] == [{"device": "hw-3-1-0102", "kind": "meter", "building": "3", "step": "reading",
                                 "reason": "meter does not answer on the bus"}]
    assert data["report"] == f"{API}/{run}/report"

    for lang, words in (("en", ("Commissioning acceptance report", "Failures", "meter does not answer on the bus",
                                "gate motor replaced next week", "test-technician", TEST_CARD, "@media print")),
                        ("zh", ("调试验收报告", "不合格", "meter does not answer on the bus"))):
        r = gw.get(f"{API}/{run}/report?lang={lang}", role="operator")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text[:300]
        assert "script" not in r.headers["content-security-policy"].replace("default-src 'none'", "")
        for word in words:
            assert word in r.text, (lang, word)
    assert [i["id"] for i in gw.get(API, role="central").json()["items"]] == [run]

    # a finished run is closed
    assert mark(gw, run, "b3-main", "grant", "failed", "late").json()["error"]["code"] == "run_finished"
    assert gw.post(f"{API}/{run}/finish", role="technician", json={}).status_code == 409
    assert gw.get(f"{API}/999", role="operator").status_code == 404
    audit = gw.get("/api/v1/audit?limit=1000", role="admin").json()["items"]
    actions = {a["action"] for a in audit}
    assert {"commissioning.start", "commissioning.failed", "commissioning.na", "commissioning.finish"} <= actions
    assert "Traceback" not in gw.log.read_text()
