"""Receivers in process: Contact ID and GB/T 26875.3 over TCP and serial, DC-09 with random payloads and AES keys, a taken port."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alarms.harness import FakeAccess, run
from conftest import free_port, make_config, until

from drivers.contact_id import format_line
from drivers.sim.alarm_panel import Dc09Panel, GbSender, send_contact_id_lines
from gateway.alarms import AlarmsComponent
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(60)


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
