"""Alarm rules in process: lifecycle, dedupe, escalation, supervision, fire linkage, handover (real TCP panels)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from conftest import free_port, make_config, until
from drivers.sim.alarm_panel import Dc09Panel, GbSender, send_contact_id_lines
from drivers.contact_id import format_line
from gateway.alarms import AlarmAlreadyAcknowledged, AlarmNotFound, AlarmsComponent, HandoverIn
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(60)


class FakeAccess:
    """Records hold/release calls (the real access component has its own end-to-end test)."""

    name = "access"
    migrations: list[tuple[int, str]] = []

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.held: dict[str, list[str]] = {}

    def routes(self) -> None:
        return None

    async def start(self, ctx: Any) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def hold_unlocked(self, door_ids: list[str], reason: str, token: str) -> None:
        self.calls.append(("hold", tuple(door_ids), reason, token, time.monotonic()))
        self.held[token] = list(door_ids)

    async def release_hold(self, token: str) -> None:
        self.calls.append(("release", token))
        self.held.pop(token, None)

    def handover_items(self) -> dict[str, Any]:
        return {"doors": [{"id": "b3-u1", "state": "forced"}]}


def site(dc_port: int, cid_port: int, gb_port: int, *, supervision_s: float = 0, extra: str = "") -> str:
    return f"""
[[readers]]
id = "r1"
driver = "serial-ascii"
port = "loop://"

[[doors]]
id = "b3-u1"
building = "3"
reader = "r1"

[[alarm_receivers]]
id = "duty-panel"
protocol = "sia-dc09"
listen = "127.0.0.1:{dc_port}"
accounts = ["1234"]
supervision_s = {supervision_s}

[[alarm_receivers]]
id = "cid-line"
protocol = "contact-id-serial"
listen = "127.0.0.1:{cid_port}"

[[alarm_receivers]]
id = "fire-panel"
protocol = "gb26875"
listen = "127.0.0.1:{gb_port}"

[[alarm_zones]]
receiver = "duty-panel"
zone = 12
building = "3"
name = "B3 stairwell smoke"
unlock_doors = ["b3-u1"]

