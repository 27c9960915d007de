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


def test_filtered_pull_by_meter_unit_and_time_never_skips_or_repeats_and_rounds(tmp_path: Path) -> None:
    from conftest import make_config

    from gateway.daemon import build_context, stop_context
    from gateway.metering import MeteringComponent, register

    site = ('[[buses]]\nid = "b"\ntransport = "tcp"\nport = "127.0.0.1:1"\n'
            '[[meters]]\nid = "a"\nbus = "b"\ndevice_id = 1\nprofile = "generic-hot-water"\nunit = "u-a"\n'
            '[[meters]]\nid = "b"\nbus = "b"\ndevice_id = 2\nprofile = "generic-hot-water"\nunit = "u-b"\n')

    async def main() -> None:
        comp = MeteringComponent()
        ctx = await build_context(make_config(tmp_path, site), components=[comp], start=False)
        try:
            await comp.start(ctx)  # its bus (port 1) never connects: the readings are inserted here
            n = 0

            async def insert(count: int) -> None:
                nonlocal n

                def txn(conn):
                    nonlocal n
                    for _ in range(count):
                        meter = "ab"[n % 3 == 0]
                        vals = register.encode_values({"total_m3": 1.5, "flow_m3h": 0.15000001})
                        at = f"2026-12-{1 + n // 10:02d}T00:00:{n % 60:02d}.000Z"
                        register.insert_reading(conn, meter, f"u-{meter}", at, vals)
                        n += 1
                await ctx.store.write(txn)

            await insert(25)
            seen, cursor = [], 0
            for _ in range(30):
                page = comp.readings_after(cursor, 4, meters=["b"], start="2026-12-02T00:00:00.000Z")
                seen += [i["read_at"] for i in page["items"]]
                assert all(i["meter"] == "b" and i["values"]["flow_m3h"] == 0.15 for i in page["items"])
                cursor = int(page["next"])
                await insert(2)   # readings keep arriving between pages
            rows = ctx.store.query("SELECT read_at FROM readings WHERE meter='b' AND read_at >= ? AND id <= ? "
                                   "ORDER BY id", ("2026-12-02T00:00:00.000Z", cursor))
            assert seen == [r[0] for r in rows] and len(seen) > 20
            # a page with nothing left to match moves the cursor to the end (no rescans)
            last = comp.readings_after(cursor, 4, units=["nope"])
            assert last["items"] == [] and int(last["next"]) == ctx.store.query("SELECT MAX(id) FROM readings")[0][0]
            both = comp.readings_after(0, 1000, units=["u-a", "u-b"], end="2026-12-02T00:00:00.000Z")
            assert len(both["items"]) == 10
        finally:
            await stop_context(ctx)

    asyncio.run(main())
