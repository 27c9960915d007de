"""Restrict / open / close against a pymodbus meter, the valve read back every poll: a valve turned by hand or a
flow limit lifted at the meter raises meter.valve_mismatch, the commanded state read again clears it; a restart
neither repeats nor forgets an open mismatch (real component, scheduler and store; no MQTT broker needed here,
the MQTT command handler is driven directly)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import until as wait_for
from metering.meter_site import GENERIC, RESTRICT, Harness, run

from drivers.sim.meters import MeterSimulator
from gateway.errors import DomainError

LIMIT = 0x0020  # the restrict template's flow-limit register


def meters() -> list[tuple[str, int, str]]:
    return [("hw-1", 1, "generic-hot-water-restrict"), ("hw-2", 2, "generic-hot-water")]


def test_restrict_then_hand_interference_raises_and_clears_a_mismatch_across_a_restart(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="tcp")
        sim.add(1, RESTRICT).write(LIMIT, [10000])   # the meter's default: no limit (100.00 %)
        sim.add(2, GENERIC)
        async with Harness(tmp_path, sim, meters(), poll_s=0.15, extra="valve_timeout_s = 3") as h:
            await h.start()
            m1 = h.comp.meters["hw-1"]
            await wait_for(lambda: m1.valve_read == "open", 10, "first read-back")

            # arrears: restrict (limit written before the valve opens), audited, evented
            res = await h.comp.set_valve("hw-1", "restrict", "central", "central")
            assert res == {"meter": "hw-1", "state": "restricted"}
            assert sim.meters[1].valve_state == 1 and sim.meters[1]._extra[LIMIT] == 3000
            with pytest.raises(DomainError) as exc:
                await h.comp.set_valve("hw-2", "restrict", "central", "central")
            assert exc.value.code == "restrict_unsupported"
            out = await h.ctx.commands.handle("valve", '{"id":"c1","args":{"meter":"hw-2","action":"restrict"}}')
            assert not out["ok"] and out["error"]["code"] == "restrict_unsupported"

            # someone lifts the limit at the meter: the next polls read "open" against "restricted"
            reads = sim.meters[1].reads
            await wait_for(lambda: sim.meters[1].reads >= reads + 3, 10, "polls")
            assert h.of("meter.valve_mismatch") == []
            sim.meters[1].write(LIMIT, [10000])
            await wait_for(lambda: h.of("meter.valve_mismatch"), 10, "mismatch")
            await h.comp.flush()
            got = h.of("meter.valve_mismatch")
            assert [(e["commanded"], e["read"], e["raw"]) for e in got] == [("restricted", "open", 1)]
            state = next(s for s in h.comp.meter_states() if s["id"] == "hw-1")
            assert state["valve"] == "restricted" and state["valve_read"] == "open" and state["valve_mismatch"]
            assert [s["id"] for s in h.comp.handover_items()["meters"]] == ["hw-1"]

            # central restricts again over MQTT: the read-back matches, the mismatch clears
            out = await h.ctx.commands.handle("valve", '{"id":"c2","args":{"meter":"hw-1","action":"restrict"}}')
            assert out["ok"] and out["result"] == {"state": "restricted"}
            await wait_for(lambda: h.of("meter.valve_mismatch_cleared"), 10, "cleared")
            assert h.of("meter.valve_mismatch_cleared")[0]["read"] == "restricted"

            # paid: open lifts the limit; then stopped: closed; then the valve is opened by hand
            assert (await h.comp.set_valve("hw-1", "open", "tech-li", "technician"))["state"] == "open"
            assert sim.meters[1]._extra[LIMIT] == 10000
            assert (await h.comp.set_valve("hw-1", "close", "central", "central"))["state"] == "closed"
            sim.meters[1].valve_state = 1
            await wait_for(lambda: len(h.of("meter.valve_mismatch")) == 2, 10, "hand-opened valve")
            await h.comp.flush()
            assert h.of("meter.valve_mismatch")[-1]["commanded"] == "closed"
            assert [e["state"] for e in h.of("meter.valve")] == ["restricted", "restricted", "open", "closed"]
            audit = [(a["actor"], a["target"], a["detail"]["action"], a["detail"]["ok"]) for a in h.ctx.audit.query()
                     if a["action"] == "meter.valve"]
            assert ("central", "hw-2", "restrict", False) not in audit  # refused before the bus: not a valve action
            assert audit[-1] == ("central", "hw-1", "close", True) and len(audit) == 4

        # restart: the open mismatch is remembered (not raised again), and clears when the valve is closed again
        async with Harness(tmp_path, sim, meters(), poll_s=0.15) as h2:
            await h2.start()
            m1 = h2.comp.meters["hw-1"]
            assert m1.valve == "closed" and m1.valve_mismatch is not None
            reads = sim.meters[1].reads
            await wait_for(lambda: sim.meters[1].reads >= reads + 3, 10, "polls after restart")
            assert h2.of("meter.valve_mismatch") == []
            sim.meters[1].valve_state = 2
            await wait_for(lambda: h2.of("meter.valve_mismatch_cleared"), 10, "cleared after restart")
            await h2.comp.flush()
            assert h2.ctx.store.query("SELECT COUNT(*) FROM meter_conditions")[0][0] == 0
            # the valve registers never leak into the readings
            assert all("valve.state" not in e["values"] and "valve.limit" not in e["values"]
                       for e in h2.of("meter.reading"))

    run(main())


def test_a_valve_that_does_not_follow_the_command_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="tcp")
        sim.add(1, RESTRICT)  # the limit register still reads 0: never what was written for "open"
        sim.meters[1].write = lambda address, values: None  # type: ignore[method-assign]  # a jammed meter
        async with Harness(tmp_path, sim, meters()[:1], poll_s=5, extra="valve_timeout_s = 3") as h:
            await h.start()
            with pytest.raises(DomainError) as exc:
                await h.comp.set_valve("hw-1", "close", "central", "central")
            assert exc.value.code == "valve_not_confirmed" and "reads unknown" in str(exc.value)
            assert h.comp.meters["hw-1"].valve is None and h.of("meter.valve") == []
            await asyncio.sleep(0)

    run(main())
