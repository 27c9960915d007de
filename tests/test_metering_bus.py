"""Metering with real parts: a pymodbus server of simulated meters, the real scheduler and store."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conftest import make_config, until as wait_for
from drivers.modbus import ModbusBus, ModbusExceptionReply, ModbusFramingError, ModbusTimeout, plan_reads
from drivers.modbus.profile import load_profile, parse_profile
from drivers.sim.meters import MeterSimulator
from gateway.commands import CommandError
from gateway.daemon import build_context, stop_context
from gateway.metering import MeteringComponent, billing_period, last_window_end

ROOT = Path(__file__).resolve().parent.parent
GENERIC = load_profile(ROOT / "config" / "meters" / "generic-hot-water.toml")
TUF = load_profile(ROOT / "config" / "meters" / "tuf-2000m.toml")
SHANGHAI = ZoneInfo("Asia/Shanghai")

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


# ---------------------------------------------------------------------- drivers against the server
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


# ---------------------------------------------------------------------- the component
def site(port: int, meters: list[tuple[str, int, str]], *, transport: str = "rtu-over-tcp", poll_s: float = 0.5,
         timeout_s: float = 0.2, extra: str = "") -> str:
    out = (f'[metering]\noffline_after = 2\nbilling_check_s = 3600\n{extra}\n'
           f'[[buses]]\nid = "bus-1"\ntransport = "{transport}"\nport = "127.0.0.1:{port}"\n'
           f'timeout_s = {timeout_s}\nretries = 0\n')
    for mid, dev, profile in meters:
        out += (f'[[meters]]\nid = "{mid}"\nbus = "bus-1"\ndevice_id = {dev}\nprofile = "{profile}"\n'
                f'unit = "3-1-{dev:04d}"\npoll_s = {poll_s}\n')
    return out


class Harness:
    def __init__(self, tmp_path: Path, sim: MeterSimulator, meters: list[tuple[str, int, str]], **kw: Any) -> None:
        self.tmp_path, self.sim, self.meters, self.kw = tmp_path, sim, meters, kw
        self.events: list[Any] = []

    async def __aenter__(self) -> "Harness":
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


def test_silent_and_crc_meters_do_not_slow_the_other_18(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="rtu-over-tcp")
        meters = [(f"m{i:02d}", i, "generic-hot-water") for i in range(1, 21)]
        for _, dev, _ in meters:
            sim.add(dev, GENERIC, fault="silent" if dev == 5 else "crc" if dev == 6 else None)
        async with Harness(tmp_path, sim, meters, poll_s=0.5, timeout_s=0.3) as h:
            await h.start()
            await wait_for(lambda: {e["meter"] for e in h.of("meter.offline")} >= {"m05", "m06"}, 15, "offline")
            await wait_for(lambda: all(sim.meters[d].reads >= 1 for d in range(1, 21) if d not in (5, 6)), 10)
            before = {d: sim.meters[d].reads for d in range(1, 21)}
            t0 = time.monotonic()
            await asyncio.sleep(4.0)
            elapsed = time.monotonic() - t0
            for d in range(1, 21):
                if d in (5, 6):
                    continue
                got = sim.meters[d].reads - before[d]
                # keeps its 0.5 s period: about elapsed/0.5 polls (slack for phase and a loaded CI machine)
                assert got >= int(0.75 * elapsed / 0.5) - 1, (d, got, elapsed)
            states = {s["id"]: s for s in h.comp.meter_states()}
            assert states["m05"]["online"] is False and states["m05"]["last_error"].startswith("timeout")
            assert states["m06"]["last_error"].startswith("framing")
            assert states["m01"]["online"] is True and states["m01"]["values"]["total_m3"] > 0
            assert {m["id"] for m in h.comp.handover_items()["meters"]} == {"m05", "m06"}
            # the silent meter comes back
            sim.meters[5].fault = None
            await wait_for(lambda: any(e["meter"] == "m05" for e in h.of("meter.online")), 20, "online again")

    run(main())


def test_readings_pull_never_skips_or_repeats_while_readings_arrive(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="tcp")
        meters = [(f"m{i:02d}", i, "generic-hot-water") for i in range(1, 11)]
        for _, dev, _ in meters:
            sim.add(dev, GENERIC)
        async with Harness(tmp_path, sim, meters, poll_s=0.05) as h:
            await h.start()
            seen: list[tuple[str, str]] = []
            cursor = 0
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                page = h.comp.readings_after(cursor, 7)
                seen += [(i["meter"], i["read_at"]) for i in page["items"]]
                cursor = int(page["next"])
                await asyncio.sleep(0.01)
            for sched in h.comp.schedulers.values():
                sched.meters.clear()  # stop polling, then drain
            await h.comp.flush()
            while page := h.comp.readings_after(cursor, 7):
                if not page["items"]:
                    break
                seen += [(i["meter"], i["read_at"]) for i in page["items"]]
                cursor = int(page["next"])
            rows = h.ctx.store.query("SELECT meter, read_at FROM readings ORDER BY id")
            assert len(rows) > 100
            assert seen == [tuple(r) for r in rows]
            assert len(h.of("meter.reading")) == len(rows)

    run(main())


def test_valve_close_open_round_trip_and_meter_without_valve(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="tcp")
        sim.add(1, GENERIC)
        sim.add(2, TUF)
        sim.add(3, GENERIC, fault="silent")
        meters = [("hw-1", 1, "generic-hot-water"), ("hw-2", 2, "tuf-2000m"), ("hw-3", 3, "generic-hot-water")]
        async with Harness(tmp_path, sim, meters, poll_s=30, extra="valve_timeout_s = 3") as h:
            await h.start()
            res = await h.comp.set_valve("hw-1", "close", "tech-wang", "technician")
            assert res["state"] == "closed" and sim.meters[1].valve_state == 2
            res = await h.comp.set_valve("hw-1", "open", "central", "central")
            assert res["state"] == "open" and sim.meters[1].valve_state == 1
            assert [(e["state"], e["by"]) for e in h.of("meter.valve")] == [("closed", "tech-wang"), ("open", "central")]
            audit = h.ctx.audit.query()
            assert [(a["actor"], a["action"], a["target"]) for a in audit] == [
                ("tech-wang", "meter.valve", "hw-1"), ("central", "meter.valve", "hw-1")]
            with pytest.raises(CommandError) as exc:
                await h.comp.set_valve("hw-2", "close", "central", "central")
            assert exc.value.code == "no_valve" and "no valve register" in str(exc.value)
            with pytest.raises(CommandError) as exc:
                await h.comp.set_valve("nope", "close", "central", "central")
            assert exc.value.code == "not_found"
            with pytest.raises(CommandError) as exc:
                await h.comp.set_valve("hw-3", "close", "central", "central")
            assert exc.value.code == "meter_unreachable"
            assert [s["valve"] for s in h.comp.meter_states()] == ["open", None, None]
            # the MQTT command path
            out = await h.ctx.commands.handle("valve", '{"id":"c1","args":{"meter":"hw-1","action":"close"}}')
            assert out["ok"] and out["result"] == {"state": "closed"}
            out = await h.ctx.commands.handle("readings.now", '{"id":"c2","args":{"meters":["hw-2"]}}')
            assert out["ok"] and out["result"] == {"queued": ["hw-2"]}
            await wait_for(lambda: any(e["meter"] == "hw-2" for e in h.of("meter.reading")), 10, "reading now")
            assert h.of("meter.reading")[-1]["values"]["temp_supply_c"] == 55.0

    run(main())


def test_billing_window_calendar() -> None:
    assert billing_period(datetime(2026, 12, 25, 0, 0, tzinfo=SHANGHAI)) == "2026Q4"
    assert billing_period(datetime(2026, 12, 30, 23, 59, tzinfo=SHANGHAI)) == "2026Q4"
    assert billing_period(datetime(2026, 12, 31, 0, 0, tzinfo=SHANGHAI)) is None
    assert billing_period(datetime(2026, 12, 24, 23, 59, tzinfo=SHANGHAI)) is None
    assert billing_period(datetime(2026, 6, 27, tzinfo=SHANGHAI)) == "2026Q2"
    assert billing_period(datetime(2026, 5, 27, tzinfo=SHANGHAI)) is None
    assert last_window_end(datetime(2027, 1, 2, tzinfo=SHANGHAI)) == ("2026Q4", datetime(2026, 12, 31, tzinfo=SHANGHAI))
    assert last_window_end(datetime(2026, 7, 1, 0, 0, 1, tzinfo=SHANGHAI))[0] == "2026Q2"
    assert last_window_end(datetime(2026, 2, 1, tzinfo=SHANGHAI))[0] == "2025Q4"


def test_quarter_end_billing_with_a_controlled_clock(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="tcp")
        meters = [(f"hw-{i}", i, "generic-hot-water") for i in range(1, 5)]
        for _, dev, _ in meters:
            sim.add(dev, GENERIC, fault="silent" if dev == 4 else None)
        async with Harness(tmp_path, sim, meters, poll_s=0.3) as h:
            h.ctx.clock.set(datetime(2026, 12, 20, 10, 0, tzinfo=SHANGHAI))
            await h.start()
            await wait_for(lambda: len(h.of("meter.reading")) >= 6, 10, "readings before the window")
            assert h.of("meter.billing_reading") == []
            h.ctx.clock.set(datetime(2026, 12, 26, 10, 0, tzinfo=SHANGHAI))
            res = await h.comp.check_billing()
            assert res["period"] == "2026Q4" and set(res["polled"]) == {"hw-1", "hw-2", "hw-3", "hw-4"}
            await wait_for(lambda: len(h.of("meter.billing_reading")) >= 3, 10, "billing readings")
            await asyncio.sleep(1.0)  # more polls in the window: still one billing reading per meter
            await h.comp.flush()
            bills = h.of("meter.billing_reading")
            assert sorted(b["meter"] for b in bills) == ["hw-1", "hw-2", "hw-3"]
            assert all(b["period"] == "2026Q4" and b["values"]["total_m3"] > 0 for b in bills)
            assert h.comp.billing_status("2026Q4")["missing"] == ["hw-4"]
            # hw-4 answers on the 29th: retried until it succeeds
            sim.meters[4].fault = None
            h.ctx.clock.set(datetime(2026, 12, 29, 9, 0, tzinfo=SHANGHAI))
            await h.comp.check_billing()
            await wait_for(lambda: any(b["meter"] == "hw-4" for b in h.of("meter.billing_reading")), 15, "late bill")
            # a meter silent for the whole window is reported missing once, after it
            sim.meters[3].fault = "silent"
            await h.comp.flush()
            h.ctx.store.write_sync(lambda c: c.execute("DELETE FROM billing_readings WHERE meter='hw-3'"))
            h.comp._billed.discard(("hw-3", "2026Q4"))
            h.ctx.clock.set(datetime(2026, 12, 31, 8, 0, tzinfo=SHANGHAI))
            res = await h.comp.check_billing()
            assert res == {"period": "2026Q4", "missing": ["hw-3"]}
            assert await h.comp.check_billing() == {}
            assert [e["meter"] for e in h.of("meter.billing_missing")] == ["hw-3"]

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
            from drivers.modbus import decode_plan
            values = decode_plan(plan, replies, profile)
            assert values["total_m3"] == pytest.approx(meter.current_total(), abs=2e-3)
            assert "total_fraction_m3" not in values
            assert values["flow_m3h"] == pytest.approx(0.25, abs=1e-3)
        finally:
            await bus.close()
            await sim.stop()

    run(main())


def test_nan_registers_are_dropped_not_stored(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="tcp")
        sim.add(1, GENERIC, pinned={"flow_m3h": float("nan")})
        async with Harness(tmp_path, sim, [("hw-1", 1, "generic-hot-water")], poll_s=0.2) as h:
            await h.start()
            await wait_for(lambda: h.of("meter.reading"), 10, "a reading")
            values = h.of("meter.reading")[0]["values"]
            assert "flow_m3h" not in values and values["total_m3"] > 0
            await h.comp.flush()
            page = h.comp.readings_after(0, 10)
            assert "flow_m3h" not in page["items"][0]["values"]

    run(main())


def test_unreachable_buses_are_reported_and_valves_fail_cleanly(tmp_path: Path) -> None:
    async def main() -> None:
        from conftest import free_port

        cfg = make_config(tmp_path, (
            '[[buses]]\nid = "b-serial"\ntransport = "rtu"\nport = "/dev/ttyNOPE"\n'
            f'[[buses]]\nid = "b-tcp"\ntransport = "tcp"\nport = "127.0.0.1:{free_port()}"\n'
            '[[meters]]\nid = "m"\nbus = "b-serial"\ndevice_id = 1\nprofile = "generic-hot-water"\nunit = "u-1"\n'
            '[[meters]]\nid = "n"\nbus = "b-tcp"\ndevice_id = 1\nprofile = "generic-hot-water"\nunit = "u-2"\n'))
        comp = MeteringComponent()
        ctx = await build_context(cfg, components=[comp])
        try:
            await wait_for(lambda: {d["id"] for d in ctx.devices.offline()} == {"b-serial", "b-tcp"}, 15, "offline")
            for mid in ("m", "n"):
                with pytest.raises(CommandError) as exc:
                    await comp.set_valve(mid, "close", "tech", "technician")
                assert exc.value.code == "meter_unreachable"
            assert [a["detail"]["ok"] for a in ctx.audit.query()] == [False, False]
        finally:
            await stop_context(ctx)

    run(main())


def test_valve_write_jumps_ahead_of_queued_polls(tmp_path: Path) -> None:
    async def main() -> None:
        sim = MeterSimulator(framing="rtu-over-tcp", baud=9600)  # real line time: the queue is observable
        meters = [(f"m{i:02d}", i, "generic-hot-water") for i in range(1, 21)]
        for _, dev, _ in meters:
            sim.add(dev, GENERIC)
        async with Harness(tmp_path, sim, meters, poll_s=3600, timeout_s=1.0) as h:
            await h.start()
            await wait_for(lambda: len(h.of("meter.reading")) >= 20, 20, "first round")  # the spread start
            queued = await h.comp.poll_now()
            assert len(queued) == 20
            assert await h.comp.poll_now(["m01"]) == ["m01"]  # already queued: not queued twice
            mark = len(sim.log)
            await asyncio.sleep(0.01)  # the first queued poll is on the wire
            res = await h.comp.set_valve("m20", "close", "central", "central")
            assert res["state"] == "closed"
            ops = list(sim.log)[mark:]
            # the write went out right after the request already on the line, not after the 20 queued polls
            assert ops.index((20, "write")) <= 2, ops[:5]
            await wait_for(lambda: len(h.of("meter.reading")) >= 40, 20, "the queued polls")
            await h.comp.flush()
            assert len(h.of("meter.reading")) == 40

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
