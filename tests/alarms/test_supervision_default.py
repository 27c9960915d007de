"""Supervision is on by default, survives restarts (state from the store) with a grace after each start, and lets go
of panels that are no longer supervised; the handover report names the open supervision faults."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alarms.harness import FakeAccess, site
from conftest import free_port, make_config, until

from drivers.sim.alarm_panel import Dc09Panel
from gateway.alarms import AlarmsComponent
from gateway.config import ConfigError
from gateway.config.alarms import DEFAULT_SUPERVISION_S
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(60)


def _receivers(extra: str = "") -> str:
    return f"""
[[alarm_receivers]]
id = "dc"
protocol = "sia-dc09"
listen = "127.0.0.1:{free_port()}"

[[alarm_receivers]]
id = "gb"
protocol = "gb26875"
port = "/dev/ttyUSB3"

[[alarm_receivers]]
id = "cid"
protocol = "contact-id-serial"
port = "/dev/ttyUSB2"
{extra}
"""


def test_supervision_is_on_by_default_per_protocol(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, _receivers())
    got = {rc.id: rc.supervision_s for rc in cfg.alarm_receivers}
    assert got == {"dc": 300.0, "gb": 300.0, "cid": 90_000.0}
    assert DEFAULT_SUPERVISION_S == {"sia-dc09": 300.0, "gb26875": 300.0, "contact-id-serial": 90_000.0}
    # explicit values (0 = off) are kept; a negative one is refused with its key
    cfg = make_config(tmp_path, _receivers('[[alarm_receivers]]\nid = "off"\nprotocol = "gb26875"\n'
                                           'port = "/dev/ttyUSB4"\nsupervision_s = 0\n'))
    assert cfg.alarm_receivers[-1].supervision_s == 0
    with pytest.raises(ConfigError, match="supervision_s"):
        make_config(tmp_path, _receivers('[[alarm_receivers]]\nid = "neg"\nprotocol = "gb26875"\n'
                                         'port = "/dev/ttyUSB4"\nsupervision_s = -1\n'))


def test_a_restart_gives_grace_and_forgets_no_silence(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = make_config(tmp_path, site(free_port(), free_port(), free_port(), supervision_s=0.6))
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[FakeAccess(), alarms])
        try:
            panel = Dc09Panel("127.0.0.1", alarms.ports["duty-panel"])
            assert await panel.send("NULL") == "ACK"
            await panel.close()
        finally:
            await stop_context(ctx)
        await asyncio.sleep(0.8)          # down for longer than the interval: the panel could not be heard
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[FakeAccess(), alarms])
        try:
            await alarms.supervision.check_supervision()     # right after the start: grace, no false fault
            assert alarms.list_alarms("all") == []
            [fault] = await until(lambda: alarms.list_alarms("open"), 10, "silence after the grace")
            assert fault["code"] == "silent"
        finally:
            await stop_context(ctx)
        # restarted again while silent: the fault is read back from the store and still open, not raised twice
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[FakeAccess(), alarms])
        try:
            await asyncio.sleep(0.8)
            assert [a["id"] for a in alarms.list_alarms("open")] == [fault["id"]]
            assert alarms.supervision.silent == {("duty-panel", "1234")}
            items = alarms.handover.report()
            [item] = items["supervision_faults"]
            assert item["alarm"] == fault["id"] and item["receiver"] == "duty-panel" and item["account"] == "1234"
            assert item["since"] == fault["raised_at"] and item["acknowledged"] is False
            assert items["supervision_off"] == []            # every receiver of the site is supervised (defaults)
        finally:
            await stop_context(ctx)

    asyncio.run(main())


def test_silence_of_a_panel_no_longer_supervised_is_restored(tmp_path: Path) -> None:
    async def main() -> None:
        dc, cidp, gbp = free_port(), free_port(), free_port()
        cfg = make_config(tmp_path, site(dc, cidp, gbp, supervision_s=0.3))
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[FakeAccess(), alarms])
        try:
            [fault] = await until(lambda: alarms.list_alarms("open"), 10, "silence")
        finally:
            await stop_context(ctx)
        cfg = make_config(tmp_path, site(dc, cidp, gbp, supervision_s=0))   # supervision turned off
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[FakeAccess(), alarms])
        try:
            got = alarms.get_alarm(fault["id"])
            assert got["state"] == "restored" and got["restored_at"]           # nothing else could end it now
            assert alarms.supervision.silent == set()
            assert not any(d["id"] == "duty-panel" for d in ctx.devices.offline())
            rep = alarms.handover.report()
            assert rep["supervision_faults"] == [] and "duty-panel" in rep["supervision_off"]
            assert [a["id"] for a in rep["unacknowledged_alarms"]] == [fault["id"]]   # still to be acknowledged
        finally:
            await stop_context(ctx)

    asyncio.run(main())
