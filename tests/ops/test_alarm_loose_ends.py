"""The field's loose ends, over real sockets: a GB/T 26875.3 transmitter that leaves the time tags off is
taken and logged once; a facility system's reset ends the component alarms it cleared; alarm codes no panel
ever restores (Contact ID 303, SIA RT) close when acknowledged and leave the handover."""

from __future__ import annotations

import logging
import struct
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from alarms.harness import FakeAccess, events, run
from conftest import until

from drivers import gb26875 as gb
from drivers.contact_id import format_line
from drivers.gb26875 import frame as gb_frame
from drivers.gb26875.objects import FIXED, ComponentStatus, Gb26875Error, SystemOperation, encode_unit, parse_units, untimed_unit
from drivers.sim.alarm_panel import Dc09Panel, GbSender, send_contact_id_lines
from gateway.alarms import AlarmsComponent
from gateway.alarms.rules import closes_on_ack
from gateway.alarms.signals import never_restored

pytestmark = pytest.mark.timeout(90)
RUNNING, FIRE, FAULT = 0b1, 0b10, 0b100


def untimed_component_unit(address: int, status: int, text: str = "") -> bytes:
    """Component status objects with their 6-byte time tags cut off, as some transmitters send them."""
    timed = encode_unit([ComponentStatus(1, 1, 40, address, status, text, None)])
    return timed[:-6]


def zero_header_time(raw: bytes) -> bytes:
    """The same frame with the header's time tag all zeros (checksum recomputed)."""
    frame = bytearray(raw)
    frame[6:12] = bytes(6)
    (n,) = struct.unpack_from("<H", frame, 24)
    frame[gb.HEADER_LEN + n] = gb.checksum(bytes(frame[2:gb.HEADER_LEN + n]))
    return bytes(frame)


async def send_raw(gbs: GbSender, data: bytes) -> gb.Frame:
    """Like GbSender.send, with a zero header time."""
    if gbs._writer is None:
        await gbs.send(b"")   # connect (a heartbeat)
    assert gbs._writer is not None and gbs._reader is not None
    gbs.serial += 1
    gbs._writer.write(zero_header_time(gb.build_frame(gbs.serial, gb.CMD_SEND, data, source=gbs.source)))
    await gbs._writer.drain()
    while True:
        for f in gbs._frames.feed(await gbs._reader.read(4096)):
            if isinstance(f, gb.Frame) and f.serial == gbs.serial:
                return f


def test_untimed_objects_and_zero_header_time_are_confirmed_raised_and_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.gb26875.frame")
    # "once per transmitter" is per process: start from none seen, whatever ran before in this process
    monkeypatch.setattr(gb_frame, "_UNTIMED_SEEN", set())

    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        gbs = GbSender("127.0.0.1", alarms.ports["fire-panel"], source=b"\x79\x03\x00\x00\x00\x09")
        try:
            answer = await send_raw(gbs, untimed_component_unit(0x0002000A, RUNNING | FIRE, "3号楼感烟"))
            assert answer.command == gb.CMD_CONFIRM
            fire = [a for a in alarms.list_alarms("open") if a["receiver"] == "fire-panel"]
            assert [(a["kind"], a["zone"], a["text"]) for a in fire] == [("fire", 0x0002000A, "3号楼感烟")]
            # again, and then back to normal: the same alarm, restored; still one log line
            assert (await send_raw(gbs, untimed_component_unit(0x0002000A, RUNNING | FIRE))).command == gb.CMD_CONFIRM
            assert (await send_raw(gbs, untimed_component_unit(0x0002000A, RUNNING))).command == gb.CMD_CONFIRM
            assert alarms.get_alarm(fire[0]["id"])["state"] == "restored"
        finally:
            await gbs.close()
        lines = [r for r in caplog.records if "without their time tags" in r.getMessage()]
        assert len(lines) == 1 and "090000000379" in lines[0].getMessage()
        assert "zero header time" in lines[0].getMessage()

    run(tmp_path, body)


