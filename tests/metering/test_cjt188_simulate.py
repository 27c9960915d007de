"""`estate-gateway simulate` serves the config's CJ/T 188 meters, and the gateway reads them: the demo's path."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BIN, ROOT, free_port, make_config, until

from drivers import cjt188 as c
from drivers.cjt188.link import Cjt188Bus, Cjt188ConnectionError
from drivers.sim.cjt188 import serve_for_config
from gateway.config import load_config
from gateway.daemon import build_context, stop_context
from gateway.metering import MeteringComponent

pytestmark = pytest.mark.timeout(90)


def bus_toml(port: int) -> str:
    return f"""
[[buses]]
id = "cjt188-1"
transport = "serial"
port = "socket://127.0.0.1:{port}"
baud = 2400
timeout_s = 1.0

[[meters]]
id = "hw-1"
bus = "cjt188-1"
protocol = "cjt188"
address = "00202307160177"
meter_type = "hot-water"
valve = true
unit = "3-2-0302"
poll_s = 1

[[meters]]
id = "heat-1"
bus = "cjt188-1"
protocol = "cjt188"
address = "00202307160178"
meter_type = "heat"
di_order = "high-first"
unit = "3-2-0303"
poll_s = 1
"""


def test_the_gateway_reads_what_simulate_serves(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = make_config(tmp_path, bus_toml(free_port()))
        sim = asyncio.create_task(serve_for_config(cfg))
        comp = MeteringComponent()
        ctx = await build_context(cfg, components=[comp], start=False)
        events: list[object] = []
        ctx.events.subscribe(events.append)
        await comp.start(ctx)
        try:
            def values(meter: str) -> dict[str, object]:
                got = [e.data["values"] for e in events  # type: ignore[attr-defined]
                       if e.type == "meter.reading" and e.data["meter"] == meter]  # type: ignore[attr-defined]
                return got[-1] if got else {}

            await until(lambda: values("hw-1") and values("heat-1"), 20, "readings from both meters")
            assert values("hw-1")["total_m3"] > 0 and "settlement_m3" in values("hw-1")
            heat = values("heat-1")
            assert heat["heat_kwh"] > 0 and heat["supply_c"] > heat["return_c"] and heat["flow_m3h"] > 0
            assert (await comp.set_valve("hw-1", "close", "central", "central"))["state"] == "closed"
        finally:
            await stop_context(ctx)
            sim.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sim

    asyncio.run(main())


def test_the_simulate_command_serves_cjt188(tmp_path: Path) -> None:
    port = free_port()
    cfg_path = tmp_path / "gw.toml"
    cfg_path.write_text((ROOT / "config" / "demo.toml").read_text().split("[[alarm_receivers]]")[0]
                        .replace("socket://127.0.0.1:15021", f"socket://127.0.0.1:{port}")
                        .replace('port = "127.0.0.1:15020"', f'port = "127.0.0.1:{free_port()}"')
                        .replace("socket://127.0.0.1:17001", f"socket://127.0.0.1:{free_port()}")
                        .replace("socket://127.0.0.1:17002", f"socket://127.0.0.1:{free_port()}")
                        .replace('data_dir = "../var/demo"', f'data_dir = "{tmp_path / "var"}"'))
    cfg = load_config(cfg_path)
    meters = [m for m in cfg.meters if m.protocol == "cjt188"]
    assert len(meters) == 2  # the demo site has its CJ/T 188 meters on their own bus
    proc = subprocess.Popen([str(BIN), "simulate", "-c", str(cfg_path)], stderr=subprocess.PIPE)

    async def read_all() -> list[c.CurrentData]:
        deadline = time.monotonic() + 30
        while True:
            bus = Cjt188Bus(f"socket://127.0.0.1:{port}", timeout_s=1.0, retries=1)
            try:
                out = []
                for m in meters:
                    req = c.read_current_request(m.address, m.type_code, preamble=0)
                    out.append(c.decode_current(await bus.exchange(req, m.address, c.DI_CURRENT)))
                return out
            except Cjt188ConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)  # the simulator is still starting
            finally:
                await bus.close()

    try:
        hot, heat = asyncio.run(read_all())
        assert hot.meter_type == 0x11 and hot.total_m3 is not None and hot.total_m3 > 0
        assert heat.meter_type == 0x20 and heat.heat_kwh is not None and heat.supply_c is not None
    finally:
        proc.terminate()
        proc.wait(10)
