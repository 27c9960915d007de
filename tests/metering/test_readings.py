"""Readings: the cursor pull never skips or repeats while new readings arrive."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from metering.meter_site import GENERIC, Harness, run

from drivers.sim.meters import MeterSimulator


def test_readings_pull_never_skips_or_repeats_while_readings_arrive(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="tcp")
        meters = [(f"m{i:02d}", i, "generic-hot-water") for i in range(1, 11)]
        for _, dev, _ in meters:
            sim.add(dev, GENERIC)
        async with Harness(tmp_path, sim, meters, poll_s=0.05) as h:
            await h.start()
            seen: list[tuple[str, str]] = []
            cursor = 0
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                page = h.comp.readings_after(cursor, 7)
                seen += [(i["meter"], i["read_at"]) for i in page["items"]]
                cursor = int(page["next"])
                await asyncio.sleep(0.01)
            for sched in h.comp.schedulers.values():
                sched.meters.clear()  # stop polling, then drain
            await h.comp.flush()
            while page := h.comp.readings_after(cursor, 7):
                if not page["items"]:
                    break
                seen += [(i["meter"], i["read_at"]) for i in page["items"]]
                cursor = int(page["next"])
            rows = h.ctx.store.query("SELECT meter, read_at FROM readings ORDER BY id")
            assert len(rows) > 100
            assert seen == [tuple(r) for r in rows]
            assert len(h.of("meter.reading")) == len(rows)

    run(main())
