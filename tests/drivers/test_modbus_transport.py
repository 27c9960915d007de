"""The Modbus driver against a real pymodbus server (the meter simulator): byte orders, typed errors, profiles."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config

from drivers.modbus import ModbusBus, ModbusExceptionReply, ModbusFramingError, ModbusTimeout, decode_plan, plan_reads
from drivers.modbus.profile import load_profile, parse_profile
from drivers.sim.meters import MeterSimulator

ROOT = Path(__file__).resolve().parents[2]
GENERIC = load_profile(ROOT / "config" / "meters" / "generic-hot-water.toml")

ALL_ORDERS = parse_profile("all-orders", {"fields": {
    "total_m3": {"address": 0, "type": "float32", "order": "ABCD"},
    "a_m3": {"address": 2, "type": "float32", "order": "CDAB"},
    "b_m3": {"address": 4, "type": "float32", "order": "BADC"},
    "c_m3": {"address": 6, "type": "float32", "order": "DCBA"},
    "d_count": {"address": 8, "type": "uint32", "order": "CDAB"},
    "e_count": {"address": 10, "type": "int32", "order": "BADC"},
    "f_count": {"address": 12, "type": "uint16", "order": "BA"},
    "g_count": {"address": 13, "type": "int16", "order": "AB"},
    "h_m3": {"address": 14, "type": "float64", "order": "DCBA"},
    "i_count": {"address": 18, "type": "uint64", "order": "CDAB"},
    "far_m3": {"address": 40, "type": "float32", "order": "CDAB"},
}})
PINNED = {"total_m3": 12345.67, "a_m3": -0.125, "b_m3": 3.5e-3, "c_m3": 98765.4, "d_count": 4_000_000_001,
          "e_count": -123456, "f_count": 0xBEEF, "g_count": -300, "h_m3": 1234567.890123, "i_count": 2**40 + 7,
          "far_m3": 42.0}


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 100))


@pytest.mark.parametrize("framing,transport", [("tcp", "tcp"), ("rtu-over-tcp", "rtu-over-tcp"),
                                               ("rtu-over-tcp", "rtu")])
def test_every_byte_order_reads_what_the_server_holds(framing: str, transport: str) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing=framing)
        sim.add(7, ALL_ORDERS, pinned=PINNED)
        port = await sim.start()
        addr = f"socket://127.0.0.1:{port}" if transport == "rtu" else f"127.0.0.1:{port}"
        bus = ModbusBus(transport, addr, timeout_s=1.0, retries=0)
        try:
            plan = plan_reads(ALL_ORDERS, max_gap=8)
            values: dict[str, Any] = {}
            for block in plan:
                values.update(block.decode(await bus.read("holding", block.start, block.count, 7)))
            for name, want in PINNED.items():
                assert values[name] == pytest.approx(want, rel=1e-6), name
            # 11 fields, 2 transactions (the far field is its own read)
            assert len(plan) == 2 and bus.stats.requests == 2 < len(ALL_ORDERS.fields)
            assert sim.meters[7].reads == 2
        finally:
            await bus.close()
            await sim.stop()

    run(main())


def test_typed_errors_for_silent_crc_and_exception_meters() -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="rtu-over-tcp")
        sim.add(1, GENERIC)
        sim.add(2, GENERIC, fault="silent")
        sim.add(3, GENERIC, fault="crc")
        sim.add(4, GENERIC, fault="exception")
        port = await sim.start()
        bus = ModbusBus("rtu-over-tcp", f"127.0.0.1:{port}", timeout_s=0.2, retries=0)
        try:
            with pytest.raises(ModbusTimeout):
                await bus.read("holding", 1, 10, 2)
            with pytest.raises(ModbusFramingError):
                await bus.read("holding", 1, 10, 3)
            with pytest.raises(ModbusExceptionReply) as exc:
                await bus.read("holding", 1, 10, 4)
            assert exc.value.code == 4
            # and the healthy meter still answers on the same connection
            assert len(await bus.read("holding", 1, 10, 1)) == 10
        finally:
            await bus.close()
            await sim.stop()

    run(main())


@pytest.mark.parametrize("profile_id", ["tuf-2000m", "dynaflox-ultrad", "generic-hot-water"])
def test_shipped_profiles_read_back_through_the_server(profile_id: str) -> None:
    """Split totals (integer m3 + fraction) come back as one total_m3, in each map's own word order."""
    profile = load_profile(ROOT / "config" / "meters" / f"{profile_id}.toml")

    async def main() -> None:
        sim = MeterSimulator(framing="rtu-over-tcp")
        meter = sim.add(9, profile, total_m3=12345.678, flow_m3h=0.25, frozen=True)
        port = await sim.start()
        bus = ModbusBus("rtu-over-tcp", f"127.0.0.1:{port}", timeout_s=1.0, retries=0)
        try:
            plan = plan_reads(profile)
            replies = [await bus.read(b.table, b.start, b.count, 9) for b in plan]
            values = decode_plan(plan, replies, profile)
            assert values["total_m3"] == pytest.approx(meter.current_total(), abs=2e-3)
            assert "total_fraction_m3" not in values
            assert values["flow_m3h"] == pytest.approx(0.25, abs=1e-3)
        finally:
            await bus.close()
            await sim.stop()

    run(main())


def test_serve_for_config_serves_tcp_and_socket_url_rtu_buses(tmp_path: Path) -> None:
    async def main() -> None:
        from conftest import free_port

        from drivers.sim.meters import serve_for_config

        p1, p2 = free_port(), free_port()
        cfg = make_config(tmp_path, (
            f'[[buses]]\nid = "t"\ntransport = "tcp"\nport = "127.0.0.1:{p1}"\n'
            f'[[buses]]\nid = "r"\ntransport = "rtu"\nport = "socket://127.0.0.1:{p2}"\n'
            '[[meters]]\nid = "a"\nbus = "t"\ndevice_id = 3\nprofile = "generic-hot-water"\nunit = "u-1"\n'
            '[[meters]]\nid = "b"\nbus = "r"\ndevice_id = 4\nprofile = "tuf-2000m"\nunit = "u-2"\n'))
        task = asyncio.create_task(serve_for_config(cfg))
        try:
            for transport, port, dev, n in (("tcp", f"127.0.0.1:{p1}", 3, 10), ("rtu", f"socket://127.0.0.1:{p2}", 4, 12)):
                bus = ModbusBus(transport, port, timeout_s=1.0, retries=0)
                for _ in range(100):
                    try:
                        assert len(await bus.read("holding", 0, n, dev)) == n
                        break
                    except Exception:
                        await bus.close()
                        bus = ModbusBus(transport, port, timeout_s=1.0, retries=0)
                        await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"simulator on {port} did not answer")
                await bus.close()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run(main())