[alarms]
tick_s = 0.05
escalate_s = {{fire = 0.3, burglary = 0.6}}
{extra}
"""


Body = Callable[[Any, AlarmsComponent, FakeAccess, Dc09Panel], Awaitable[None]]


def run(tmp_path: Path, body: Body, **kw: Any) -> None:
    async def main() -> None:
        dc, cidp, gbp = free_port(), free_port(), free_port()
        cfg = make_config(tmp_path, site(dc, cidp, gbp, **kw))
        fake = FakeAccess()
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[fake, alarms])
        panel = Dc09Panel("127.0.0.1", alarms.ports["duty-panel"])
        try:
            await body(ctx, alarms, fake, panel)
        finally:
            await panel.close()
            await stop_context(ctx)

    asyncio.run(main())


def events(ctx: Any, type_: str) -> list[dict[str, Any]]:
    return [e.data for e in ctx.events.query(0, 1000, [type_])]


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
        assert await alarms.check_escalations() == []
        ctx.clock.offset += timedelta(seconds=901)
        await alarms.check_escalations()            # (the watch loop may have done it first)
        await until(lambda: len(events(ctx, "alarm.escalated")) == 1)
        assert await alarms.check_escalations() == []
        assert events(ctx, "alarm.escalated")[0]["kind"] == "fault"

    run(tmp_path, body, extra="")


def test_supervision_silence_raises_fault_and_restores(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        await until(lambda: any(a["code"] == "silent" for a in alarms.list_alarms("open")), 5)
        [fault] = [a for a in alarms.list_alarms("open") if a["code"] == "silent"]
        assert fault["kind"] == "fault" and fault["receiver"] == "duty-panel"
        assert any(d["id"] == "duty-panel" for d in ctx.devices.offline())
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


def test_contact_id_lines_and_gb26875_frames(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        await send_contact_id_lines("127.0.0.1", alarms.ports["cid-line"], [
            format_line("5678", 1, 130, 1, 7), "garbage line", format_line("5678", 3, 130, 1, 7, dtmf=True)])
        await until(lambda: alarms.list_alarms("all") and alarms.list_alarms("all")[0]["state"] == "restored")
        gbs = GbSender("127.0.0.1", alarms.ports["fire-panel"])
        try:
            confirm = await gbs.send_component(301, 0b0000_0011, "B3 楼梯间烟感")   # running + fire
            assert confirm.command == 3 and confirm.serial == gbs.serial
            fire = [a for a in alarms.list_alarms("open") if a["receiver"] == "fire-panel"]
            assert [(a["kind"], a["zone"], a["text"]) for a in fire] == [("fire", 301, "B3 楼梯间烟感")]
            await gbs.send_component(301, 0b0000_0011)    # reported again: still one alarm
            await gbs.send_component(301, 0b0000_0001)    # normal again: restored
            assert alarms.get_alarm(fire[0]["id"])["state"] == "restored"
        finally:
            await gbs.close()
        assert alarms.stats["errors"] >= 1

    run(tmp_path, body)


def test_handover_report_and_record(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        await panel.send("ADM-CID", "1130 01 001")
        await panel.send("ADM-CID", "1301 01 000")
        aid = alarms.list_alarms("all")[-1]["id"]
        await alarms.acknowledge(aid, "alice", "operator", "seen")
        await ctx.events.record("door.forced", {"door": "b3-u1"})   # forced and closed again before the handover
        rep = alarms.handover_report()
        assert len(rep["open_alarms"]) == 2 and len(rep["unacknowledged_alarms"]) == 1
        assert rep["doors"] == [{"id": "b3-u1", "state": "forced"}]
        assert rep["since"] is None and rep["shift"] in ("day", "night")
        assert [(e["type"], e.get("door")) for e in rep["events_since"]] == [("door.forced", "b3-u1")]
        res = await alarms.record_handover(HandoverIn.model_validate({"from": "alice", "to": "bob", "notes": "n"}),
                                           "alice", "operator")
        assert sorted(res["open_alarms"]) == sorted(a["id"] for a in rep["open_alarms"])
        [ev] = events(ctx, "shift.handover")
        assert ev["from"] == "alice" and ev["to"] == "bob" and ev["notes"] == "n"
        rep2 = alarms.handover_report()
        assert rep2["since"] == res["ts"] and rep2["last_handover"]["to"] == "bob"
        assert rep2["alarms_since"] == [] and rep2["events_since"] == [] and rep2["events_since_truncated"] is False
        # after the handover: a door forced (and closed), a reader that went offline and came back, an anomaly
        forced = await ctx.events.record("door.forced", {"door": "b3-u1"})
        await ctx.devices.set_state("r1", "reader", False, "no answer")
        await ctx.devices.set_state("r1", "reader", True)
        await ctx.events.record("meter.anomaly", {"meter": "m1", "unit": "3-1", "kind": "leak", "hours": 24})
        await ctx.events.record("door.opened", {"door": "b3-u1"})     # routine: not in the report
        rep3 = alarms.handover_report()
        got = rep3["events_since"]
        assert [e["type"] for e in got] == ["door.forced", "device.offline", "device.online", "meter.anomaly"]
        assert got[0] == {"seq": forced.seq, "ts": forced.ts, "type": "door.forced", "door": "b3-u1", "reason": ""}
        assert got[1]["device"] == "r1" and got[1]["kind"] == "reader" and got[1]["reason"] == "no answer"
        assert got[3]["meter"] == "m1" and got[3]["anomaly"] == "leak" and "kind" not in got[3]
        assert rep3["doors"] == rep["doors"] and rep3["devices_offline"] == []   # the snapshots are unchanged
        # the next handover starts afresh; a busy shift gives the newest events and says so
        await alarms.record_handover(HandoverIn.model_validate({"from": "bob", "to": "carol"}), "bob", "operator")
        assert alarms.handover_report()["events_since"] == []
        ctx.clock.offset += timedelta(seconds=1)
        for i in range(5):
            await ctx.events.record("door.held_open", {"door": "b3-u1", "seconds": 30 + i})
        items, more = alarms.events_since(alarms.last_handover()["ts"], limit=3)
        assert more and [e["seconds"] for e in items] == [32, 33, 34]
        # the handover's own event pruned from the log: its time bounds the list instead
        await ctx.store.write(lambda c: c.execute("DELETE FROM events WHERE type = 'shift.handover'"))
        assert [e["seconds"] for e in alarms.handover_report()["events_since"]] == [30, 31, 32, 33, 34]

    run(tmp_path, body)


def test_shift_by_site_time(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        from datetime import datetime
        from zoneinfo import ZoneInfo

        ctx.clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
        assert alarms.current_shift() == "day"
        ctx.clock.set(datetime(2026, 11, 23, 18, 31, tzinfo=ZoneInfo("Asia/Shanghai")))
        assert alarms.current_shift() == "night"
        ctx.clock.set(datetime(2026, 11, 24, 8, 29, tzinfo=ZoneInfo("Asia/Shanghai")))
        assert alarms.current_shift() == "night"

    run(tmp_path, body)


def test_holds_reapplied_at_start(tmp_path: Path) -> None:
    """A crash after the commit but before the hold: the next start holds the doors."""

    async def main() -> None:
        cfg = make_config(tmp_path, site(free_port(), free_port(), free_port()))
        fake, alarms = FakeAccess(), AlarmsComponent()
        ctx = await build_context(cfg, components=[fake, alarms])
        alarms._hold = lambda *a: asyncio.sleep(0)   # type: ignore[method-assign]  # "crash" before holding
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


class SerialEnd:
    """The far end of a serial line: the gateway opens ``socket://127.0.0.1:port`` as its port."""

    def __init__(self) -> None:
        self.server: asyncio.base_events.Server | None = None
        self.conn: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None = None

    async def start(self) -> int:
        self.conn = asyncio.get_running_loop().create_future()

        async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            if self.conn is not None and not self.conn.done():
                self.conn.set_result((r, w))

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def test_serial_receivers_contact_id_and_gb26875(tmp_path: Path) -> None:
    """Contact ID lines and GB frames through the pyserial thread path (socket:// URLs), GB confirms written back."""
    from drivers import gb26875 as gb

    async def main() -> None:
        cid_end, gb_end = SerialEnd(), SerialEnd()
        cid_port, gb_port = await cid_end.start(), await gb_end.start()
        cfg = make_config(tmp_path, f"""
[[alarm_receivers]]
id = "cid-serial"
protocol = "contact-id-serial"
port = "socket://127.0.0.1:{cid_port}"
accounts = ["4321"]

[[alarm_receivers]]
id = "gb-serial"
protocol = "gb26875"
port = "socket://127.0.0.1:{gb_port}"
""")
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[alarms])
        try:
            assert cid_end.conn is not None and gb_end.conn is not None
            # pyserial flushes its input when it opens the port: write once the link is reported up
            await until(lambda: all(ctx.devices.devices[d].online for d in ("cid-serial", "gb-serial")))
            _r, w = await asyncio.wait_for(cid_end.conn, 10)
            w.write((format_line("4321", 1, 120, 1, 2) + "\r\n" + format_line("9999", 1, 120, 1, 3) + "\r\n").encode())
            await w.drain()
            await until(lambda: alarms.list_alarms("all"))
            [a] = alarms.list_alarms("all")
            assert (a["receiver"], a["kind"], a["zone"]) == ("cid-serial", "panic", 2)   # 9999: not our account
            gr, gw_ = await asyncio.wait_for(gb_end.conn, 10)
            obj = gb.ComponentStatus(1, 1, 40, 77, 0b0101, "B5 fault", None)
            gw_.write(gb.build_frame(9, gb.CMD_SEND, gb.component_unit([obj])))
            await gw_.drain()
            reader = gb.FrameReader()
            frames: list[Any] = []
            while not frames:
                frames = [f for f in reader.feed(await asyncio.wait_for(gr.read(1024), 10)) if isinstance(f, gb.Frame)]
            assert frames[0].command == gb.CMD_CONFIRM and frames[0].serial == 9
            assert any(x["receiver"] == "gb-serial" and x["kind"] == "fault" for x in alarms.list_alarms("open"))
        finally:
            await stop_context(ctx)
            cid_end.close()
            gb_end.close()

    asyncio.run(main())


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


