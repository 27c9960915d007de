"""The handover report before any handover was recorded covers the last 24 hours (``covers_from``), not the whole
event log: on a year's log the report stays a day's read (failed swipes, events since, alarms raised since)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alarms.harness import FakeAccess, run

from drivers.sim.alarm_panel import Dc09Panel
from gateway.alarms import AlarmsComponent, HandoverIn
from gateway.events import format_ts

pytestmark = pytest.mark.timeout(60)


def test_first_report_covers_the_last_day(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        ctx.clock.offset -= timedelta(hours=30)                      # a day and more ago: outside the first window
        await ctx.events.record("access.denied", {"door": "gate", "card": "26:0a1b2c40", "reason": "expired"})
        await ctx.events.record("door.forced", {"door": "gate"})
        ctx.clock.offset += timedelta(hours=30)
        await ctx.events.record("access.denied", {"door": "b3-u1", "card": "26:0a1b2c41", "reason": "unknown"})
        await ctx.events.record("door.forced", {"door": "b3-u1"})
        rep = alarms.handover.report()
        assert rep["since"] is None and rep["last_handover"] is None
        day_ago = ctx.clock.now() - timedelta(hours=24)
        assert format_ts(day_ago - timedelta(minutes=1)) < rep["covers_from"] <= format_ts(day_ago)
        assert rep["failed_swipes"] == [{"door": "b3-u1", "reason": "unknown", "count": 1}]
        assert [e.get("door") for e in rep["events_since"]] == ["b3-u1"]
        # once a handover is recorded the report covers what came after it, as before
        res = await alarms.handover.record(HandoverIn.model_validate({"from": "alice", "to": "bob"}), "alice",
                                           "operator")
        ctx.clock.offset += timedelta(seconds=1)
        await ctx.events.record("access.denied", {"door": "gate", "card": "26:0a1b2c40", "reason": "expired"})
        rep = alarms.handover.report()
        assert rep["since"] == rep["covers_from"] == res["ts"]
        assert rep["failed_swipes"] == [{"door": "gate", "reason": "expired", "count": 1}]

    run(tmp_path, body)


def test_first_window_bound_survives_an_early_event_stamped_in_the_future(tmp_path: Path) -> None:
    """A first boot before the clock was set stamps its events in the future; history logged after it is
    stamped right. The window's seq bound starts after the newest event stamped at or before the window's start,
    so the report still reads a day, not the whole log from that early event (found by bench_year: 154 ms)."""
    from gateway.alarms import store as db

    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        ctx.clock.offset -= timedelta(hours=20)                       # the early event, stamped "later" than
        first = (await ctx.events.record("device.offline", {"device": "x"})).seq  # the history logged after it
        ctx.clock.offset -= timedelta(hours=10)                       # history: 30 hours ago, then now
        old = (await ctx.events.record("access.denied", {"door": "gate", "card": "26:0a1b2c40",
                                                              "reason": "expired"})).seq
        ctx.clock.offset += timedelta(hours=30)
        new = (await ctx.events.record("access.denied", {"door": "b3-u1", "card": "26:0a1b2c41",
                                                              "reason": "unknown"})).seq
        assert first < old < new
        since = alarms.handover.first_window_start()
        assert db.first_seq_after(ctx.store, since) == old + 1        # not `first`: the read starts at the day
        rep = alarms.handover.report()
        assert rep["failed_swipes"] == [{"door": "b3-u1", "reason": "unknown", "count": 1}]

    run(tmp_path, body)
