"""The walk over a real store and event log, in-process: one commit's events settle together, an open walk
survives a restart of the gateway, a finish commits its report, event and audit row together, and a mark the
store refuses leaves the step in memory as the store has it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from conftest import make_config, until

from gateway.commissioning import CommissioningComponent, register
from gateway.commissioning.models import FinishBody, MarkBody, StartBody
from gateway.daemon import build_context, stop_context

SITE = """
[[readers]]
id = "r1"
driver = "osdp"
port = "socket://127.0.0.1:9"

[[doors]]
id = "d1"
name = "B3 entrance"
building = "3"
reader = "r1"

[[alarm_receivers]]
id = "panel"
protocol = "sia-dc09"
listen = "127.0.0.1:9"
accounts = ["1234"]

[[alarm_zones]]
receiver = "panel"
zone = 12
building = "3"
name = "B3 stairwell"
"""


def test_steps_from_the_event_log_survive_a_restart_and_finish_together(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, SITE)

    def status(comp: CommissioningComponent, run: int, device: str, step: str) -> str:
        view = comp.walk.view(run)
        return next(s["status"] for b in view["buildings"] for d in b["devices"] if d["device"] == device
                    for s in d["steps"] if s["step"] == step)

    async def first_life() -> int:
        comp = CommissioningComponent()
        ctx = await build_context(cfg, components=[comp])
        try:
            run = (await comp.walk.start(StartBody(scope="site"), "tech", "technician"))["id"]
            await ctx.events.record("access.granted", {"door": "d1", "card": "26:0a", "unit": "3-1"})
            await ctx.events.record("door.opened", {"door": "d1", "authorized": True})
            # one transaction: the signal and its restore arrive in one dispatch
            await ctx.events.transact(lambda conn, emit: [
                emit("alarm.raised", {"alarm": 4, "receiver": "panel", "zone": 12, "kind": "burglary"}),
                emit("alarm.restored", {"alarm": 4, "receiver": "panel", "zone": 12})])
            await until(lambda: status(comp, run, "panel/12", "signal") == "done", 10, "the zone seen")
            assert status(comp, run, "d1", "grant") == "done"
            assert status(comp, run, "r1", "online") == "done"   # a card read at its door
            await comp.walk.mark(run, MarkBody(device="d1", step="held_open", status="na", reason="no closer"),
                                 "tech", "technician")
            await comp.tracker.settle()
            return int(run)
        finally:
            await stop_context(ctx)

    async def second_life(run: int) -> None:
        comp = CommissioningComponent()
        ctx = await build_context(cfg, components=[comp])
        try:
            # what was seen before the restart is there, and the walk goes on being checked
            assert status(comp, run, "d1", "grant") == "done" and status(comp, run, "d1", "held_open") == "na"
            await ctx.events.record("access.denied", {"door": "d1", "card": "26:0b", "reason": "unknown"})
            await until(lambda: status(comp, run, "d1", "refuse") == "done", 10, "the refusal seen")
            done = await comp.walk.finish(run, FinishBody(note="ok"), "tech", "technician")
            assert done["state"] == "finished" and done["summary"]["result"] == "incomplete"   # contact not tried
            events = [e for e in ctx.events.query(0, 1000) if e.type == "site.commissioned"]
            assert len(events) == 1 and events[0].data["steps"]["na"] == 1
            assert [a["action"] for a in ctx.audit.query(0, 1000)][-1] == "commissioning.finish"
            assert "no closer" in comp.walk.report(run, "en") and "调试验收报告" in comp.walk.report(run, "zh")
            # a finished walk no longer follows events
            assert comp.tracker.runs == {}
        finally:
            await stop_context(ctx)

    run = asyncio.run(first_life())
    asyncio.run(second_life(run))


def test_a_mark_the_store_refuses_changes_nothing_in_memory(tmp_path: Path) -> None:
    """The store refuses the write (a trigger aborts it, as a full or broken disk would): the step stays pending
    in memory as in the store, and no audit row; once the store takes writes again, the mark is kept."""
    cfg = make_config(tmp_path, SITE)
    refuse = ("CREATE TRIGGER refuse_steps BEFORE UPDATE ON commissioning_steps "
              "BEGIN SELECT RAISE(ABORT, 'the disk says no'); END")

    async def main() -> None:
        comp = CommissioningComponent()
        ctx = await build_context(cfg, components=[comp])
        try:
            run = (await comp.walk.start(StartBody(scope="site"), "tech", "technician"))["id"]
            await ctx.store.write(lambda conn: conn.execute(refuse))
            body = MarkBody(device="d1", step="held_open", status="failed", reason="closer missing")
            with pytest.raises(sqlite3.DatabaseError, match="the disk says no"):
                await comp.walk.mark(run, body, "tech", "technician")
            live = comp.tracker.runs[run][("d1", "held_open")]
            assert (live.status, live.by, live.reason) == ("pending", None, "")
            assert "commissioning.failed" not in [a["action"] for a in ctx.audit.query(0, 1000)]
            await ctx.store.write(lambda conn: conn.execute("DROP TRIGGER refuse_steps"))
            marked = await comp.walk.mark(run, body, "tech", "technician")
            assert marked["status"] == "failed" and (live.status, live.reason) == ("failed", "closer missing")
            stored = {(s.device, s.step): s for s in register.steps_of(ctx.store, run)}
            assert stored[("d1", "held_open")].status == "failed"
        finally:
            await stop_context(ctx)

    asyncio.run(main())
