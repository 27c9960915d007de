"""The corpus frames through the real GB/T 26875.3 TCP receiver: confirm, deny or silence, and the alarms.

A transmitter's data is confirmed after the commit, a reply is not answered, a centre's command
sent to the gateway is denied, a vendor type of unknown length is denied with its reason. To
prove an answer was *not* sent, each such frame is followed by a heartbeat whose confirm must
be the very next thing read.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, until

from drivers import gb26875 as gb
from gateway.alarms import AlarmsComponent
from gateway.alarms.signals import TRANSMITTER_ZONE
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(60)

FRAMES = json.loads((Path(__file__).parent / "frames.json").read_text(encoding="utf-8"))["frames"]
DEV = gb.address_bytes("000000000379")
CEN = gb.address_bytes("000000015B38")


class Link:
    """One TCP connection to the receiver, reading whole frames back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w, self.dec, self.pending = reader, writer, gb.FrameReader(), []
        self.heartbeat_serial = 40000

    async def answer(self) -> gb.Frame:
        while not self.pending:
            self.pending += [f for f in self.dec.feed(await asyncio.wait_for(self.r.read(4096), 10))
                             if isinstance(f, gb.Frame)]
        return self.pending.pop(0)

    async def send(self, raw: bytes) -> None:
        self.w.write(raw)
        await self.w.drain()

    async def nothing_came_back(self) -> None:
        """A heartbeat, then its confirm must be the next frame read."""
        self.heartbeat_serial += 1
        await self.send(gb.build_frame(self.heartbeat_serial, gb.CMD_SEND, source=DEV, destination=CEN))
        f = await self.answer()
        assert (f.command, f.serial) == (gb.CMD_CONFIRM, self.heartbeat_serial)


def test_corpus_over_tcp(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = make_config(tmp_path, """
[[alarm_receivers]]
id = "fire-panel"
protocol = "gb26875"
listen = "127.0.0.1:0"
accounts = ["000000000379", "000000015B38", "000000000000"]
""")
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[alarms])
        try:
            link = Link(*await asyncio.open_connection("127.0.0.1", alarms.ports["fire-panel"]))
            for case in FRAMES:
                await check(link, case)
            by_zone = {(a["zone"], a["kind"]): a for a in alarms.list_alarms("all")}
            smoke = by_zone[(0x0002000A, "fire")]
            assert (smoke["account"], smoke["text"], smoke["state"]) == ("000000000379", "感烟火灾探测器", "raised")
            power = by_zone[(TRANSMITTER_ZONE, "fault")]
            assert power["code"] == "GB-main_power_fault" and power["text"] == "用户信息传输装置"
            assert by_zone[(0x0600D9, "fire")]["text"] == "Ａ区１层呷哺走廊"
            assert len(alarms.list_alarms("all")) == 3
            await vendor_and_transmitter_fire(link, alarms)
            link.w.close()
        finally:
            await stop_context(ctx)

    asyncio.run(main())


async def check(link: Link, case: dict[str, Any]) -> None:
    raw, exp = bytes.fromhex(case["hex"]), case["expect"]
    await link.send(raw)
    answer = exp.get("answer", "none")
    if answer == "none":
        await link.nothing_came_back()
        return
    f = await link.answer()
    sent = gb.parse_frame(raw)
    assert f.command == (gb.CMD_CONFIRM if answer == "confirm" else gb.CMD_DENY), case["name"]
    assert (f.serial, f.version, f.source, f.destination) == (sent.serial, sent.version, sent.destination, sent.source)


async def vendor_and_transmitter_fire(link: Link, alarms: AlarmsComponent) -> None:
    errors = alarms.stats["errors"]
    vendor = bytes([130, 1]) + b"\x01\x02\x03"
    await link.send(gb.build_frame(7, gb.CMD_SEND, vendor, source=DEV, destination=CEN))
    denied = await link.answer()
    assert (denied.command, denied.serial) == (gb.CMD_DENY, 7)
    assert alarms.stats["errors"] == errors + 1
    # a dry-contact transmitter knows only its own fire bit: it raises a fire, and its clearing restores it
    fire = gb.encode_unit([gb.TransmitterStatus(0b11, None)])
    await link.send(gb.build_frame(8, gb.CMD_SEND, fire, source=DEV, destination=CEN))
    assert (await link.answer()).command == gb.CMD_CONFIRM
    [raised] = [a for a in alarms.list_alarms("open") if a["kind"] == "fire" and a["zone"] == TRANSMITTER_ZONE]
    normal = gb.encode_unit([gb.TransmitterStatus(0b01, None)])
    await link.send(gb.build_frame(9, gb.CMD_SEND, normal, source=DEV, destination=CEN))
    assert (await link.answer()).command == gb.CMD_CONFIRM
    await until(lambda: alarms.get_alarm(raised["id"])["state"] == "restored", what="transmitter fire restored")
    # the same status states every fault bit clear: the corpus's main power fault is restored with it
    assert [a["kind"] for a in alarms.list_alarms("open") if a["zone"] == TRANSMITTER_ZONE and
            a["state"] == "raised"] == []
