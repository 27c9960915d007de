"""The duty-room metering situations against the real daemon (subprocess), pymodbus meters and mosquitto:
restrict / open / close over HTTP and MQTT, a valve opened by hand, no hot water, the quarter's billing pull as
JSON and CSV, and the filtered, rounded readings pull."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import wait_until
from metering.meter_site import GENERIC, RESTRICT, TUF, SimThread

pytestmark = pytest.mark.timeout(120)

LIMIT = 0x0020


@pytest.fixture
def sim() -> Iterator[SimThread]:
    s = SimThread()
    s.sim.add(1, RESTRICT, total_m3=321.5).write(LIMIT, [10000])
    s.sim.add(2, GENERIC, flow_m3h=0.15)
    s.sim.add(3, TUF)
    s.start()
    yield s
    s.stop()


def site(port: int) -> str:
    out = (f'[metering]\noffline_after = 2\nno_hot_water_after_s = 0.5\n[[buses]]\nid = "tcp-gw-1"\ntransport = "tcp"\n'
           f'port = "127.0.0.1:{port}"\ntimeout_s = 0.3\nretries = 0\n')
    for mid, dev, profile in (("hw-3-1-0101", 1, "generic-hot-water-restrict"),
                              ("hw-3-1-0102", 2, "generic-hot-water"), ("hw-3-1-0103", 3, "tuf-2000m")):
        out += (f'[[meters]]\nid = "{mid}"\nbus = "tcp-gw-1"\ndevice_id = {dev}\nprofile = "{profile}"\n'
                f'unit = "3-1-{mid[-4:]}"\npoll_s = 0.3\n')
    return out


def test_duty_room_metering_end_to_end(gateway_factory: Any, mosquitto: Any, mqtt_sub: Any, mqtt_pub: Any,
                                      sim: SimThread) -> None:
    gw = gateway_factory(site(sim.sim.port))
    sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/#")
    meters = sim.sim.meters

    def states() -> dict[str, Any]:
        r = gw.get("/api/v1/meters", "operator")
        assert r.status_code == 200, r.text
        return {m["id"]: m for m in r.json()["items"]}

    def event(kind: str, pred: Any = lambda d: True) -> dict[str, Any]:
        return sub.wait_for(lambda t, m: t.endswith(f"/event/{kind}") and pred(m["data"]), 20)[1]["data"]

    def command(cid: str, args: dict[str, Any]) -> dict[str, Any]:
        mqtt_pub(mosquitto.port, f"{gw.topic_root}/cmd/valve", {"id": cid, "args": args})
        return sub.wait_for(lambda t, m: t.endswith("/cmd-result") and m.get("id") == cid, 20)[1]

    wait_until(lambda: all(s["read_at"] for s in states().values()), 20, what="meters read")
    s = states()
    assert s["hw-3-1-0101"]["valve_states"] == ["open", "closed", "restricted"]
    assert s["hw-3-1-0102"]["valve_states"] == ["open", "closed"] and s["hw-3-1-0103"]["valve_states"] == []

    # arrears: restrict over HTTP (technician), refused where the meter cannot
    r = gw.post("/api/v1/meters/hw-3-1-0101/valve", "technician", json={"action": "restrict"})
    assert r.status_code == 200 and r.json() == {"meter": "hw-3-1-0101", "state": "restricted"}, r.text
    assert meters[1].valve_state == 1 and meters[1]._extra[LIMIT] == 3000
    r = gw.post("/api/v1/meters/hw-3-1-0102/valve", "technician", json={"action": "restrict"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "restrict_unsupported"
    assert gw.post("/api/v1/meters/hw-3-1-0101/valve", "operator", json={"action": "restrict"}).status_code == 403
    assert event("meter.valve", lambda d: d["state"] == "restricted")["by"] == "test-technician"

    # paid, then stopped, over MQTT (central); then the valve is opened by hand at the meter
    assert command("v-1", {"meter": "hw-3-1-0101", "action": "open"})["result"] == {"state": "open"}
    assert meters[1]._extra[LIMIT] == 10000
    res = command("v-2", {"meter": "hw-3-1-0103", "action": "restrict"})
    assert not res["ok"] and res["error"]["code"] == "no_valve"
    assert command("v-3", {"meter": "hw-3-1-0101", "action": "close"})["result"] == {"state": "closed"}
    meters[1].valve_state = 1
    got = event("meter.valve_mismatch")
    assert (got["meter"], got["commanded"], got["read"]) == ("hw-3-1-0101", "closed", "open")
    assert states()["hw-3-1-0101"]["valve_mismatch"] == got["since"]
    meters[1].valve_state = 2
    assert event("meter.valve_mismatch_cleared")["read"] == "closed"
    audit = gw.get("/api/v1/audit?limit=100", "admin").json()
    items = audit["items"] if isinstance(audit, dict) else audit
    assert [a["detail"]["action"] for a in items if a["action"] == "meter.valve"] == ["restrict", "open", "close"]

    # no hot water at hw-0102 (water flowing, 31 degC under the profile's 40 degC floor), then recovery
    meters[2].temp_c = 31.0
    fault = event("meter.fault")
    assert (fault["meter"], fault["kind"], fault["temp_c"], fault["floor_c"]) == ("hw-3-1-0102", "no_hot_water",
                                                                                  31.0, 40.0)
    assert [f["kind"] for f in states()["hw-3-1-0102"]["faults"]] == ["no_hot_water"]
    meters[2].temp_c = 55.0
    assert event("meter.fault_cleared")["since"] == fault["since"]
    assert states()["hw-3-1-0102"]["faults"] == []

    # the readings pull, filtered and rounded (0.15 m3/h, not float32's 0.15000001)
    page = gw.get("/api/v1/readings?meter=hw-3-1-0102&limit=50", "central").json()
    assert page["items"] and {i["meter"] for i in page["items"]} == {"hw-3-1-0102"}
    assert {i["values"]["flow_m3h"] for i in page["items"]} == {0.15}
    by_unit = gw.get("/api/v1/readings?unit=3-1-0101&unit=3-1-0103&limit=50", "central").json()
    assert {i["unit"] for i in by_unit["items"]} == {"3-1-0101", "3-1-0103"}
    first = page["items"][0]["read_at"]
    later = gw.get(f"/api/v1/readings?meter=hw-3-1-0102&from={first}&limit=5000", "central").json()
    assert later["items"][0]["read_at"] == first
    assert gw.get("/api/v1/readings?to=2026-01-01&limit=5", "central").json()["items"] == []
    for bad, code in (("from=yesterday", "invalid_time"), ("from=2026-12-02&to=2026-12-01", "invalid_range"),
                      ("after=x", "invalid_cursor")):
        r = gw.get(f"/api/v1/readings?{bad}", "central")
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (bad, r.text)

    # the quarter's billing pull (clock: the gateway's own; 2026Q4's window is 25-30 December)
    r = gw.get("/api/v1/billing?quarter=2026Q4", "central")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["quarter"] == "2026Q4" and report["window"]["from"] == "2026-12-24T16:00:00.000Z"
    assert {i["meter"] for i in report["items"]} == {"hw-3-1-0101", "hw-3-1-0102", "hw-3-1-0103"}
    for bad in ("2026Q5", "26Q4", "", "2026-12"):
        r = gw.get(f"/api/v1/billing?quarter={bad}", "central")
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_quarter", bad
    assert gw.get("/api/v1/billing?quarter=2026Q4", "operator").status_code == 403
    assert gw.get("/api/v1/billing?quarter=2026Q4", "admin").status_code == 200
    assert gw.stop() == 0

    # a quarter already billed: the readings taken then are what central gets, as JSON and as CSV
    db = sqlite3.connect(gw.data_dir / "gateway.db")
    with db:
        db.execute("INSERT INTO billing_readings VALUES('hw-3-1-0101','2026Q3','3-1-0101','2026-09-26T01:00:00.000Z',"
                   "'{\"total_m3\":321.50000001,\"flow_m3h\":0.0}')")
    db.close()
    gw.start()
    report = gw.get("/api/v1/billing?quarter=2026Q3", "central").json()
    items = {i["meter"]: i for i in report["items"]}
    assert items["hw-3-1-0101"]["status"] == "read" and items["hw-3-1-0101"]["values"]["total_m3"] == 321.5
    assert items["hw-3-1-0102"] | {"last_read_at": None} == {
        "meter": "hw-3-1-0102", "unit": "3-1-0102", "status": "missing", "reason": "no_reading_in_window",
        "read_at": None, "values": None, "last_read_at": None}
    r = gw.get("/api/v1/billing?quarter=2026Q3", "central", headers={"Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="billing-2026Q3.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["meter"], x["status"], x["reason"], x["total_m3"]) for x in rows] == [
        ("hw-3-1-0101", "read", "", "321.5"), ("hw-3-1-0102", "missing", "no_reading_in_window", ""),
        ("hw-3-1-0103", "missing", "no_reading_in_window", "")]
    assert gw.stop() == 0
