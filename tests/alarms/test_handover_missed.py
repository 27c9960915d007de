"""Missed shift handovers (``shift.handover_missed`` once per change, cleared by the handover) and what the handover
report adds for the duty room: failed swipes by door and reason, open supervision faults, missed handovers."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from alarms.harness import FakeAccess, events, run, site
from conftest import free_port, make_config, token_for, tokens_toml, until

from drivers.sim.alarm_panel import Dc09Panel
from gateway.alarms import AlarmsComponent, HandoverIn, rules, shifts
from gateway.api.app import create_app
from gateway.daemon import build_context, stop_context
from gateway.events import format_ts

pytestmark = pytest.mark.timeout(60)

SH = ZoneInfo("Asia/Shanghai")
GRACE = timedelta(minutes=30)


def _local(day: int, hh: int, mm: int) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=SH)


# ---------------------------------------------------------------------- the calendar (pure)
def test_last_change_agrees_with_the_shift_on_duty() -> None:
    start = _local(23, 0, 0)
    for minute in range(0, 24 * 60, 7):
        now = start + timedelta(minutes=minute, seconds=30)
        change = shifts.last_change(now, "08:30", "18:30")
        assert change.shift == rules.shift_at(now.strftime("%H:%M"), "08:30", "18:30")
        assert timedelta(0) <= now - change.at < timedelta(hours=14)
        assert change.at.strftime("%H:%M") in ("08:30", "18:30")
    assert shifts.last_change(_local(23, 8, 30), "08:30", "18:30") == shifts.ShiftChange(_local(23, 8, 30), "day")
    assert shifts.last_change(_local(23, 8, 29), "08:30", "18:30") == shifts.ShiftChange(_local(22, 18, 30), "night")
    assert shifts.last_change(_local(24, 0, 5), "08:30", "18:30") == shifts.ShiftChange(_local(23, 18, 30), "night")


def test_when_a_handover_is_missed() -> None:
    change = shifts.ShiftChange(_local(23, 8, 30), "day")
    long_ago = _local(1, 0, 0)
    assert shifts.due_at(change, GRACE, long_ago) == _local(23, 9, 0)
    assert shifts.due_at(change, GRACE, _local(23, 8, 50)) == _local(23, 9, 20)   # grace after a start
    assert not shifts.missed(_local(23, 8, 59), change, GRACE, long_ago, None)       # not yet due
    assert shifts.missed(_local(23, 9, 0), change, GRACE, long_ago, None)
    assert shifts.missed(_local(23, 9, 0), change, GRACE, long_ago, _local(23, 7, 59))   # before the window
    assert not shifts.missed(_local(23, 9, 0), change, GRACE, long_ago, _local(23, 8, 0))  # a bit early counts
    assert not shifts.missed(_local(23, 9, 30), change, GRACE, long_ago, _local(23, 9, 10))
    assert not shifts.missed(_local(23, 12, 0), change, timedelta(0), long_ago, None)    # 0 = not watched


# ---------------------------------------------------------------------- the watch
def _at(ctx: Any, days: int, hh: int, mm: int) -> None:
    """Pretend it is HH:MM site time, ``days`` after today (the future: later than the gateway's start)."""
    base = datetime.now(ctx.clock.tz).date() + timedelta(days=days)
    ctx.clock.set(datetime.combine(base, time(hh, mm), ctx.clock.tz))


def _change(ctx: Any, days: int, hh: int, mm: int) -> str:
    base = datetime.now(ctx.clock.tz).date() + timedelta(days=days)
    return format_ts(datetime.combine(base, time(hh, mm), ctx.clock.tz))


async def _handover(alarms: AlarmsComponent, who: str, to: str) -> dict[str, Any]:
    return await alarms.handover.record(HandoverIn.model_validate({"from": who, "to": to}), who, "operator")


def test_missed_handover_raised_once_and_cleared(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        watch = alarms.missed_handover
        _at(ctx, 1, 8, 40)                                   # 10 minutes into the day shift: not due yet
        assert await watch.check() is False
        _at(ctx, 1, 9, 1)                                    # 30 minutes' grace passed, nobody handed over
        [ev] = await until(lambda: events(ctx, "shift.handover_missed"), 5, "shift.handover_missed")
        assert ev == {"shift": "day", "change_at": _change(ctx, 1, 8, 30), "due_at": _change(ctx, 1, 9, 0),
                      "last_handover": None}
        _at(ctx, 1, 9, 2)
        assert await watch.check() is False                  # once per shift change
        [missed] = alarms.handover.report()["handover_missed"]
        assert (missed["shift"], missed["change_at"]) == ("day", ev["change_at"])
        # the handover is written late: the missed one is cleared in the same transaction
        _at(ctx, 1, 9, 5)
        res = await _handover(alarms, "alice", "bob")
        assert events(ctx, "shift.handover_missed_cleared") == [
            {"shift": "day", "change_at": ev["change_at"], "handover": res["id"]}]
        assert alarms.handover.report()["handover_missed"] == []
        # the evening: handed over a little early -> the night change is not missed
        _at(ctx, 1, 18, 10)
        await _handover(alarms, "bob", "carol")
        _at(ctx, 1, 19, 1)
        assert await watch.check() is False
        await asyncio.sleep(0.2)
        assert len(events(ctx, "shift.handover_missed")) == 1
        # the next morning nobody writes one: raised again, for that change
        _at(ctx, 2, 9, 1)
        await until(lambda: len(events(ctx, "shift.handover_missed")) == 2, 5)
        assert events(ctx, "shift.handover_missed")[1]["change_at"] == _change(ctx, 2, 8, 30)
        assert events(ctx, "shift.handover_missed")[1]["last_handover"] is not None

    run(tmp_path, body)


def test_missed_handover_is_remembered_across_a_restart(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = make_config(tmp_path, site(free_port(), free_port(), free_port()))
        for attempt in range(2):
            alarms = AlarmsComponent()
            ctx = await build_context(cfg, components=[FakeAccess(), alarms])
            try:
                _at(ctx, 1, 9, 1)
                await alarms.missed_handover.check()
                await asyncio.sleep(0.2)
                assert len(events(ctx, "shift.handover_missed")) == 1, attempt   # not raised again after a restart
                assert len(alarms.handover.report()["handover_missed"]) == 1
            finally:
                await stop_context(ctx)

    asyncio.run(main())


def test_a_fresh_start_gives_the_duty_room_its_grace(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        watch = alarms.missed_handover
        _at(ctx, 1, 14, 0)
        watch.started = ctx.clock.now()                      # as if the gateway had just started at 14:00
        assert await watch.check() is False                  # the 08:30 change is judged from 14:30 on
        _at(ctx, 1, 14, 31)
        await until(lambda: events(ctx, "shift.handover_missed"), 5)
        assert events(ctx, "shift.handover_missed")[0]["due_at"] == _change(ctx, 1, 14, 30)

    run(tmp_path, body, extra="handover_grace_s = 1800")


# ---------------------------------------------------------------------- what the report adds
def test_failed_swipes_summarised_since_the_last_handover(tmp_path: Path) -> None:
    async def denied(ctx: Any, door: str, card: str, reason: str) -> None:
        await ctx.events.record("access.denied", {"door": door, "card": card, "reason": reason})

    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        await denied(ctx, "b3-u1", "26:0a1b2c40", "unknown")          # the previous shift's
        assert alarms.handover.report()["failed_swipes_total"] == 1
        await _handover(alarms, "alice", "bob")
        ctx.clock.offset += timedelta(seconds=1)
        rep = alarms.handover.report()
        assert rep["failed_swipes"] == [] and rep["failed_swipes_total"] == 0
        for door, card, reason in [("b3-u1", "26:0a1b2c40", "unknown"), ("gate", "34:00ffee1122", "expired"),
                                   ("b3-u1", "26:0a1b2c41", "unknown"), ("b3-u1", "26:0a1b2c40", "revoked"),
                                   ("gate", "34:00ffee1122", "expired"), ("b3-u1", "26:0a1b2c42", "unknown")]:
            await denied(ctx, door, card, reason)
        await ctx.events.record("access.granted", {"door": "gate", "card": "26:0a1b2c43", "unit": "3-1",
                                                   "holder_kind": "resident"})
        want = [{"door": "b3-u1", "reason": "unknown", "count": 3}, {"door": "gate", "reason": "expired", "count": 2},
                {"door": "b3-u1", "reason": "revoked", "count": 1}]
        rep = alarms.handover.report()
        assert rep["failed_swipes"] == want and rep["failed_swipes_total"] == 6
        assert "26:" not in json.dumps(rep["failed_swipes"])              # where to look, not who
        # the handover's own event pruned from the log: its time bounds the count instead
        await ctx.store.write(lambda c: c.execute("DELETE FROM events WHERE type = 'shift.handover'"))
        assert alarms.handover.report()["failed_swipes"] == want

    run(tmp_path, body)


def test_handover_over_http_carries_the_new_sections(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = make_config(tmp_path, site(free_port(), free_port(), free_port(), supervision_s=0.3) + tokens_toml())
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[FakeAccess(), alarms])
        headers = {"Authorization": f"Bearer {token_for('operator')}"}
        try:
            await until(lambda: alarms.list_alarms("open"), 10, "silence fault")
            _at(ctx, 1, 9, 1)  # first: the swipe is then within the report's 24 h whatever the time of day now
            await ctx.events.record("access.denied", {"door": "b3-u1", "card": "26:0a1b2c40", "reason": "unknown"})
            await alarms.missed_handover.check()
            transport = httpx.ASGITransport(app=create_app(ctx))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                r = await client.get("/api/v1/handover", headers=headers)
                assert r.status_code == 200, r.text
                rep = r.json()
                assert [f["receiver"] for f in rep["supervision_faults"]] == ["duty-panel"]
                assert rep["supervision_off"] == []
                assert rep["failed_swipes"] == [{"door": "b3-u1", "reason": "unknown", "count": 1}]
                assert rep["failed_swipes_total"] == 1
                [missed] = rep["handover_missed"]
                assert missed["shift"] == "day" and missed["text"]
                r = await client.post("/api/v1/handover", headers=headers, json={"from": "alice", "to": "bob"})
                assert r.status_code == 201
                assert (await client.get("/api/v1/handover", headers=headers)).json()["handover_missed"] == []
        finally:
            await stop_context(ctx)

    asyncio.run(main())
