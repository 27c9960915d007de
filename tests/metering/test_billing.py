"""Quarter-end billing with a controlled clock: one billing reading per meter, retried, the missing reported once."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from conftest import until as wait_for
from metering.meter_site import GENERIC, Harness, run

from drivers.sim.meters import MeterSimulator

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_quarter_end_billing_with_a_controlled_clock(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="tcp")
        meters = [(f"hw-{i}", i, "generic-hot-water") for i in range(1, 5)]
        for _, dev, _ in meters:
            sim.add(dev, GENERIC, fault="silent" if dev == 4 else None)
        async with Harness(tmp_path, sim, meters, poll_s=0.3) as h:
            h.ctx.clock.set(datetime(2026, 12, 20, 10, 0, tzinfo=SHANGHAI))
            await h.start()
            await wait_for(lambda: len(h.of("meter.reading")) >= 6, 10, "readings before the window")
            assert h.of("meter.billing_reading") == []
            h.ctx.clock.set(datetime(2026, 12, 26, 10, 0, tzinfo=SHANGHAI))
            res = await h.comp.billing.check()
            assert res["period"] == "2026Q4" and set(res["polled"]) == {"hw-1", "hw-2", "hw-3", "hw-4"}
            await wait_for(lambda: len(h.of("meter.billing_reading")) >= 3, 10, "billing readings")
            await asyncio.sleep(1.0)  # more polls in the window: still one billing reading per meter
            await h.comp.flush()
            bills = h.of("meter.billing_reading")
            assert sorted(b["meter"] for b in bills) == ["hw-1", "hw-2", "hw-3"]
            assert all(b["period"] == "2026Q4" and b["values"]["total_m3"] > 0 for b in bills)
            assert h.comp.billing.status("2026Q4")["missing"] == ["hw-4"]
            # hw-4 answers on the 29th: retried until it succeeds
            sim.meters[4].fault = None
            h.ctx.clock.set(datetime(2026, 12, 29, 9, 0, tzinfo=SHANGHAI))
            await h.comp.billing.check()
            await wait_for(lambda: any(b["meter"] == "hw-4" for b in h.of("meter.billing_reading")), 15, "late bill")
            # a meter silent for the whole window is reported missing once, after it
            sim.meters[3].fault = "silent"
            await h.comp.flush()
            h.ctx.store.write_sync(lambda c: c.execute("DELETE FROM billing_readings WHERE meter='hw-3'"))
            h.comp.billing.billed.discard(("hw-3", "2026Q4"))
            h.ctx.clock.set(datetime(2026, 12, 31, 8, 0, tzinfo=SHANGHAI))
            res = await h.comp.billing.check()
            assert res == {"period": "2026Q4", "missing": ["hw-3"]}
            assert await h.comp.billing.check() == {}
            assert [e["meter"] for e in h.of("meter.billing_missing")] == ["hw-3"]

    run(main())
