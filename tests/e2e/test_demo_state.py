"""The demo's simulated meters keep their state across restarts: a ``simulate`` killed with -9 and started
again continues from where it was (totals, a closed valve), so the gateway sees no false reverse flow; and
flats draw water in bursts (no endless flow that the gateway would call a leak)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, free_port, wait_until

from drivers.modbus import load_profile
from drivers.sim.cjt188 import SimCjtMeter
from drivers.sim.meters import SimMeter
from drivers.sim.usage import DrawPattern

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]
CJT_ADDRESS = "00202307160177"


# ---------------------------------------------------------------------- the draw pattern, alone
def test_flats_draw_in_bursts_a_plausible_amount_a_day() -> None:
    day0 = 1_800_000_000.0   # any day: the pattern is a pure function of the clock
    for key in ("modbus/mbtcp-1/1", "modbus/mbtcp-1/2", f"cjt188/cjt188-1/{CJT_ADDRESS}"):
        p = DrawPattern(key, rate_m3h=0.3)
        days = [p.volume(day0 + d * 86400, day0 + (d + 1) * 86400) for d in range(7)]
        assert all(0.05 < v < 1.0 for v in days), days              # tens to hundreds of litres of hot water a day
        assert p.volume(day0, day0 + 7 * 86400) == pytest.approx(sum(days))
        flowing = [p.flow_at(day0 + s) > 0 for s in range(0, 86400, 30)]
        longest = run = 0
        for f in flowing:
            run = run + 1 if f else 0
            longest = max(longest, run)
        assert longest * 30 <= 15 * 60                              # never a flow of hours: no false leak
        assert p.volume(day0 + 10, day0) == 0.0


def test_a_meter_restored_from_its_snapshot_never_goes_back() -> None:
    profile = load_profile(ROOT / "gateway" / "meters" / "generic-hot-water.toml")
    pattern = DrawPattern("modbus/b/1", rate_m3h=50.0)   # a large rate: any draw shows
    before = SimMeter(1, profile, total_m3=400.0, pattern=pattern, _wall0=time.time() - 86400)
    served = before.current_total()
    saved = before.snapshot()
    after = SimMeter(1, profile, total_m3=100.0, pattern=pattern)
    after.restore(json.loads(json.dumps(saved)))
    assert served > 400.0 and after.current_total() >= served
    cjt = SimCjtMeter(CJT_ADDRESS, pattern=pattern, total_m3=10.0, heat_kwh=5.0, _wall0=time.time() - 86400)
    cjt.set_valve(True)
    again = SimCjtMeter(CJT_ADDRESS, pattern=pattern)
    again.restore(json.loads(json.dumps(cjt.snapshot())))
    assert again.valve_closed and again.current().total_m3 == cjt.current().total_m3 > 10.0


# ---------------------------------------------------------------------- simulate killed and started again
def site(modbus_port: int, cjt_port: int) -> str:
    return f"""
[[buses]]
id = "mb-1"
transport = "tcp"
port = "127.0.0.1:{modbus_port}"
timeout_s = 0.5

[[meters]]
id = "hw-1"
bus = "mb-1"
device_id = 1
profile = "generic-hot-water"
unit = "3-1-0201"
poll_s = 1

[[buses]]
id = "cj-1"
transport = "serial"
port = "socket://127.0.0.1:{cjt_port}"
baud = 2400
timeout_s = 1.0

[[meters]]
id = "hw-2"
bus = "cj-1"
protocol = "cjt188"
address = "{CJT_ADDRESS}"
meter_type = "hot-water"
valve = true
unit = "3-2-0302"
poll_s = 1
"""


def test_simulate_killed_and_restarted_continues_its_totals_and_valves(gateway_factory: Any, tmp_path: Path) -> None:
    gw = gateway_factory(site(free_port(), free_port()), start=False)
    state = gw.data_dir / "simulate-state.json"
    state.parent.mkdir(parents=True)
    a_day_ago = time.time() - 86400
    state.write_text(json.dumps({"version": 1, "devices": {   # what an earlier run left (far from the initial 100 m3)
        "modbus/mb-1/1": {"total_m3": 500.0, "at": a_day_ago, "valve_state": 1},
        f"cjt188/cj-1/{CJT_ADDRESS}": {"total_m3": 700.0, "heat_kwh": 0.0, "at": a_day_ago, "valve_closed": False}}}))

    def simulate() -> subprocess.Popen[bytes]:
        return subprocess.Popen([str(BIN), "simulate", "--no-control", "-c", str(gw.config_path)],
                                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "sim.log", "ab"))

    def meters() -> dict[str, Any]:
        return {m["id"]: m for m in gw.get("/api/v1/meters", role="operator").json()["items"]}

    def totals_after(when: str) -> dict[str, float] | None:
        ms = meters()
        if all(m["read_at"] and m["read_at"] > when and m["values"].get("total_m3") for m in ms.values()):
            return {k: m["values"]["total_m3"] for k, m in ms.items()}
        return None

    sim = simulate()
    try:
        gw.start()
        first = wait_until(lambda: totals_after(""), 30, what="both meters read")
        assert first["hw-1"] > 500.0 and first["hw-2"] > 700.0     # a day of a flat's draws since the save
        r = gw.post("/api/v1/meters/hw-2/valve", role="technician", json={"action": "close"})
        assert r.status_code == 200, r.text
        wait_until(lambda: meters()["hw-2"]["valve_read"] == "closed", 20, what="valve closed")
        time.sleep(1.5)
        last = wait_until(lambda: totals_after(""), 10)
        sim.send_signal(signal.SIGKILL)   # no clean stop: only what was saved on the way survives
        sim.wait(10)
        saved = json.loads(state.read_text())["devices"]
        assert saved[f"cjt188/cj-1/{CJT_ADDRESS}"]["valve_closed"] is True   # written when it changed
        restarted = meters()["hw-1"]["read_at"]
        sim = simulate()
        again = wait_until(lambda: totals_after(restarted), 30, what="both meters read after the restart")
        assert again["hw-1"] >= last["hw-1"] and again["hw-2"] >= last["hw-2"]
        assert meters()["hw-2"]["valve_read"] == "closed" and not meters()["hw-2"]["valve_mismatch"]
        assert gw.events_of_type("meter.anomaly") == []              # no reverse flow, no spike
    finally:
        sim.terminate()
        sim.wait(10)