def test_random_payloads_in_valid_blocks_never_break_the_receiver(tmp_path: Path) -> None:
    """Well-framed blocks with random content: every one gets an answer, the panel keeps working."""
    import random

    from drivers.sia_dc09 import build_block

    rnd = random.Random(26875)
    alphabet = "0123456789ABCDEFNri/|#[] _-:,.xyz\x7f"

    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        answers: dict[str, int] = {}
        for i in range(300):
            token = rnd.choice(["SIA-DCS", "ADM-CID", "NULL", "SIA-DCS"])
            payload = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))
            if rnd.random() < 0.3:
                payload = f"{rnd.choice([1, 3, 6])}{rnd.randint(0, 999):03d} {rnd.randint(0, 99):02d} {rnd.randint(0, 999):03d}"
            if rnd.random() < 0.3:
                payload = "N" + "/".join(f"{rnd.choice(['FA', 'BR', 'ZZ', 'OP', 'RP'])}{rnd.randint(0, 9999)}"
                                         for _ in range(rnd.randint(1, 4)))
            block = build_block(token, i % 9999 + 1, "1234", payload)
            ans = await panel.send_raw(block)
            answers[ans] = answers.get(ans, 0) + 1
        assert set(answers) <= {"ACK", "DUH", "NAK"} and sum(answers.values()) == 300
        assert answers.get("ACK", 0) > 50 and answers.get("DUH", 0) > 10
        assert await panel.send("ADM-CID", "1130 01 099") == "ACK"
        assert any(a["zone"] == 99 for a in alarms.list_alarms("open"))

    run(tmp_path, body)


