"""No hot water, played against pymodbus meters (real component, scheduler and store): the supply going cold while
water flows raises meter.fault (kind no_hot_water) once, recovery clears it, a meter with the floor off or nobody
drawing stays quiet, and a restart neither repeats nor forgets the open fault. check-config holds the worst-case
detection time within the 15 minutes DOMAIN.md gives a technician."""

from __future__ import annotations

from pathlib import Path

from conftest import config_text, free_port
from conftest import until as wait_for
from metering.meter_site import GENERIC, Harness, run

from drivers.sim.meters import MeterSimulator
from gateway.config import check_config

FAST = "no_hot_water_after_s = 0.4"


def site_meters() -> list[tuple[str, int, str, str]]:
    return [("hw-1", 1, "generic-hot-water", ""),
            ("hw-2", 2, "generic-hot-water", "supply_floor_c = 0\n"),      # floor off for this meter
            ("hw-3", 3, "generic-hot-water", "supply_floor_c = 50\n")]     # nobody draws here (flow 0)


def test_cold_supply_raises_once_recovery_clears_and_a_restart_remembers(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="tcp")
        sim.add(1, GENERIC, flow_m3h=0.15)
        sim.add(2, GENERIC, flow_m3h=0.15)
        sim.add(3, GENERIC, flow_m3h=0.0)
        async with Harness(tmp_path, sim, site_meters(), poll_s=0.1, extra=FAST) as h:
            await h.start()
            await wait_for(lambda: len(h.of("meter.reading")) >= 9, 10, "warm readings")
            assert h.of("meter.fault") == []
            for m in sim.meters.values():
                m.temp_c = 31.0          # the boiler room's supply fails
            await wait_for(lambda: h.of("meter.fault"), 10, "no hot water")
            n = len(h.of("meter.reading"))
            await wait_for(lambda: len(h.of("meter.reading")) >= n + 12, 10, "more cold readings")
            await h.comp.flush()
            faults = h.of("meter.fault")
            assert [(f["meter"], f["kind"], f["temp_c"], f["floor_c"]) for f in faults] == [
                ("hw-1", "no_hot_water", 31.0, 40.0)]
            assert faults[0]["unit"] == "3-1-0001" and faults[0]["since"].endswith("Z")
            view = {s["id"]: s for s in h.comp.meter_states()}
            assert [f["kind"] for f in view["hw-1"]["faults"]] == ["no_hot_water"] and view["hw-3"]["faults"] == []
            assert [s["id"] for s in h.comp.handover_items()["meters"]] == ["hw-1"]
            # flow register rounded to the profile's precision: 0.15, not float32's 0.15000001
            assert {e["values"]["flow_m3h"] for e in h.of("meter.reading") if e["meter"] == "hw-1"} == {0.15}

        # restart while still cold: remembered, not raised again; recovery clears it
        async with Harness(tmp_path, sim, site_meters(), poll_s=0.1, extra=FAST) as h2:
            await h2.start()
            assert "no_hot_water" in h2.comp.meters["hw-1"].faults
            await wait_for(lambda: len(h2.of("meter.reading")) >= 9, 10, "readings after restart")
            assert h2.of("meter.fault") == []
            sim.meters[1].temp_c = 41.5  # inside the 3-degree hysteresis: not recovered yet
            n = len(h2.of("meter.reading"))
            await wait_for(lambda: len(h2.of("meter.reading")) >= n + 9, 10, "lukewarm readings")
            assert h2.of("meter.fault_cleared") == []
            sim.meters[1].temp_c = 55.0
            await wait_for(lambda: h2.of("meter.fault_cleared"), 10, "recovery")
            await h2.comp.flush()
            cleared = h2.of("meter.fault_cleared")
            assert [(c["meter"], c["kind"], c["since"]) for c in cleared] == [("hw-1", "no_hot_water", faults[0]["since"])]
            assert h2.ctx.store.query("SELECT COUNT(*) FROM meter_conditions")[0][0] == 0

    run(main())


def test_check_config_refuses_a_floor_detected_too_late_or_without_a_temperature(tmp_path: Path) -> None:
    meters = ('[[buses]]\nid = "b1"\ntransport = "tcp"\nport = "127.0.0.1:1502"\n'
              '[[meters]]\nid = "slow"\nbus = "b1"\ndevice_id = 1\nprofile = "generic-hot-water"\nunit = "u1"\n'
              'poll_s = 900\n'
              '[[meters]]\nid = "slow-off"\nbus = "b1"\ndevice_id = 2\nprofile = "generic-hot-water"\nunit = "u2"\n'
              'poll_s = 900\nsupply_floor_c = 0\n'
              '[[meters]]\nid = "blind"\nbus = "b1"\ndevice_id = 3\nprofile = "dynaflox-ultrad"\nunit = "u3"\n'
              'supply_floor_c = 45\n'
              '[[meters]]\nid = "ok"\nbus = "b1"\ndevice_id = 4\nprofile = "tuf-2000m"\nunit = "u4"\npoll_s = 300\n')
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(config_text(tmp_path / "var", 1883, free_port(), meters))
    problems = [str(p) for p in check_config(cfg)]
    assert len(problems) == 2, problems
    assert any("meters.slow.poll_s" in p and "1800 s" in p and "15 minutes" in p for p in problems), problems
    assert any("meters.blind.supply_floor_c" in p and "supply_temp_field" in p for p in problems), problems
