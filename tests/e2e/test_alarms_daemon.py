"""Alarms end to end: the daemon as a subprocess, DC-09 panels over TCP, HTTP routes, MQTT, kill -9, fire linkage."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import pytest
from conftest import GatewayProc, free_port, wait_until

from drivers.sim.alarm_panel import Dc09Panel
from drivers.sim.osdp_reader import OsdpReaderSim

pytestmark = pytest.mark.timeout(150)

OUTPUT = 1


def panel_site(port: int, extra: str = "") -> str:
    return f"""
[[alarm_receivers]]
id = "duty-panel"
protocol = "sia-dc09"
listen = "127.0.0.1:{port}"
accounts = ["1234"]
{extra}
"""


events = GatewayProc.events_of_type  # events(gw, "door.unlocked")


def send(port: int, token: str, payload: str = "", **kw: Any) -> str:
    async def go() -> str:
        panel = Dc09Panel("127.0.0.1", port, **kw)
        try:
            return await panel.send(token, payload, max_tries=50)
        finally:
            await panel.close()

    return asyncio.run(go())


def test_http_routes_mqtt_and_handover(gateway_factory: Any, mosquitto: Any, mqtt_sub: Any) -> None:
    port = free_port()
    gw = gateway_factory(panel_site(port))
    sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/event/#")
    assert send(port, "ADM-CID", "1130 01 007") == "ACK"
    _t, raised = sub.wait_for(lambda t, p: t.endswith("/alarm.raised"), 20)
    assert raised["data"]["kind"] == "burglary" and raised["data"]["zone"] == 7
    aid = raised["data"]["alarm"]

    r = gw.get("/api/v1/alarms", role="operator")
    assert r.status_code == 200 and [a["id"] for a in r.json()["items"]] == [aid]
    assert gw.get("/api/v1/alarms?state=bogus", role="operator").status_code == 422
    assert gw.get("/api/v1/alarms", role="technician").status_code == 403
    # central reconciles the alarm list (read only): it may list and read, never acknowledge
    assert gw.get("/api/v1/alarms", role="central").json()["items"][0]["id"] == aid
    assert gw.get(f"/api/v1/alarms/{aid}", role="central").status_code == 200
    assert gw.post(f"/api/v1/alarms/{aid}/ack", role="central", json={"note": "x"}).status_code == 403
    assert gw.get("/api/v1/alarms", role="operator", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert gw.post(f"/api/v1/alarms/{aid}/ack", role="operator", json={"note": ""}).status_code == 422
    assert gw.post(f"/api/v1/alarms/{aid}/ack", role="operator", json={}).status_code == 422
    assert gw.post("/api/v1/alarms/999/ack", role="operator", json={"note": "x"}).status_code == 404
    assert gw.post(f"/api/v1/alarms/{aid}/ack", role="technician", json={"note": "x"}).status_code == 403

    rep = gw.get("/api/v1/handover", role="operator").json()
    assert [a["id"] for a in rep["unacknowledged_alarms"]] == [aid]
    assert {"doors", "meters", "devices_offline", "open_alarms", "shift", "since"} <= set(rep)

    r = gw.post(f"/api/v1/alarms/{aid}/ack", role="operator", json={"note": "guard on the way"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "acknowledged" and r.json()["acked_by"] == "test-operator"
    assert gw.post(f"/api/v1/alarms/{aid}/ack", role="operator", json={"note": "again"}).status_code == 409
    _t, acked = sub.wait_for(lambda t, p: t.endswith("/alarm.acknowledged"), 20)
    assert acked["data"] == {"alarm": aid, "by": "test-operator", "note": "guard on the way"}

    assert send(port, "ADM-CID", "3130 01 007") == "ACK"
    sub.wait_for(lambda t, p: t.endswith("/alarm.closed"), 20)
    assert gw.get("/api/v1/alarms?state=closed", role="operator").json()["items"][0]["id"] == aid

    r = gw.post("/api/v1/handover", role="operator", json={"from": "alice", "to": "bob", "notes": "quiet night"})
    assert r.status_code == 201, r.text
    _t, ho = sub.wait_for(lambda t, p: t.endswith("/shift.handover"), 20)
    assert ho["data"]["from"] == "alice" and ho["data"]["to"] == "bob" and ho["data"]["open_alarms"] == []
    assert gw.post("/api/v1/handover", role="operator", json={"from": "alice"}).status_code == 422
    audit = gw.get("/api/v1/audit?limit=1000", role="admin").json()
    rows = audit["items"] if isinstance(audit, dict) else audit
    assert {"alarm.ack", "shift.handover"} <= {a["action"] for a in rows}
    assert gw.get("/api/v1/handover", role="operator").json()["last_handover"]["to"] == "bob"


def test_kill_9_between_commit_and_ack_yields_one_alarm(gateway_factory: Any) -> None:
    port = free_port()
    gw = gateway_factory(panel_site(port), start=False, env={"EGW_FAULT_ALARM_ACK_DELAY_S": "30"})
    gw.start()
    db = gw.data_dir / "gateway.db"

    def alarms_in_db() -> int:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM alarms").fetchone()[0]
        finally:
            conn.close()

    async def scenario() -> list[str]:
        panel = Dc09Panel("127.0.0.1", port, timeout_s=2.0, retry_s=0.3)
        sending = asyncio.create_task(panel.send("ADM-CID", "1110 01 012", max_tries=200))
        # committed, not yet ACKed (the ACK is held back): pull the plug
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: wait_until(lambda: alarms_in_db() == 1, 20, what="alarm committed"))
        assert panel.answers == []
        gw.kill()
        gw.env.pop("EGW_FAULT_ALARM_ACK_DELAY_S")
        await asyncio.get_running_loop().run_in_executor(None, gw.start)
        assert await asyncio.wait_for(sending, 60) == "ACK"     # the panel's retry, after the restart
        await panel.close()
        return panel.answers

    answers = asyncio.run(scenario())
    assert answers[-1] == "ACK"
    assert alarms_in_db() == 1
    assert len(events(gw, "alarm.raised")) == 1


def test_fire_releases_doors_within_a_second_and_relocks_after_restore_and_ack(
        gateway_factory: Any, mosquitto: Any, osdp_reader: OsdpReaderSim) -> None:
    port = free_port()
    zone = """
