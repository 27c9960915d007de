"""Panel supervision played over real TCP connections by peers the gateway did not write.

* SIA DC-09: ``my-dc09-spt`` (a third-party transmitter library) polls the receiver with NULL link
  tests; when it stops, the silence becomes a ``fault`` alarm within the interval, escalates while
  nobody acknowledges it, and the next link test restores it (closed once acknowledged).
* GB/T 26875.3: a transmitter's heartbeat frame (empty ``send data``) and a frame without alarm
  status keep it alive; silence faults it; a heartbeat restores.
* Contact ID: a panel's periodic test (602), printed by the receiver, keeps the line alive.

The vectors and where they come from: ``tests/alarms/data/supervision_vectors.json``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from alarms.harness import events
from conftest import free_port, make_config, until
from my_dc09_spt.dc09_spt import dc09_spt  # the peer: a third party's DC-09 transmitter (test extra)

from gateway.alarms import AlarmsComponent
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(60)

VECTORS = json.loads((Path(__file__).parent / "data" / "supervision_vectors.json").read_text())


def _silences(alarms: AlarmsComponent, state: str = "open") -> list[dict[str, Any]]:
    return [a for a in alarms.list_alarms(state) if a["code"] == "silent"]


def _site(port: int, protocol: str, supervision_s: float, accounts: str = "[]") -> str:
    return f"""
[[alarm_receivers]]
id = "rcv"
protocol = "{protocol}"
listen = "127.0.0.1:{port}"
accounts = {accounts}
supervision_s = {supervision_s}

[alarms]
tick_s = 0.05
escalate_s = {{fire = 0.2, smoke = 0.2, panic = 0.2, burglary = 0.3, fault = 0.4}}
"""


def test_dc09_link_tests_from_a_third_party_transmitter(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = make_config(tmp_path, _site(free_port(), "sia-dc09", 1.5, '["1234"]'))
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[alarms])
        spt = dc09_spt("1234", receiver=1, line=1)
        spt.set_path("main", "primary", "127.0.0.1", alarms.ports["rcv"], type="TCP")
        try:
            spt.start_poll(0.2, retry_delay=0.05)
            await until(lambda: spt.state()["poll count"] >= 8, 10, "link tests ACKed")
            assert spt.state()["main primary path ok"] == 1
            assert _silences(alarms, "all") == []              # polled all along: never silent
            await asyncio.to_thread(spt.stop_poll)              # the line is cut
            [fault] = await until(lambda: _silences(alarms), 10, "silence fault")
            assert (fault["receiver"], fault["account"], fault["kind"], fault["zone"]) == ("rcv", "1234", "fault", 0)
            assert any(d["id"] == "rcv" for d in ctx.devices.offline())
            # the lifecycle of any alarm: unacknowledged, it escalates
            await until(lambda: any(e["alarm"] == fault["id"] for e in events(ctx, "alarm.escalated")), 10)
            raised = [e for e in events(ctx, "alarm.raised") if e["alarm"] == fault["id"]]
            assert raised and raised[0]["code"] == "silent" and raised[0]["kind"] == "fault"
            await alarms.acknowledge(fault["id"], "alice", "operator", "calling the installer")
            assert alarms.get_alarm(fault["id"])["state"] == "acknowledged"
            spt.start_poll(0.2, retry_delay=0.05)               # the line is back: the next NULL restores
            await until(lambda: alarms.get_alarm(fault["id"])["state"] == "closed", 10, "restored and closed")
            await until(lambda: not ctx.devices.offline(), 5)
            assert [e["alarm"] for e in events(ctx, "alarm.restored")] == [fault["id"]]
            assert len(_silences(alarms, "all")) == 1
        finally:
            await asyncio.to_thread(spt.stop_poll)
            await stop_context(ctx)

    asyncio.run(main())


async def _send(port: int, data: bytes, answer: bool) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(256), 5) if answer else b""
    finally:
        writer.close()
        await writer.wait_closed()


def test_gb26875_heartbeats_keep_a_transmitter_alive(tmp_path: Path) -> None:
    heartbeat = bytes.fromhex(VECTORS["gb26875_heartbeat"]["hex"])
    clock_frame = bytes.fromhex(VECTORS["gb26875_transmitter_time"]["hex"])

    async def main() -> None:
        cfg = make_config(tmp_path, _site(free_port(), "gb26875", 1.5))
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[alarms])
        port = alarms.ports["rcv"]
        try:
            for i in range(6):                                  # heartbeats (and a clock report) inside the interval
                confirm = await _send(port, clock_frame if i == 3 else heartbeat, answer=True)
                assert confirm[:2] == b"@@" and confirm[26] == 3    # answered with a confirm (command 3)
                await asyncio.sleep(0.2)
            assert _silences(alarms, "all") == []
            [fault] = await until(lambda: _silences(alarms), 10, "silence fault")
            assert fault["kind"] == "fault" and fault["receiver"] == "rcv"
            await _send(port, heartbeat, answer=True)
            await until(lambda: alarms.get_alarm(fault["id"])["state"] == "restored", 10)
            await until(lambda: not ctx.devices.offline(), 5)
        finally:
            await stop_context(ctx)

    asyncio.run(main())


def test_contact_id_periodic_test_keeps_a_line_alive(tmp_path: Path) -> None:
    line = (VECTORS["contact_id_periodic_test"]["line"] + "\r\n").encode()

    async def main() -> None:
        cfg = make_config(tmp_path, _site(free_port(), "contact-id-serial", 1.5, '["1234"]'))
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[alarms])
        port = alarms.ports["rcv"]
        try:
            for _ in range(6):
                await _send(port, line, answer=False)
                await asyncio.sleep(0.2)
            assert _silences(alarms, "all") == [] and alarms.list_alarms("all") == []   # logged, not an alarm
            [fault] = await until(lambda: _silences(alarms), 10, "silence fault")
            assert fault["account"] == "1234"
            await _send(port, line, answer=False)
            await until(lambda: alarms.get_alarm(fault["id"])["state"] == "restored", 10)
            rows = ctx.store.query_one("SELECT COUNT(*) FROM alarm_signals WHERE code='602'")
            assert rows[0] == 7
        finally:
            await stop_context(ctx)

    asyncio.run(main())
