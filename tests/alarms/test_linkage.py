"""Fire linkage: a fire alarm holds its zone's doors through ctx.door_holds until restored and acknowledged; holds owed are re-applied at start."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from alarms.harness import FakeAccess, events, run, site
from conftest import free_port, make_config

from drivers.sim.alarm_panel import Dc09Panel
from gateway.alarms import AlarmsComponent
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(60)


def test_fire_linkage_holds_until_restored_and_acked(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        t0 = time.monotonic()
        await panel.send("ADM-CID", "1111 01 012")      # smoke in zone 12
        hold = fake.calls[0]
        assert hold[:3] == ("hold", ("b3-u1",), "fire") and hold[4] - t0 < 1.0
        aid = events(ctx, "alarm.raised")[0]["alarm"]
        assert alarms.get_alarm(aid)["doors_held"] is True
        await panel.send("ADM-CID", "3111 01 012")      # restored, not yet acknowledged: still held
        assert fake.held
        await alarms.acknowledge(aid, "alice", "operator", "checked")
        assert fake.calls[-1] == ("release", f"alarm-{aid}") and not fake.held
        assert alarms.get_alarm(aid)["doors_held"] is False
        # a burglary in the same zone does not touch doors
        await panel.send("ADM-CID", "1130 01 012")
        assert len(fake.calls) == 2

    run(tmp_path, body)


def test_holds_reapplied_at_start(tmp_path: Path) -> None:
    """A crash after the commit but before the hold: the next start holds the doors."""

    async def main() -> None:
        cfg = make_config(tmp_path, site(free_port(), free_port(), free_port()))
        fake, alarms = FakeAccess(), AlarmsComponent()
        ctx = await build_context(cfg, components=[fake, alarms])
        alarms.linkage.hold = lambda *a: asyncio.sleep(0)   # type: ignore[method-assign]  # "crash" before holding
        panel = Dc09Panel("127.0.0.1", alarms.ports["duty-panel"])
        await panel.send("ADM-CID", "1110 01 012")
        await panel.close()
        assert fake.calls == []
        await stop_context(ctx)
        fake2 = FakeAccess()
        ctx = await build_context(cfg, components=[fake2, AlarmsComponent()])
        try:
            assert fake2.calls and fake2.calls[0][:3] == ("hold", ("b3-u1",), "fire")
        finally:
            await stop_context(ctx)

    asyncio.run(main())