[[alarm_zones]]
receiver = "duty-panel"
zone = 12
building = "3"
name = "B3 stairwell smoke"
unlock_doors = ["b3-u1"]
"""
    doors = f"""
[[readers]]
id = "r-b3u1"
driver = "osdp"
port = "{osdp_reader.url}"

[[doors]]
id = "b3-u1"
building = "3"
reader = "r-b3u1"
"""
    gw = gateway_factory(doors + panel_site(port, zone))
    wait_until(lambda: all(d["reader_online"] for d in gw.get("/api/v1/doors", role="operator").json()["items"]),
               30, what="reader online")
    mosquitto.stop()   # linkage must not depend on the uplink
    n = len([c for c in osdp_reader.commands(0) if c["command"] == OUTPUT])
    t0 = time.monotonic()
    assert send(port, "SIA-DCS", "Nri1/FA012") == "ACK"
    relay = wait_until(lambda: [c for c in osdp_reader.commands(0)[n:] if c["command"] == OUTPUT], 5, what="relay")
    assert relay[0]["at"] - t0 < 1.0, relay[0]["at"] - t0
    unlocked = wait_until(lambda: events(gw, "door.unlocked"), 5, what="door.unlocked")
    assert unlocked[0]["data"] == {"door": "b3-u1", "reason": "fire"}
    aid = events(gw, "alarm.raised")[0]["data"]["alarm"]

    assert send(port, "SIA-DCS", "Nri1/FR012") == "ACK"        # restored, not acknowledged: stays released
    time.sleep(0.5)
    assert events(gw, "door.relocked") == []
    assert gw.post(f"/api/v1/alarms/{aid}/ack", role="operator", json={"note": "smoke from cooking"}).status_code == 200
    wait_until(lambda: events(gw, "door.relocked"), 5, what="door.relocked")
    assert gw.get(f"/api/v1/alarms/{aid}", role="operator").json()["state"] == "closed"
    mosquitto.start()
