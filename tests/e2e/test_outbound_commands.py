"""Outbound only: readings.pull and billing.export over MQTT answer exactly what GET /readings and
GET /billing answer, large answers come in parts that fit ``max_packet_bytes``; the meters are
simulated by pymodbus, the daemon and mosquitto are real."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until

from drivers.modbus import load_profile
from drivers.sim.meters import MeterSimulator

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


class SimThread:
    """A MeterSimulator on its own loop in a thread (the daemon runs as a subprocess)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.sim = MeterSimulator(framing="tcp")
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def start(self) -> int:
        return asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def meters_toml(port: int) -> str:
    out = (f'[[buses]]\nid = "tcp-gw-1"\ntransport = "tcp"\nport = "127.0.0.1:{port}"\n'
           'timeout_s = 0.5\nretries = 0\n')
    for dev in (1, 2, 3):
        out += (f'[[meters]]\nid = "hw-{dev}"\nbus = "tcp-gw-1"\ndevice_id = {dev}\n'
                f'profile = "generic-hot-water"\nunit = "3-1-010{dev}"\npoll_s = 0.5\n')
    return out


@pytest.fixture
def meters() -> Iterator[SimThread]:
    s = SimThread()
    generic = load_profile(ROOT / "config" / "meters" / "generic-hot-water.toml")
    for dev in (1, 2, 3):
        s.sim.add(dev, generic, total_m3=100.123456 * dev)
    s.start()
    yield s
    s.stop()


def answer(sub: Any, cmd_id: str, timeout: float = 20) -> dict[str, Any]:
    """The answer to ``cmd_id``, put together from its parts when it came in parts."""
    def parts() -> list[dict[str, Any]] | None:
        got = [p for t, p in sub.snapshot() if t.endswith("/cmd-result") and p.get("id") == cmd_id]
        if got and "parts" not in got[0]:
            return got
        if got and len({p["part"] for p in got}) == got[0]["parts"]:
            return sorted({p["part"]: p for p in got}.values(), key=lambda p: p["part"])
        return None

    got = wait_until(parts, timeout, what=f"the answer to {cmd_id}")
    if "parts" not in got[0]:
        return got[0]
    whole = {**got[0], "result": {**got[0]["result"], "items": [i for p in got for i in p["result"]["items"]]}}
    whole.pop("part"), whole.pop("parts")
    return whole | {"parts_seen": len(got)}


def test_readings_pull_and_billing_export_over_mqtt(gateway_factory: Any, mosquitto: Any, mqtt_sub: Any,
                                                    mqtt_pub: Any, meters: SimThread) -> None:
    gw = gateway_factory(meters_toml(meters.sim.port), mqtt_extra="max_packet_bytes = 4096\n")
    sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/#")
    cmd = f"{gw.topic_root}/cmd/"

    def http_page(after: str | None, limit: int) -> dict[str, Any]:
        q = f"?limit={limit}" + (f"&after={after}" if after is not None else "")
        r = gw.get(f"/api/v1/readings{q}", "central")
        assert r.status_code == 200, r.text
        return r.json()

    wait_until(lambda: len(http_page(None, 100)["items"]) >= 40, 60, what="40 readings")

    # one page: the same items (rounded alike) and the same cursor as over HTTP
    mqtt_pub(mosquitto.port, cmd + "readings.pull", {"id": "p-1", "args": {"after": None, "limit": 5}})
    res = answer(sub, "p-1")
    assert res["ok"] is True and res["result"] == http_page(None, 5)
    # a large page comes in parts (4 KiB packets), put back together it is the HTTP page
    mqtt_pub(mosquitto.port, cmd + "readings/pull", {"id": "p-2", "args": {"after": res["result"]["next"],
                                                                           "limit": 35}})
    big = answer(sub, "p-2")
    assert big["parts_seen"] > 1 and big["result"] == http_page(res["result"]["next"], 35)
    # repeated pulls by cursor never skip or repeat
    seen, cursor = [], None
    for i in range(12):
        mqtt_pub(mosquitto.port, cmd + "readings.pull", {"id": f"walk-{i}", "args": {"after": cursor, "limit": 7}})
        page = answer(sub, f"walk-{i}")["result"]
        seen += page["items"]
        if len(page["items"]) < 7 or len(seen) >= 40:
            break
        cursor = page["next"]
    http_all = http_page(None, 5000)["items"]
    assert seen == http_all[:len(seen)] and len(seen) >= 40
    # bad input: a clear code, never a crash
    for i, args in enumerate([{"after": "abc"}, {"after": "-1"}, {"after": str(2**63)}]):
        mqtt_pub(mosquitto.port, cmd + "readings.pull", {"id": f"bad-{i}", "args": args})
        assert answer(sub, f"bad-{i}")["error"]["code"] == "invalid_cursor"
    mqtt_pub(mosquitto.port, cmd + "readings.pull", {"id": "bad-limit", "args": {"limit": 0}})
    assert answer(sub, "bad-limit")["error"]["code"] == "bad_args"

    # events.resend refuses what it cannot do, in words
    for i, args in enumerate([{"after_seq": -1}, {"after_seq": 0, "limit": 0}, {"after_seq": 0, "limit": 10001},
                              {"after_seq": "x"}, {}]):
        mqtt_pub(mosquitto.port, cmd + "events/resend", {"id": f"rs-bad-{i}", "args": args})
        assert answer(sub, f"rs-bad-{i}")["error"]["code"] == "bad_args"

    # billing.export: the quarter's report as GET /billing answers it
    mqtt_pub(mosquitto.port, cmd + "billing.export", {"id": "b-1", "args": {"quarter": "2026Q4"}})
    bill = answer(sub, "b-1")
    http_bill = gw.get("/api/v1/billing?quarter=2026Q4", "central").json()

    def steady(report: dict[str, Any]) -> dict[str, Any]:   # last_read_at moves with every poll
        return {**report, "items": [{k: v for k, v in i.items() if k != "last_read_at"} for i in report["items"]]}

    assert bill["ok"] is True and steady(bill["result"]) == steady(http_bill)
    mqtt_pub(mosquitto.port, cmd + "billing/export", {"id": "b-2", "args": {"quarter": "2026Q5"}})
    assert answer(sub, "b-2")["error"]["code"] == "invalid_quarter"