def test_encrypted_panel_and_bad_key_file(tmp_path: Path) -> None:
    async def main() -> None:
        key = "00112233445566778899AABBCCDDEEFF"
        (tmp_path / "dc09.key").write_text(key + "\n")
        (tmp_path / "bad.key").write_text("not hex\n")
        dc, bad = free_port(), free_port()
        cfg = make_config(tmp_path, f"""
[[alarm_receivers]]
id = "enc"
protocol = "sia-dc09"
listen = "127.0.0.1:{dc}"
key_file = "dc09.key"

[[alarm_receivers]]
id = "broken"
protocol = "sia-dc09"
listen = "127.0.0.1:{bad}"
key_file = "bad.key"
""")
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[alarms])
        try:
            panel = Dc09Panel("127.0.0.1", alarms.ports["enc"], key=bytes.fromhex(key))
            assert await panel.send("SIA-DCS", "Nri1/FA007") == "ACK"
            await panel.close()
            [a] = alarms.list_alarms("open")
            assert a["kind"] == "fire" and a["zone"] == 7
            assert "broken" not in alarms.ports
            assert any(d["id"] == "broken" for d in ctx.devices.offline())
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


def test_a_taken_port_does_not_stop_the_gateway(tmp_path: Path) -> None:
    """The receiver is reported offline and keeps retrying; it listens once the port is free."""
    import socket

    async def main() -> None:
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        cfg = make_config(tmp_path, f"""
[[alarm_receivers]]
id = "rcv"
protocol = "sia-dc09"
listen = "127.0.0.1:{port}"
""")
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[alarms])
        ctx.supervisor.min_backoff = 0.1
        try:
            assert "rcv" not in alarms.ports
            assert any(d["id"] == "rcv" for d in ctx.devices.offline())
            blocker.close()
            await until(lambda: "rcv" in alarms.ports, 15)
            panel = Dc09Panel("127.0.0.1", port)
            assert await panel.send("ADM-CID", "1130 01 001") == "ACK"
            await panel.close()
        finally:
            blocker.close()
            await stop_context(ctx)

    asyncio.run(main())
