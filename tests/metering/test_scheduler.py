"""The bus scheduler with real parts: never stalled by silent or garbled meters, urgent work first, dead links."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import pytest
from conftest import make_config
from conftest import until as wait_for
from metering.meter_site import GENERIC, Harness, run

from drivers.sim.meters import MeterSimulator
from gateway.daemon import build_context, stop_context
from gateway.errors import DomainError
from gateway.metering import MeteringComponent


def test_silent_and_crc_meters_do_not_slow_the_other_18(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="rtu-over-tcp")
        meters = [(f"m{i:02d}", i, "generic-hot-water") for i in range(1, 21)]
        for _, dev, _ in meters:
            sim.add(dev, GENERIC, fault="silent" if dev == 5 else "crc" if dev == 6 else None)
        async with Harness(tmp_path, sim, meters, poll_s=0.5, timeout_s=0.3) as h:
            await h.start()
            await wait_for(lambda: {e["meter"] for e in h.of("meter.offline")} >= {"m05", "m06"}, 15, "offline")
            await wait_for(lambda: all(sim.meters[d].reads >= 1 for d in range(1, 21) if d not in (5, 6)), 10)
            good = [d for d in range(1, 21) if d not in (5, 6)]
            before, mark = {d: sim.meters[d].reads for d in good}, len(sim.log)
            # every answering meter read 8 more times (its 0.5 s period; the bound is generous, not a measure)
            await wait_for(lambda: all(sim.meters[d].reads - before[d] >= 8 for d in good), 30, "8 more polls each")
            asked = collections.Counter(dev for dev, _ in list(sim.log)[mark:])   # requests that reached the line
            fewest = min(asked[d] for d in good)
            # the silent and the garbled meter are backed off, not asked at the others' pace: they cannot hold the
            # line while the others are read (each of their attempts costs a whole timeout)
            assert asked[5] * 2 < fewest and asked[6] * 2 < fewest, (asked[5], asked[6], fewest)
            states = {s["id"]: s for s in h.comp.meter_states()}
            assert states["m05"]["online"] is False and states["m05"]["last_error"].startswith("timeout")
            assert states["m06"]["last_error"].startswith("framing")
            assert states["m01"]["online"] is True and states["m01"]["values"]["total_m3"] > 0
            assert {m["id"] for m in h.comp.handover_items()["meters"]} == {"m05", "m06"}
            # the silent meter comes back
            sim.meters[5].fault = None
            await wait_for(lambda: any(e["meter"] == "m05" for e in h.of("meter.online")), 20, "online again")

    run(main())


def test_valve_write_jumps_ahead_of_queued_polls(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="rtu-over-tcp", baud=9600)  # real line time: the queue is observable
        meters = [(f"m{i:02d}", i, "generic-hot-water") for i in range(1, 21)]
        for _, dev, _ in meters:
            sim.add(dev, GENERIC)
        async with Harness(tmp_path, sim, meters, poll_s=3600, timeout_s=1.0) as h:
            await h.start()
            await wait_for(lambda: len(h.of("meter.reading")) >= 20, 20, "first round")  # the spread start
            queued = await h.comp.poll_now()
            assert len(queued) == 20
            assert await h.comp.poll_now(["m01"]) == ["m01"]  # already queued: not queued twice
            mark = len(sim.log)
            await asyncio.sleep(0.01)  # the first queued poll is on the wire
            res = await h.comp.set_valve("m20", "close", "central", "central")
            assert res["state"] == "closed"
            ops = list(sim.log)[mark:]
            # the write went out right after the request already on the line, not after the 20 queued polls
            assert ops.index((20, "write")) <= 2, ops[:5]
            await wait_for(lambda: len(h.of("meter.reading")) >= 40, 20, "the queued polls")
            await h.comp.flush()
            assert len(h.of("meter.reading")) == 40

    run(main())


def test_unreachable_buses_are_reported_and_valves_fail_cleanly(tmp_path: Path) -> None:
    async def main() -> None:
        from conftest import free_port

        cfg = make_config(tmp_path, (
            '[[buses]]\nid = "b-serial"\ntransport = "rtu"\nport = "/dev/ttyNOPE"\n'
            f'[[buses]]\nid = "b-tcp"\ntransport = "tcp"\nport = "127.0.0.1:{free_port()}"\n'
            '[[meters]]\nid = "m"\nbus = "b-serial"\ndevice_id = 1\nprofile = "generic-hot-water"\nunit = "u-1"\n'
            '[[meters]]\nid = "n"\nbus = "b-tcp"\ndevice_id = 1\nprofile = "generic-hot-water"\nunit = "u-2"\n'))
        comp = MeteringComponent()
        ctx = await build_context(cfg, components=[comp])
        try:
            await wait_for(lambda: {d["id"] for d in ctx.devices.offline()} == {"b-serial", "b-tcp"}, 15, "offline")
            for mid in ("m", "n"):
                with pytest.raises(DomainError) as exc:
                    await comp.set_valve(mid, "close", "tech", "technician")
                assert exc.value.code == "meter_unreachable"
            assert [a["detail"]["ok"] for a in ctx.audit.query()] == [False, False]
        finally:
            await stop_context(ctx)

    run(main())


def test_nan_registers_are_dropped_not_stored(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="tcp")
        sim.add(1, GENERIC, pinned={"flow_m3h": float("nan")})
        async with Harness(tmp_path, sim, [("hw-1", 1, "generic-hot-water")], poll_s=0.2) as h:
            await h.start()
            await wait_for(lambda: h.of("meter.reading"), 10, "a reading")
            values = h.of("meter.reading")[0]["values"]
            assert "flow_m3h" not in values and values["total_m3"] > 0
            await h.comp.flush()
            page = h.comp.readings_after(0, 10)
            assert "flow_m3h" not in page["items"][0]["values"]

    run(main())
