"""The in-process metering site the component tests share: simulated meters behind a real pymodbus server,
the real component, scheduler and store (no MQTT, no HTTP)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import make_config

from drivers.modbus.profile import load_profile
from drivers.sim.meters import MeterSimulator
from gateway.daemon import build_context, stop_context
from gateway.metering import MeteringComponent

ROOT = Path(__file__).resolve().parents[2]
GENERIC = load_profile(ROOT / "config" / "meters" / "generic-hot-water.toml")
TUF = load_profile(ROOT / "config" / "meters" / "tuf-2000m.toml")
RESTRICT = load_profile(ROOT / "config" / "meters" / "generic-hot-water-restrict.toml")


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 100))


def site(port: int, meters: list[tuple[str, int, str]] | list[tuple[str, int, str, str]], *,
         transport: str = "rtu-over-tcp", poll_s: float = 0.5, timeout_s: float = 0.2, extra: str = "") -> str:
    """The site's TOML: a [metering] section with ``extra``, one bus, the meters (a 4th item: their own lines)."""
    out = (f'[metering]\noffline_after = 2\nbilling_check_s = 3600\n{extra}\n'
           f'[[buses]]\nid = "bus-1"\ntransport = "{transport}"\nport = "127.0.0.1:{port}"\n'
           f'timeout_s = {timeout_s}\nretries = 0\n')
    for mid, dev, profile, *own in meters:
        out += (f'[[meters]]\nid = "{mid}"\nbus = "bus-1"\ndevice_id = {dev}\nprofile = "{profile}"\n'
                f'unit = "3-1-{dev:04d}"\npoll_s = {poll_s}\n{"".join(own)}\n')
    return out


class Harness:
    def __init__(self, tmp_path: Path, sim: MeterSimulator, meters: list[Any], **kw: Any) -> None:
        self.tmp_path, self.sim, self.meters, self.kw = tmp_path, sim, meters, kw
        self.events: list[Any] = []

    async def __aenter__(self) -> Harness:
        port = await self.sim.start()
        cfg = make_config(self.tmp_path, site(port, self.meters, transport=self.sim.framing, **self.kw))
        self.comp = MeteringComponent()
        self.ctx = await build_context(cfg, components=[self.comp], start=False)
        self.ctx.events.subscribe(self.events.append)
        return self

    async def start(self) -> None:
        await self.comp.start(self.ctx)

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.type == type_]

    async def __aexit__(self, *exc: Any) -> None:
        await stop_context(self.ctx)
        await self.sim.stop()


class SimThread:
    """A MeterSimulator on its own loop in a thread, for a daemon running as a subprocess."""

    def __init__(self, framing: str = "tcp") -> None:
        import threading

        self.loop = asyncio.new_event_loop()
        self.sim = MeterSimulator(framing=framing)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def start(self) -> int:
        return int(asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10))

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
