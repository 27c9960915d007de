"""Each meter's newest reading, as a restart seeds it: one seek per meter in the (meter, id) index (a walk from one
meter to the next), the same answer the GROUP BY over every reading gave -- interleaved meters, names that sort
oddly, a meter with one reading, an empty table."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import make_config

from gateway.daemon import build_context, stop_context
from gateway.metering import register

pytestmark = pytest.mark.timeout(60)


def test_newest_reading_of_every_meter(tmp_path: Path) -> None:
    async def main() -> None:
        ctx = await build_context(make_config(tmp_path), components=[], start=False)
        try:
            ctx.store.add_migrations("metering", register.MIGRATIONS)
            assert register.last_readings(ctx.store) == []
            names = ["m2", "m10", "m1", "", "水表-3"]

            def write(conn: object) -> None:
                for i in range(60):
                    meter = names[i % len(names)] if i < 55 else "m10"
                    register.insert_reading(conn, meter, "u", f"2026-12-01T00:{i:02d}:00.000Z",
                                            register.encode_values({"total_m3": float(i)}))
                register.insert_reading(conn, "once", "u", "2026-11-30T00:00:00.000Z", "{}")
            await ctx.store.write(write)
            want = ctx.store.query("SELECT r.meter, r.read_at, r.vals FROM readings r JOIN (SELECT meter, MAX(id) AS id "
                                   "FROM readings GROUP BY meter) last ON last.id = r.id")
            got = register.last_readings(ctx.store)
            assert sorted(got, key=str) == sorted(((m, at, json.loads(v)) for m, at, v in want), key=str)
            assert dict((m, v) for m, _, v in got)["m10"] == {"total_m3": 59.0} and len(got) == 6
        finally:
            await stop_context(ctx)

    asyncio.run(main())
