"""Shift handover: the report gathered from every area (through ctx.handover_sources), its record, events since, the shift."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alarms.harness import FakeAccess, events, run

from drivers.sim.alarm_panel import Dc09Panel
from gateway.alarms import AlarmsComponent, HandoverIn

pytestmark = pytest.mark.timeout(60)


def test_handover_report_and_record(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        await panel.send("ADM-CID", "1130 01 001")
        await panel.send("ADM-CID", "1301 01 000")
        aid = alarms.list_alarms("all")[-1]["id"]
        await alarms.acknowledge(aid, "alice", "operator", "seen")
        await ctx.events.record("door.forced", {"door": "b3-u1"})   # forced and closed again before the handover
        rep = alarms.handover.report()
        assert len(rep["open_alarms"]) == 2 and len(rep["unacknowledged_alarms"]) == 1
        assert rep["doors"] == [{"id": "b3-u1", "state": "forced"}]
        assert rep["since"] is None and rep["shift"] in ("day", "night")
        assert [(e["type"], e.get("door")) for e in rep["events_since"]] == [("door.forced", "b3-u1")]
        res = await alarms.handover.record(HandoverIn.model_validate({"from": "alice", "to": "bob", "notes": "n"}),
                                           "alice", "operator")
        assert sorted(res["open_alarms"]) == sorted(a["id"] for a in rep["open_alarms"])
        [ev] = events(ctx, "shift.handover")
        assert ev["from"] == "alice" and ev["to"] == "bob" and ev["notes"] == "n"
        rep2 = alarms.handover.report()
        assert rep2["since"] == res["ts"] and rep2["last_handover"]["to"] == "bob"
        assert rep2["alarms_since"] == [] and rep2["events_since"] == [] and rep2["events_since_truncated"] is False
        # after the handover: a door forced (and closed), a reader that went offline and came back, an anomaly
        forced = await ctx.events.record("door.forced", {"door": "b3-u1"})
        await ctx.devices.set_state("r1", "reader", False, "no answer")
        await ctx.devices.set_state("r1", "reader", True)
        await ctx.events.record("meter.anomaly", {"meter": "m1", "unit": "3-1", "kind": "leak", "hours": 24})
        await ctx.events.record("door.opened", {"door": "b3-u1"})     # routine: not in the report
        rep3 = alarms.handover.report()
        got = rep3["events_since"]
        assert [e["type"] for e in got] == ["door.forced", "device.offline", "device.online", "meter.anomaly"]
        assert got[0] == {"seq": forced.seq, "ts": forced.ts, "type": "door.forced", "door": "b3-u1", "reason": ""}
        assert got[1]["device"] == "r1" and got[1]["kind"] == "reader" and got[1]["reason"] == "no answer"
        assert got[3]["meter"] == "m1" and got[3]["anomaly"] == "leak" and "kind" not in got[3]
        assert rep3["doors"] == rep["doors"] and rep3["devices_offline"] == []   # the snapshots are unchanged
        # the next handover starts afresh; a busy shift gives the newest events and says so
        await alarms.handover.record(HandoverIn.model_validate({"from": "bob", "to": "carol"}), "bob", "operator")
        assert alarms.handover.report()["events_since"] == []
        ctx.clock.offset += timedelta(seconds=1)
        for i in range(5):
            await ctx.events.record("door.held_open", {"door": "b3-u1", "seconds": 30 + i})
        items, more = alarms.handover.events_since(alarms.handover.last()["ts"], limit=3)
        assert more and [e["seconds"] for e in items] == [32, 33, 34]
        # the handover's own event pruned from the log: its time bounds the list instead
        await ctx.store.write(lambda c: c.execute("DELETE FROM events WHERE type = 'shift.handover'"))
        assert [e["seconds"] for e in alarms.handover.report()["events_since"]] == [30, 31, 32, 33, 34]

    run(tmp_path, body)


def test_shift_by_site_time(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        from datetime import datetime
        from zoneinfo import ZoneInfo

        ctx.clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
        assert alarms.handover.current_shift() == "day"
        ctx.clock.set(datetime(2026, 11, 23, 18, 31, tzinfo=ZoneInfo("Asia/Shanghai")))
        assert alarms.handover.current_shift() == "night"
        ctx.clock.set(datetime(2026, 11, 24, 8, 29, tzinfo=ZoneInfo("Asia/Shanghai")))
        assert alarms.handover.current_shift() == "night"

    run(tmp_path, body)
