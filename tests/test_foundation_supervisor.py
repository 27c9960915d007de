"""A crashing driver is logged, reported device.offline, restarted with backoff; the daemon lives on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import make_config
from gateway.daemon import build_context, stop_context


class FlakyDriver:
    """A component whose driver task crashes twice, then runs and reports the device online."""

    name = "flaky"
    migrations: list[tuple[int, str]] = []

    def __init__(self) -> None:
        self.starts = 0

    def routes(self) -> None:
        return None

    async def start(self, ctx: Any) -> None:
        self.ctx = ctx
        ctx.supervisor.min_backoff = 0.05
        ctx.supervisor.spawn("flaky-driver", self.run, device=("r-flaky", "reader"))

    async def run(self) -> None:
        self.starts += 1
        await self.ctx.devices.set_state("r-flaky", "reader", True)
        if self.starts <= 2:
            raise OSError("serial port vanished")
        await asyncio.Event().wait()

    async def stop(self) -> None:
        pass


def test_crashing_driver_is_restarted_and_reported(tmp_path: Path) -> None:
    async def main() -> None:
        comp = FlakyDriver()
        ctx = await build_context(make_config(tmp_path), [comp])
        for _ in range(100):
            if comp.starts >= 3:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        assert comp.starts == 3
        types = [e.type for e in ctx.events.query(0, 100)]
        assert types.count("device.offline") == 2 and types.count("device.online") == 2
        offline = [e for e in ctx.events.query(0, 100) if e.type == "device.offline"][0]
        assert offline.data == {"device": "r-flaky", "kind": "reader", "reason": "driver crashed: serial port vanished"}
        assert ctx.supervisor.restarts["flaky-driver"] == 2
        assert "flaky-driver" in ctx.supervisor.running()
        await stop_context(ctx)

    asyncio.run(main())
