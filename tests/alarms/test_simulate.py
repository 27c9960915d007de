"""`estate-gateway simulate` drives every TCP alarm receiver: DC-09, Contact ID lines and GB/T 26875.3; its
panels raise and restore what the demo control asks (they raise nothing loud by themselves)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from conftest import free_port, make_config, until

from drivers.sim.panel_demo import serve_for_config
from drivers.sim.control import SimHub
from gateway.alarms import AlarmsComponent
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(60)


def test_simulated_senders_raise_and_restore_on_every_protocol(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("dc", "cid", "gb")}
    toml = f"""
[[alarm_receivers]]
id = "duty-panel"
protocol = "sia-dc09"
listen = "127.0.0.1:{ports['dc']}"
accounts = ["1234"]

[[alarm_receivers]]
id = "cid-line"
protocol = "contact-id-serial"
listen = "127.0.0.1:{ports['cid']}"
accounts = ["5678"]

[[alarm_receivers]]
id = "fire-panel"
protocol = "gb26875"
listen = "127.0.0.1:{ports['gb']}"

[[alarm_zones]]
receiver = "fire-panel"
zone = 7
building = "5"
name = "B5 lobby detector"
"""

    async def main() -> None:
        cfg = make_config(tmp_path, toml)
        ctx = await build_context(cfg, components=[AlarmsComponent()])
        hub = SimHub()
        sim = asyncio.create_task(serve_for_config(cfg, hub))
        try:
            def seen(type_: str) -> set[str]:
                return {e.data.get("receiver", "") for e in ctx.events.query(0, 1000, [type_])}

            await until(lambda: len(hub.panels) == 3, 10, "three panels")
            for request in ("alarm fire 7 fire-panel", "alarm burglary cid-line", "alarm panic duty-panel"):
                assert (await hub.handle(request)).startswith("ok "), request
            await until(lambda: {"cid-line", "fire-panel", "duty-panel"} <= seen("alarm.raised"), 20, "the alarms")
            for request in ("restore fire 7 fire-panel", "restore burglary cid-line", "restore panic duty-panel"):
                assert (await hub.handle(request)).startswith("ok "), request
            await until(lambda: {"cid-line", "fire-panel", "duty-panel"} <= seen("alarm.restored"), 20, "restores")
            gb = [e.data for e in ctx.events.query(0, 1000, ["alarm.raised"]) if e.data["receiver"] == "fire-panel"]
            assert gb[0]["kind"] == "fire" and gb[0]["zone"] == 7 and gb[0]["building"] == "5"
            cid = [e.data for e in ctx.events.query(0, 1000, ["alarm.raised"]) if e.data["receiver"] == "cid-line"]
            assert cid[0]["kind"] == "burglary" and cid[0]["zone"] == 99   # no zone named: an unnamed one
            assert (await hub.handle("alarm burglary fire-panel")).startswith(
                "error fire-panel cannot report 'burglary': one of fire, fault, supervisory")
        finally:
            sim.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sim
            await stop_context(ctx)

    asyncio.run(main())
