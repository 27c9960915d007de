"""Supervision: escalation of unacknowledged alarms, and panel liveness (silence faults, per account, across restarts)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alarms.harness import FakeAccess, events, run, site
from conftest import free_port, make_config, until

from drivers.sim.alarm_panel import Dc09Panel
from gateway.alarms import AlarmsComponent
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(60)


def test_escalation_repeats_until_ack(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        await panel.send("ADM-CID", "1110 01 001")
        await until(lambda: len(events(ctx, "alarm.escalated")) >= 2)
        esc = events(ctx, "alarm.escalated")
        assert esc[0]["kind"] == "fire" and esc[0]["count"] == 1 and esc[1]["count"] == 2
        await alarms.acknowledge(esc[0]["alarm"], "alice", "operator", "on it")
        n = len(events(ctx, "alarm.escalated"))
        await asyncio.sleep(0.6)
        assert len(events(ctx, "alarm.escalated")) == n

    run(tmp_path, body)


def test_escalation_follows_the_clock(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        await panel.send("ADM-CID", "1301 01 000")          # AC loss: fault, default 900 s
        assert await alarms.supervision.check_escalations() == []
        ctx.clock.offset += timedelta(seconds=901)
        await alarms.supervision.check_escalations()            # (the watch loop may have done it first)
        await until(lambda: len(events(ctx, "alarm.escalated")) == 1)
        assert await alarms.supervision.check_escalations() == []
        assert events(ctx, "alarm.escalated")[0]["kind"] == "fault"

    run(tmp_path, body, extra="")


def test_supervision_silence_raises_fault_and_restores(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        await until(lambda: any(a["code"] == "silent" for a in alarms.list_alarms("open")), 5)
        [fault] = [a for a in alarms.list_alarms("open") if a["code"] == "silent"]
        assert fault["kind"] == "fault" and fault["receiver"] == "duty-panel"
        # the receiver is reported offline right after the fault is committed (the next await, not the same one)
        await until(lambda: any(d["id"] == "duty-panel" for d in ctx.devices.offline()), 5)
        assert await panel.send("NULL") == "ACK"                 # a supervision poll
        await until(lambda: alarms.get_alarm(fault["id"])["state"] == "restored", 5)
        await until(lambda: events(ctx, "device.online"), 5)
        assert not any(d["id"] == "duty-panel" for d in ctx.devices.offline())
        assert [e["device"] for e in events(ctx, "device.online")] == ["duty-panel"]

    run(tmp_path, body, supervision_s=0.4)


def test_periodic_test_refreshes_liveness_without_alarm(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        for _ in range(6):
            assert await panel.send("ADM-CID", "1602 00 000") == "ACK"
            await asyncio.sleep(0.15)
        assert alarms.list_alarms("all") == []
        assert ctx.store.query_one("SELECT COUNT(*) FROM alarm_signals WHERE code='602'")[0] == 6

    run(tmp_path, body, supervision_s=0.5)


def test_silence_survives_a_restart_until_the_panel_is_heard(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = make_config(tmp_path, site(free_port(), free_port(), free_port(), supervision_s=0.3))
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[FakeAccess(), alarms])
        try:
            await until(lambda: alarms.list_alarms("open"))
        finally:
            await stop_context(ctx)
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[FakeAccess(), alarms])
        try:
            await asyncio.sleep(0.2)      # restarted inside the interval: still silent, not restored
            [a] = alarms.list_alarms("open")
            assert a["code"] == "silent" and a["state"] == "raised"
            assert any(d["id"] == "duty-panel" for d in ctx.devices.offline())
            panel = Dc09Panel("127.0.0.1", alarms.ports["duty-panel"])
            assert await panel.send("NULL") == "ACK"
            await panel.close()
            await until(lambda: alarms.get_alarm(a["id"])["state"] == "restored")
            assert len(alarms.list_alarms("all")) == 1
        finally:
            await stop_context(ctx)

    asyncio.run(main())


def test_each_account_is_supervised_on_its_own(tmp_path: Path) -> None:
    async def main() -> None:
        port = free_port()
        cfg = make_config(tmp_path, f"""
[[alarm_receivers]]
id = "rcv"
protocol = "sia-dc09"
listen = "127.0.0.1:{port}"
accounts = ["1111", "2222"]
supervision_s = 0.6

[alarms]
tick_s = 0.05
""")
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[alarms])
        talker = Dc09Panel("127.0.0.1", alarms.ports["rcv"], account="1111")
        try:
            async def chatter() -> None:
                while True:
                    await talker.send("NULL")
                    await asyncio.sleep(0.1)

            task = asyncio.create_task(chatter())
            await until(lambda: alarms.list_alarms("open"), 10)
            await asyncio.sleep(0.3)
            silent = alarms.list_alarms("open")
            assert [(a["account"], a["code"], a["kind"]) for a in silent] == [("2222", "silent", "fault")]
            assert any(d["id"] == "rcv" for d in ctx.devices.offline())
            # hearing the quiet panel ends its silence; its own AC restore (fault, zone 0) is not taken for it
            quiet = Dc09Panel("127.0.0.1", alarms.ports["rcv"], account="2222")
            assert await quiet.send("ADM-CID", "3301 00 000") == "ACK"
            await quiet.close()
            await until(lambda: alarms.get_alarm(silent[0]["id"])["state"] == "restored", 5)
            row = ctx.store.query_one("SELECT alarm FROM alarm_signals WHERE code='301'")
            assert row is not None and row[0] is None
            await until(lambda: not ctx.devices.offline(), 5)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            await talker.close()
            await stop_context(ctx)

    asyncio.run(main())
