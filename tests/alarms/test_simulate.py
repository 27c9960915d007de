"""`estate-gateway simulate` drives every TCP alarm receiver: DC-09, Contact ID lines and GB/T 26875.3."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from conftest import free_port, make_config, until

from drivers.sim.alarm_panel import serve_for_config
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
        sim = asyncio.create_task(serve_for_config(cfg))
        try:
            def seen(type_: str) -> set[str]:
                return {e.data.get("receiver", "") for e in ctx.events.query(0, 1000, [type_])}

            await until(lambda: {"cid-line", "fire-panel"} <= seen("alarm.raised"), 20, "CID and GB alarms")
            await until(lambda: {"cid-line", "fire-panel"} <= seen("alarm.restored"), 20, "their restores")
            gb = [e.data for e in ctx.events.query(0, 1000, ["alarm.raised"]) if e.data["receiver"] == "fire-panel"]
            assert gb[0]["kind"] == "fire" and gb[0]["zone"] == 7 and gb[0]["building"] == "5"
        finally:
            sim.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sim
            await stop_context(ctx)

    asyncio.run(main())
