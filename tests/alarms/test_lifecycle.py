"""Alarm lifecycle in process over real DC-09 panels: raise, acknowledge, restore in either order, close; retries deduplicated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alarms.harness import FakeAccess, events, run

from drivers.sim.alarm_panel import Dc09Panel
from gateway.alarms import AlarmAlreadyAcknowledged, AlarmNotFound, AlarmsComponent

pytestmark = pytest.mark.timeout(60)


def test_lifecycle_ack_then_restore_closes(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        assert await panel.send("ADM-CID", "1130 01 005") == "ACK"
        [raised] = events(ctx, "alarm.raised")
        assert raised["kind"] == "burglary" and raised["zone"] == 5 and raised["account"] == "1234"
        aid = raised["alarm"]
        assert alarms.list_alarms("unacknowledged")[0]["id"] == aid
        await alarms.acknowledge(aid, "alice", "operator", "guard sent")
        assert alarms.get_alarm(aid)["state"] == "acknowledged"
        with pytest.raises(AlarmAlreadyAcknowledged):
            await alarms.acknowledge(aid, "alice", "operator", "again")
        with pytest.raises(AlarmNotFound):
            await alarms.acknowledge(999, "alice", "operator", "x")
        assert await panel.send("ADM-CID", "3130 01 005") == "ACK"
        assert alarms.get_alarm(aid)["state"] == "closed"
        assert [e["alarm"] for e in events(ctx, "alarm.closed")] == [aid]
        assert events(ctx, "alarm.acknowledged")[0] == {"alarm": aid, "by": "alice", "note": "guard sent"}
        audit = ctx.audit.query()
        assert audit[-1]["action"] == "alarm.ack" and audit[-1]["target"] == str(aid)

    run(tmp_path, body)


def test_restore_before_ack_stays_open_until_ack(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        await panel.send("SIA-DCS", "Nri1/PA003")
        await panel.send("SIA-DCS", "Nri1/PR003")
        [a] = alarms.list_alarms("all")
        assert a["state"] == "restored" and a["kind"] == "panic"
        assert alarms.list_alarms("open")[0]["id"] == a["id"]
        await alarms.acknowledge(a["id"], "bob", "operator", "false alarm")
        assert alarms.get_alarm(a["id"])["state"] == "closed"
        assert alarms.list_alarms("open") == []

    run(tmp_path, body)


def test_duplicate_block_acked_again_but_one_alarm(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        assert await panel.send("ADM-CID", "1110 01 003", seq=42) == "ACK"
        assert await panel.send("ADM-CID", "1110 01 003", seq=42) == "ACK"   # the panel's retry
        assert len(events(ctx, "alarm.raised")) == 1
        assert alarms.stats["duplicates"] == 1
        # same seq, different content (sequence wrapped): a new event
        assert await panel.send("ADM-CID", "1130 01 004", seq=42) == "ACK"
        assert len(events(ctx, "alarm.raised")) == 2

    run(tmp_path, body)


def test_walk_tests_are_recorded_without_an_alarm(tmp_path: Path) -> None:
    """A panel's walk-test report (Contact ID 611/613/614/615, SIA TP) raises nothing but is recorded as
    ``alarm.test_received``: the commissioning walk sees the zone work. Other logged codes stay silent."""
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        for payload in ("1611 01 004", "1613 01 005", "1614 01 006", "1615 01 007", "1612 01 008"):
            assert await panel.send("ADM-CID", payload) == "ACK"
        assert await panel.send("SIA-DCS", "Nri1/TP009") == "ACK"
        assert await panel.send("SIA-DCS", "Nri1/TS010") == "ACK"     # test start: news only, no zone proven
        got = [(e["zone"], e["code"], e["account"]) for e in events(ctx, "alarm.test_received")]
        assert got == [(4, "611", "1234"), (5, "613", "1234"), (6, "614", "1234"), (7, "615", "1234"),
                       (9, "TP", "1234")]
        assert alarms.list_alarms("all") == [] and events(ctx, "alarm.raised") == []

    run(tmp_path, body)
