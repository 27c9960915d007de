"""The daemon end to end: meters simulated by pymodbus, routes over HTTP, commands over MQTT."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import wait_until

from drivers.modbus import load_profile
from drivers.sim.meters import MeterSimulator

ROOT = Path(__file__).resolve().parents[2]


class SimThread:
    """A MeterSimulator on its own loop in a thread (the daemon runs as a subprocess)."""

    def __init__(self, framing: str = "tcp") -> None:
        self.loop = asyncio.new_event_loop()
        self.sim = MeterSimulator(framing=framing)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def start(self) -> int:
        return asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def sim() -> Iterator[SimThread]:
    s = SimThread()
    generic = load_profile(ROOT / "config" / "meters" / "generic-hot-water.toml")
    tuf = load_profile(ROOT / "config" / "meters" / "tuf-2000m.toml")
    s.sim.add(1, generic, total_m3=321.5)
    s.sim.add(2, tuf)
    s.sim.add(3, generic, fault="silent")
    s.start()
    yield s
    s.stop()


def meters_toml(port: int) -> str:
    out = (f'[metering]\noffline_after = 2\n[[buses]]\nid = "tcp-gw-1"\ntransport = "tcp"\n'
           f'port = "127.0.0.1:{port}"\ntimeout_s = 0.2\nretries = 0\n')
    for mid, dev, profile in (("hw-3-1-0101", 1, "generic-hot-water"), ("hw-3-1-0102", 2, "tuf-2000m"),
                              ("hw-3-1-0103", 3, "generic-hot-water")):
        out += (f'[[meters]]\nid = "{mid}"\nbus = "tcp-gw-1"\ndevice_id = {dev}\nprofile = "{profile}"\n'
                f'unit = "3-1-{mid[-4:]}"\npoll_s = 0.5\n')
    return out


def test_meters_readings_valve_over_http_and_mqtt(gateway_factory: Any, mosquitto: Any, mqtt_sub: Any,
                                                  mqtt_pub: Any, sim: SimThread) -> None:
    gw = gateway_factory(meters_toml(sim.sim.port))
    sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/#")

    def states() -> dict[str, Any]:
        r = gw.get("/api/v1/meters", "operator")
        assert r.status_code == 200, r.text
        return {m["id"]: m for m in r.json()["items"]}

    wait_until(lambda: states()["hw-3-1-0101"]["values"].get("total_m3") and
               states()["hw-3-1-0103"]["online"] is False, 20, what="meters polled")
    s = states()
    assert s["hw-3-1-0101"]["values"]["total_m3"] == pytest.approx(321.5, abs=0.01)
    assert s["hw-3-1-0102"]["has_valve"] is False
    sub.wait_for(lambda t, m: t.endswith("/event/meter.offline") and m["data"]["meter"] == "hw-3-1-0103", 20)

    # central pull: no repeats, no gaps, 403 for the wrong role, 422 for a bad cursor
    assert gw.get("/api/v1/readings", "operator").status_code == 403
    for bad in ("abc", "-1", "99999999999999999999", "%C2%B2", "1.5"):
        assert gw.get(f"/api/v1/readings?after={bad}", "central").status_code == 422, bad
    assert gw.get("/api/v1/readings?limit=0", "central").status_code == 422
    assert httpx.get(f"{gw.url}/api/v1/readings", timeout=10).status_code == 401
    seen: list[tuple[str, str]] = []
    cursor = "0"
    first = gw.get("/api/v1/readings?limit=1", "central").json()
    assert set(first["items"][0]) == {"meter", "unit", "values", "read_at"} and first["next"] != "0"
    for _ in range(5):
        page = gw.get(f"/api/v1/readings?after={cursor}&limit=3", "central").json()
        seen += [(i["meter"], i["read_at"]) for i in page["items"]]
        cursor = page["next"]
    assert len(seen) == len(set(seen)) >= 3

    # valve over HTTP: technician closes; operator may not; a meter without a valve says so
    assert gw.post("/api/v1/meters/hw-3-1-0101/valve", "operator", json={"action": "close"}).status_code == 403
    r = gw.post("/api/v1/meters/hw-3-1-0101/valve", "technician", json={"action": "close"})
    assert r.status_code == 200 and r.json()["state"] == "closed", r.text
    assert sim.sim.meters[1].valve_state == 2
    r = gw.post("/api/v1/meters/hw-3-1-0102/valve", "technician", json={"action": "close"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_valve"
    assert gw.post("/api/v1/meters/nope/valve", "technician", json={"action": "close"}).status_code == 404
    assert gw.post("/api/v1/meters/hw-3-1-0101/valve", "technician", json={"action": "ajar"}).status_code == 422
    audit = gw.get("/api/v1/audit", "admin").json()
    items = audit["items"] if isinstance(audit, dict) else audit
    assert any(a["action"] == "meter.valve" and a["target"] == "hw-3-1-0101" for a in items)

    # valve and readings.now over MQTT
    mqtt_pub(mosquitto.port, f"{gw.topic_root}/cmd/valve", {"id": "v-1", "args": {"meter": "hw-3-1-0101",
                                                                                  "action": "open"}})
    _, res = sub.wait_for(lambda t, m: t.endswith("/cmd-result") and m.get("id") == "v-1", 20)
    assert res["ok"] and res["result"] == {"state": "open"}
    sub.wait_for(lambda t, m: t.endswith("/event/meter.valve") and m["data"]["state"] == "open", 10)
    assert sim.sim.meters[1].valve_state == 1
    mqtt_pub(mosquitto.port, f"{gw.topic_root}/cmd/readings.now", {"id": "r-1", "args": {"meters": ["nope"]}})
    _, res = sub.wait_for(lambda t, m: t.endswith("/cmd-result") and m.get("id") == "r-1", 20)
    assert not res["ok"] and res["error"]["code"] == "not_found"
    sub.wait_for(lambda t, m: t.endswith("/event/meter.reading") and m["data"]["meter"] == "hw-3-1-0102", 10)
    assert gw.stop() == 0
