"""What the in-process alarm tests share: a site with one panel per protocol, a fake access area, a runner.

The fake access area plugs into the same typed seams as the real one (``ctx.door_holds`` for fire
holds, ``ctx.handover_sources`` for the handover report) and records what it was asked to do.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from conftest import free_port, make_config

from drivers.sim.alarm_panel import Dc09Panel
from gateway.alarms import AlarmsComponent
from gateway.alarms.schema import MIGRATIONS
from gateway.daemon import build_context, stop_context
from gateway.schema import apply_migrations
from gateway.store import Store


def upgraded_from(path: Path, version: int, sql: str, rows: list[tuple[Any, ...]]) -> Store:
    """The alarms area's schema as of migration ``version`` holding ``rows`` (inserted by ``sql``), then opened
    by this gateway: every later migration applied, as an upgrade finds it."""
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migrations(conn, {"alarms": [m for m in MIGRATIONS if m[0] <= version]})
    conn.executemany(sql, rows)
    conn.close()
    store = Store(path)
    store.open()
    store.add_migrations("alarms", MIGRATIONS)
    return store


class FakeAccess:
    """Records hold/release calls (the real access component has its own end-to-end test)."""

    name = "access"
    migrations: list[tuple[int, str]] = []

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.held: dict[str, list[str]] = {}

    async def start(self, ctx: Any) -> None:
        # the typed seams the real access area fills in its start
        ctx.door_holds = self
        ctx.handover_sources.append(self)

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
