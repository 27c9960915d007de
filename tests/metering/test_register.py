"""The metering register against a real store: pruning, the reading cursor, billing once, valve rows, seeding."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from conftest import make_config

from gateway.daemon import build_context, stop_context
from gateway.metering import MeteringComponent, register


def test_old_readings_are_pruned_billing_rows_kept(tmp_path: Path) -> None:
    async def main() -> None:
        comp = MeteringComponent()
        ctx = await build_context(make_config(tmp_path, "[metering]\nkeep_days = 30\n"), components=[comp])
        try:
            def seed(conn):
                for ts in ("2026-01-01T00:00:00.000Z", "2026-11-01T00:00:00.000Z"):
                    conn.execute("INSERT INTO readings(meter, unit, read_at, vals) VALUES('m','u',?,'{}')", (ts,))
                conn.execute("INSERT INTO billing_readings VALUES('m','2025Q4','u','2025-12-26T00:00:00.000Z','{}')")
            await ctx.store.write(seed)
            ctx.clock.set(datetime(2026, 11, 23, tzinfo=UTC))
            assert await comp.readings.prune() == 1
            assert ctx.store.query_one("SELECT COUNT(*) FROM readings")[0] == 1
            assert ctx.store.query_one("SELECT COUNT(*) FROM billing_readings")[0] == 1
        finally:
            await stop_context(ctx)

    asyncio.run(main())


def test_cursor_billing_once_valves_and_what_a_restart_seeds(tmp_path: Path) -> None:
    meters = ('[[buses]]\nid = "b"\ntransport = "tcp"\nport = "127.0.0.1:1"\n'
              '[[meters]]\nid = "m"\nbus = "b"\ndevice_id = 1\nprofile = "generic-hot-water"\nunit = "u-1"\n')

    async def main() -> None:
        comp = MeteringComponent()
        ctx = await build_context(make_config(tmp_path, meters), components=[comp], start=False)
        try:
            store = ctx.store

            def write(conn):
                for i, total in enumerate((1.5, 2.5, 3.5)):
                    vals = register.encode_values({"total_m3": total})
                    register.insert_reading(conn, "m", "u-1", f"2026-12-2{i}T00:00:00.000Z", vals)
                first = register.insert_billing_reading(conn, "m", "2026Q4", "u-1", "2026-12-26T00:00:00.000Z", "{}")
                again = register.insert_billing_reading(conn, "m", "2026Q4", "u-1", "2026-12-27T00:00:00.000Z", "{}")
                register.save_valve(conn, "m", "closed", "2026-12-26T00:00:00.000Z", "tech")
                register.save_valve(conn, "m", "open", "2026-12-27T00:00:00.000Z", "central")
                register.insert_billing_report(conn, "2026Q3", "2026-10-01T00:00:00.000Z", ["m"])
                return first, again

            assert await store.write(write) == (True, False)
            items, last = register.readings_after(store, 0, 2)
            assert [i["values"]["total_m3"] for i in items] == [1.5, 2.5]
            items, last = register.readings_after(store, last, 2)
            assert [i["values"]["total_m3"] for i in items] == [3.5]
            assert register.readings_after(store, last, 2) == ([], last)
            assert register.last_readings(store) == [("m", "2026-12-22T00:00:00.000Z", {"total_m3": 3.5})]
            assert register.billed(store) == {("m", "2026Q4")} and register.billed_meters(store, "2026Q4") == {"m"}
            assert register.billing_reported(store, "2026Q3") and not register.billing_reported(store, "2026Q4")
            assert register.valve_states(store) == {"m": "open"}
            # a restart starts from there: last total (plausibility), billing taken, valve state
            await comp.start(ctx)
            m = comp.meters["m"]
            assert (m.prev_total, m.read_at, m.valve) == (3.5, "2026-12-22T00:00:00.000Z", "open")
            assert ("m", "2026Q4") in comp.billing.billed
        finally:
            await stop_context(ctx)

    asyncio.run(main())