def test_a_system_reset_restores_the_component_alarms_it_cleared(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        gbs = GbSender("127.0.0.1", alarms.ports["fire-panel"])
        try:
            await gbs.send_component(301, RUNNING | FIRE, "B3 楼梯间烟感")
            await gbs.send_component(302, RUNNING | FAULT, "B3 手报")
            opened = {a["zone"]: a for a in alarms.list_alarms("open") if a["receiver"] == "fire-panel"}
            assert {(z, a["kind"]) for z, a in opened.items()} == {(301, "fire"), (302, "fault")}
            # the gauges the alert rules read (refreshed every few seconds; published here at once)
            alarms.lifecycle.publish_gauges()
            assert ctx.metrics.get("alarms_unacknowledged", {"kind": "fire"}) == 1
            assert ctx.metrics.get("alarm_oldest_unacknowledged_age_seconds", {"kind": "fire"}) >= 0
            await alarms.acknowledge(opened[302]["id"], "op", "operator", "seen")
            alarms.lifecycle.publish_gauges()
            assert ctx.metrics.get("alarms_unacknowledged", {"kind": "fault"}) == 0
            assert ctx.metrics.get("alarms_unacknowledged", {"kind": "fire"}) == 1
            # the panel's reset key: a facility operation with the reset flag, for its system (1/1)
            confirm = await gbs.send(encode_unit([SystemOperation(1, 1, 0b1, 0, None)]))
            assert confirm.command == gb.CMD_CONFIRM
        finally:
            await gbs.close()
        assert alarms.get_alarm(opened[301]["id"])["state"] == "restored"   # still waits for its acknowledgement
        assert alarms.get_alarm(opened[302]["id"])["state"] == "closed"     # acknowledged before: closed now
        restored = {(e["alarm"], e["zone"], e["kind"], e["code"]) for e in events(ctx, "alarm.restored")}
        assert {(opened[301]["id"], 301, "fire", "GB-reset"), (opened[302]["id"], 302, "fault", "GB-reset")} <= restored

    run(tmp_path, body)


def test_codes_no_panel_restores_close_when_acknowledged(tmp_path: Path) -> None:
    assert never_restored("303") and never_restored("RT") and not never_restored("301") and not never_restored("FA")
    assert closes_on_ack("raised", "fault", "303") and not closes_on_ack("raised", "fault", "301")

    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        # Contact ID 303 (RAM checksum bad) and 301 (AC loss, which the panel does restore), on a printed line
        await send_contact_id_lines("127.0.0.1", alarms.ports["cid-line"], [
            format_line("5678", 1, 303, 1, 0), format_line("5678", 1, 301, 1, 0)])
        await until(lambda: len(alarms.list_alarms("open")) == 2, 20, what="two alarms")
        # SIA RT (data lost) from a DC-09 panel
        assert await panel.send("SIA-DCS", "Nri1/RT000") == "ACK"
        await until(lambda: len(alarms.list_alarms("open")) == 3, 20, what="the RT alarm")
        by_code = {a["code"]: a for a in alarms.list_alarms("open")}
        for code in ("303", "RT", "301"):
            await alarms.acknowledge(by_code[code]["id"], "op", "operator", "seen")
        assert alarms.get_alarm(by_code["303"]["id"])["state"] == "closed"
        assert alarms.get_alarm(by_code["RT"]["id"])["state"] == "closed"
        assert alarms.get_alarm(by_code["301"]["id"])["state"] == "acknowledged"   # until the AC comes back
        report = alarms.handover.report()
        assert [a["code"] for a in report["open_alarms"]] == ["301"]

    run(tmp_path, body)


def test_acknowledged_alarms_of_such_codes_left_open_are_closed_at_start(tmp_path: Path) -> None:
    """An alarm raised and acknowledged before its code was known as ``once`` waits for a restore that never
    comes: the start closes it (``alarm.closed``), so the handover stops carrying it."""

    async def body(ctx: Any, alarms: AlarmsComponent, fake: FakeAccess, panel: Dc09Panel) -> None:
        assert await panel.send("ADM-CID", "1303 01 000") == "ACK"
        assert await panel.send("ADM-CID", "1301 01 000") == "ACK"
        by_code = {a["code"]: a for a in alarms.list_alarms("open")}
        # as an older gateway left them: acknowledged, waiting for a restore
        await ctx.store.write(lambda c: c.execute(
            "UPDATE alarms SET state='acknowledged', acked_at='2026-01-01T00:00:00.000Z', acked_by='op'"))
        assert await alarms.lifecycle.close_acknowledged_once() == [by_code["303"]["id"]]
        assert alarms.get_alarm(by_code["303"]["id"])["state"] == "closed"
        assert alarms.get_alarm(by_code["301"]["id"])["state"] == "acknowledged"
        assert {"alarm": by_code["303"]["id"]} in events(ctx, "alarm.closed")
        assert await alarms.lifecycle.close_acknowledged_once() == []   # once only

    run(tmp_path, body)


# ---------------------------------------------------------------------- the untimed layout, fuzzed
components = st.builds(ComponentStatus, st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
                       st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF), st.text("火警烟感AB 1", max_size=10),
                       st.none())


@settings(max_examples=60)
@given(st.lists(components, min_size=1, max_size=5))
def test_untimed_objects_read_as_the_timed_ones_without_their_time(objs: list[ComponentStatus]) -> None:
    timed = encode_unit(objs)
    size = FIXED[2].size()
    untimed = timed[:2] + b"".join(timed[2 + i * size:2 + (i + 1) * size - 6] for i in range(len(objs)))
    assert untimed_unit(untimed) and not untimed_unit(timed)
    # the same objects as the timed unit reads (descriptions trimmed alike), with no time
    assert parse_units(untimed) == tuple(replace(o, time=None) for o in parse_units(timed))


@settings(max_examples=200)
@given(st.sampled_from(sorted(FIXED)), st.integers(0, 6), st.binary(max_size=300))
def test_any_unit_parses_or_is_refused_with_a_reason(type_flag: int, count: int, body: bytes) -> None:
    data = bytes([type_flag, count]) + body
    try:
        units = parse_units(data)
    except Gb26875Error as exc:
        assert str(exc)
        return
    assert len(units) == count
    assert all(getattr(u, "time", None) is None for u in units) or not untimed_unit(data)
