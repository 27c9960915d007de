"""``GET /api/v1/console/events``: the newest events a page may see, for "Latest events" after a reload."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import make_config

from gateway.console import ConsoleComponent
from gateway.daemon import build_context, stop_context


def test_recent_events_newest_first_by_role_without_readings(tmp_path: Path) -> None:
    async def main() -> None:
        comp = ConsoleComponent()
        ctx = await build_context(make_config(tmp_path), components=[comp])
        try:
            await ctx.events.record("alarm.raised", {"alarm": 1, "kind": "fire"})
            await ctx.events.record("card.issued", {"card": "26:00", "unit": "3-1-0201"})
            for i in range(50):   # a busy meter bus: readings must not bury the rest
                await ctx.events.record("meter.reading", {"meter": "m1", "values": {"total_m3": i}})
            await ctx.events.record("door.forced", {"door": "d1"})
            op = comp.recent_events("operator", 40)
            types = [e["type"] for e in op]
            assert types[:2] == ["door.forced", "alarm.raised"] and "meter.reading" not in types
            assert "card.issued" not in types                      # not on an operator's stream either
            assert [e["seq"] for e in op] == sorted((e["seq"] for e in op), reverse=True)
            tech = [e["type"] for e in comp.recent_events("technician", 40)]
            assert "card.issued" in tech and "alarm.raised" not in tech
            assert len(comp.recent_events("admin", 2)) == 2
            assert comp.recent_events("nobody", 40) == []
        finally:
            await stop_context(ctx)

    asyncio.run(main())
