"""Valves: written, read back, recorded with event and audit; refused with a code otherwise (HTTP-free, and MQTT)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import until as wait_for
from metering.meter_site import GENERIC, TUF, Harness, run

from drivers.sim.meters import MeterSimulator
from gateway.errors import DomainError


def test_valve_close_open_round_trip_and_meter_without_valve(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="tcp")
        sim.add(1, GENERIC)
        sim.add(2, TUF)
        sim.add(3, GENERIC, fault="silent")
        meters = [("hw-1", 1, "generic-hot-water"), ("hw-2", 2, "tuf-2000m"), ("hw-3", 3, "generic-hot-water")]
        async with Harness(tmp_path, sim, meters, poll_s=30, extra="valve_timeout_s = 3") as h:
            await h.start()
            res = await h.comp.set_valve("hw-1", "close", "tech-wang", "technician")
            assert res["state"] == "closed" and sim.meters[1].valve_state == 2
            res = await h.comp.set_valve("hw-1", "open", "central", "central")
            assert res["state"] == "open" and sim.meters[1].valve_state == 1
            assert [(e["state"], e["by"]) for e in h.of("meter.valve")] == [("closed", "tech-wang"), ("open", "central")]
            audit = h.ctx.audit.query()
            assert [(a["actor"], a["action"], a["target"]) for a in audit] == [
                ("tech-wang", "meter.valve", "hw-1"), ("central", "meter.valve", "hw-1")]
            with pytest.raises(DomainError) as exc:
                await h.comp.set_valve("hw-2", "close", "central", "central")
            assert exc.value.code == "no_valve" and "no valve register" in str(exc.value)
            with pytest.raises(DomainError) as exc:
                await h.comp.set_valve("nope", "close", "central", "central")
            assert exc.value.code == "not_found"
            with pytest.raises(DomainError) as exc:
                await h.comp.set_valve("hw-3", "close", "central", "central")
            assert exc.value.code == "meter_unreachable"
            assert [s["valve"] for s in h.comp.meter_states()] == ["open", None, None]
            # the MQTT command path
            out = await h.ctx.commands.handle("valve", '{"id":"c1","args":{"meter":"hw-1","action":"close"}}')
            assert out["ok"] and out["result"] == {"state": "closed"}
            out = await h.ctx.commands.handle("readings.now", '{"id":"c2","args":{"meters":["hw-2"]}}')
            assert out["ok"] and out["result"] == {"queued": ["hw-2"]}
            await wait_for(lambda: any(e["meter"] == "hw-2" for e in h.of("meter.reading")), 10, "reading now")
            assert h.of("meter.reading")[-1]["values"]["temp_supply_c"] == 55.0

    run(main())
