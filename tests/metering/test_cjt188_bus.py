"""CJ/T 188 meters on a bus, end to end in process: the real component, scheduler, store and the simulator
on a pyserial ``socket://`` URL. Readings are the same ``meter.reading`` events as Modbus meters'; a silent
meter is backed off without stalling the others; valves are driven and confirmed; corpus replies replayed by
the simulator come out of the gateway with the values the corpus says."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, make_config
from conftest import until as wait_for

from drivers.sim.cjt188 import Cjt188Simulator
from gateway.config import check_config
from gateway.daemon import build_context, stop_context
from gateway.errors import DomainError
from gateway.metering import MeteringComponent

CORPUS = {c["id"]: c for c in tomllib.loads(
    (Path(__file__).resolve().parents[1] / "conformance" / "cjt188" / "corpus.toml").read_text())["case"]}


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 100))


def site(port: int, meters: list[dict[str, Any]], *, poll_s: float = 0.5, timeout_s: float = 0.3,
         wakeup: int = 4) -> str:
    out = (f'[metering]\noffline_after = 2\nbilling_check_s = 3600\n'
           f'[[buses]]\nid = "cjt-1"\ntransport = "serial"\nport = "socket://127.0.0.1:{port}"\nbaud = 2400\n'
           f'timeout_s = {timeout_s}\nretries = 0\nwakeup_bytes = {wakeup}\n')
    for i, m in enumerate(meters):
        extra = "".join(f'{k} = {v!r}\n'.replace("'", '"').replace("True", "true").replace("False", "false")
                        for k, v in m.items() if k not in ("id", "address"))
        out += (f'[[meters]]\nid = "{m["id"]}"\nbus = "cjt-1"\nprotocol = "cjt188"\naddress = "{m["address"]}"\n'
                f'unit = "3-2-{i:04d}"\npoll_s = {poll_s}\n{extra}')
    return out


class Site:
    def __init__(self, tmp_path: Path, sim: Cjt188Simulator, meters: list[dict[str, Any]], *,
                 port: int = 0, **kw: Any) -> None:
        self.tmp_path, self.sim, self.meters, self.kw, self.port = tmp_path, sim, meters, kw, port
        self.events: list[Any] = []

    async def __aenter__(self) -> Site:
        port = self.port or await self.sim.start()
        cfg = make_config(self.tmp_path, site(port, self.meters, **self.kw))
        self.comp = MeteringComponent()
        self.ctx = await build_context(cfg, components=[self.comp], start=False)
        self.ctx.events.subscribe(self.events.append)
        await self.comp.start(self.ctx)
        return self

    def of(self, type_: str, meter: str | None = None) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.type == type_ and (meter is None or e.data.get("meter") == meter)]

    async def __aexit__(self, *exc: Any) -> None:
        await stop_context(self.ctx)
        await self.sim.stop()


def test_water_heat_and_corpus_meters_give_meter_readings(tmp_path: Path) -> None:
    sanext, ff = CORPUS["sanext-heat-reply"], CORPUS["go-reader-water-reply-ff-fields"]

    async def main() -> None:
        sim = Cjt188Simulator()
        sim.add("00000000000101", meter_type=0x11, total_m3=321.5, wakeup=4)             # sleeps: needs the FE run
        sim.add("00000000000102", meter_type=0x20, total_m3=50.0, heat_kwh=12345.67)
        sim.add("00000000000103", meter_type=0x10, di_high_first=True)                   # answers 90 1F
        sim.add(sanext["expect"]["address"], meter_type=0x20, replay={0x901F: bytes.fromhex(sanext["hex"])})
        sim.add(ff["expect"]["address"], meter_type=0x10, replay={0x901F: bytes.fromhex(ff["hex"])})
        meters = [{"id": "hw-1", "address": "00000000000101", "meter_type": "hot-water"},
                  {"id": "heat-1", "address": "00000000000102", "meter_type": "heat"},
                  {"id": "cw-1", "address": "00000000000103", "meter_type": "water", "di_order": "high-first"},
                  {"id": "sanext", "address": sanext["expect"]["address"], "meter_type": "heat"},
                  {"id": "ff", "address": ff["expect"]["address"], "meter_type": "water"}]
        async with Site(tmp_path, sim, meters, poll_s=30) as s:
            await wait_for(lambda: {e["meter"] for e in s.of("meter.reading")} >= {m["id"] for m in meters}, 15,
                           "a reading from every meter")
            first = {e["meter"]: e for e in reversed(s.of("meter.reading"))}
            assert first["hw-1"]["values"]["total_m3"] == pytest.approx(321.5, abs=0.01)
            assert first["heat-1"]["values"]["heat_kwh"] == pytest.approx(12345.67, abs=0.01)
            assert first["heat-1"]["values"]["supply_c"] == 55.0 and first["heat-1"]["values"]["return_c"] == 40.0
            assert first["cw-1"]["values"]["total_m3"] == pytest.approx(100.0, abs=0.01)
            assert first["sanext"]["values"] == pytest.approx(sanext["expect"]["values"])
            # the meter that answers FF for its settlement total: a reading, without that field
            assert first["ff"]["values"] == pytest.approx(ff["expect"]["values"])
            assert "settlement_m3" not in first["ff"]["values"]
            assert first["hw-1"]["unit"] == "3-2-0000" and first["hw-1"]["read_at"]
            await s.comp.flush()
            pulled = s.comp.readings_after(0, 100)["items"]
            assert {r["meter"] for r in pulled} >= {m["id"] for m in meters}
            states = {m["id"]: m for m in s.comp.meter_states()}
            assert states["hw-1"]["protocol"] == "cjt188" and states["hw-1"]["address"] == "00000000000101"
            assert states["sanext"]["online"] is True

    run(main())


def test_a_silent_meter_is_backed_off_and_the_others_keep_their_period(tmp_path: Path) -> None:
    async def main() -> None:
        sim = Cjt188Simulator()
        addresses = [f"000000000002{i:02d}" for i in range(1, 9)]
        for a in addresses:
            sim.add(a, meter_type=0x11, fault="silent" if a.endswith("05") else "checksum" if a.endswith("06")
                    else None)
        meters = [{"id": f"m{a[-2:]}", "address": a} for a in addresses]
        async with Site(tmp_path, sim, meters, poll_s=0.5, timeout_s=0.3) as s:
            await wait_for(lambda: {e["meter"] for e in s.of("meter.offline")} >= {"m05", "m06"}, 15, "offline")
            good = [a for a in addresses if a[-2:] not in ("05", "06")]
            before = {a: sim.meters[a].reads for a in good}
            misses = {m: s.comp.meters[m].misses for m in ("m05", "m06")}
            # every answering meter read 6 more times (its 0.5 s period; the bound is generous, not a measure)
            await wait_for(lambda: all(sim.meters[a].reads - before[a] >= 6 for a in good), 30, "6 more polls each")
            fewest = min(sim.meters[a].reads - before[a] for a in good)
            # meanwhile the silent and the garbled meter were tried far less often: backed off, they cannot hold the
            # line while the others are read (each of their attempts costs a whole timeout)
            tried = {m: s.comp.meters[m].misses - misses[m] for m in misses}
            assert all(n * 2 < fewest for n in tried.values()), (tried, fewest)
            states = {m["id"]: m for m in s.comp.meter_states()}
            assert states["m05"]["last_error"].startswith("timeout")
            assert states["m06"]["last_error"].startswith("framing")
            assert states["m01"]["online"] is True
            sim.meters[addresses[4]].fault = None
            await wait_for(lambda: s.of("meter.online", "m05"), 20, "back online")

    run(main())


def test_valve_is_driven_and_confirmed(tmp_path: Path) -> None:
    async def main() -> None:
        sim = Cjt188Simulator()
        sim.add("00000000000301", meter_type=0x11, has_valve=True)
        sim.add("00000000000302", meter_type=0x11, has_valve=True)   # the config says it has none
        stuck = sim.add("00000000000303", meter_type=0x11, has_valve=True)
        meters = [{"id": "v1", "address": "00000000000301", "valve": True},
                  {"id": "v2", "address": "00000000000302"},
                  {"id": "v3", "address": "00000000000303", "valve": True}]
        async with Site(tmp_path, sim, meters, poll_s=30, timeout_s=0.5) as s:
            res = await s.comp.set_valve("v1", "close", "central", "central")
            assert res == {"meter": "v1", "state": "closed"} and sim.meters["00000000000301"].valve_closed
            await wait_for(lambda: s.of("meter.valve", "v1"), 5, "meter.valve")
            assert s.of("meter.valve", "v1")[0]["state"] == "closed"
            assert (await s.comp.set_valve("v1", "open", "central", "central"))["state"] == "open"
            assert not sim.meters["00000000000301"].valve_closed
            with pytest.raises(DomainError) as no_valve:
                await s.comp.set_valve("v2", "close", "central", "central")
            assert no_valve.value.code == "no_valve"
            # a meter whose valve does not move: its reply says open after a close
            stuck.set_valve = lambda closed: None  # type: ignore[method-assign]
            with pytest.raises(DomainError) as not_confirmed:
                await s.comp.set_valve("v3", "close", "central", "central")
            assert not_confirmed.value.code == "valve_not_confirmed"
            states = {m["id"]: m for m in s.comp.meter_states()}
            assert states["v1"]["has_valve"] and not states["v2"]["has_valve"]

    run(main())


def test_no_wakeup_bytes_no_reply_from_a_sleeping_meter(tmp_path: Path) -> None:
    async def main() -> None:
        sim = Cjt188Simulator()
        sim.add("00000000000401", meter_type=0x10, wakeup=2)
        async with Site(tmp_path, sim, [{"id": "sleepy", "address": "00000000000401"}], wakeup=0,
                        timeout_s=0.2) as s:
            await wait_for(lambda: s.of("meter.offline", "sleepy"), 10, "offline without the wake-up")
            assert sim.meters["00000000000401"].reads == 0

    run(main())


def test_a_bus_that_cannot_connect_is_offline_then_recovers(tmp_path: Path) -> None:
    async def main() -> None:
        port = free_port()
        sim = Cjt188Simulator()
        sim.add("00000000000501", meter_type=0x11)
        async with Site(tmp_path, sim, [{"id": "late", "address": "00000000000501"}], port=port) as s:
            await wait_for(lambda: [e for e in s.events if e.type == "device.offline"], 10, "bus offline")
            await sim.start("127.0.0.1", port)
            await wait_for(lambda: s.of("meter.reading", "late"), 40, "reading once the line is there")

    run(main())


@pytest.mark.parametrize("meter, bus, words", [
    ('protocol = "cjt188"\n', 'transport = "serial"\nport = "/dev/ttyUSB3"\n', "needs address"),
    ('protocol = "cjt188"\naddress = "00000000000001"\n', 'transport = "rtu"\nport = "/dev/ttyUSB3"\n',
     'needs a bus with transport = "serial"'),
    ('device_id = 3\nprofile = "generic-hot-water"\n', 'transport = "serial"\nport = "/dev/ttyUSB3"\n',
     "needs a bus with a Modbus transport"),
    ('protocol = "cjt188"\naddress = "00000000000001"\nmeter_type = "gas"\n',
     'transport = "serial"\nport = "/dev/ttyUSB3"\n', "unknown CJ/T 188 meter type"),
    ('protocol = "cjt188"\naddress = "00000000000001"\ndevice_id = 3\n',
     'transport = "serial"\nport = "/dev/ttyUSB3"\n', "device_id: not used"),
    ('device_id = 3\nprofile = "generic-hot-water"\naddress = "00000000000001"\n',
     'transport = "rtu"\nport = "/dev/ttyUSB3"\n', "address: not used"),
    ('device_id = 3\nprofile = "generic-hot-water"\n', 'transport = "tcp"\nport = "127.0.0.1:502"\nparity = "E"\n',
     "parity applies"),
    ('protocol = "cjt188"\naddress = "7833001122334"\n', 'transport = "serial"\nport = "/dev/ttyUSB3"\n',
     "14 digits printed on the meter"),
])
def test_config_rules(tmp_path: Path, meter: str, bus: str, words: str) -> None:
    text = (f'[gateway]\nid = "gw"\nsite = "s"\ndata_dir = "var"\n[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n'
            f'[[buses]]\nid = "b"\n{bus}[[meters]]\nid = "m"\nbus = "b"\nunit = "1-1"\n{meter}')
    path = tmp_path / "gw.toml"
    path.write_text(text)
    problems = check_config(path)
    assert any(words in str(p) for p in problems), problems


def test_two_meters_with_one_address_on_a_bus_are_refused(tmp_path: Path) -> None:
    text = ('[gateway]\nid = "gw"\nsite = "s"\ndata_dir = "var"\n[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n'
            '[[buses]]\nid = "b"\ntransport = "serial"\nport = "/dev/ttyUSB3"\n'
            + "".join(f'[[meters]]\nid = "m{i}"\nbus = "b"\nunit = "1-1"\nprotocol = "cjt188"\n'
                      f'address = "00000000000001"\n' for i in range(2)))
    path = tmp_path / "gw.toml"
    path.write_text(text)
    problems = [str(p) for p in check_config(path)]
    assert any("meters[1].address" in p and "already used" in p for p in problems), problems


def test_the_line_dropping_is_survived(tmp_path: Path) -> None:
    """The device server drops the socket (a reboot): the bus reconnects and the readings go on."""
    async def main() -> None:
        sim = Cjt188Simulator()
        sim.add("00000000000601", meter_type=0x11)
        async with Site(tmp_path, sim, [{"id": "d1", "address": "00000000000601"}], poll_s=0.3) as s:
            await wait_for(lambda: s.of("meter.reading", "d1"), 10, "first reading")
            for _ in range(3):
                await sim.drop_connections()
                n = len(s.of("meter.reading", "d1"))
                await wait_for(lambda n=n: len(s.of("meter.reading", "d1")) > n + 1, 20, "readings after the drop")

    run(main())


def test_quarter_end_billing_takes_cjt188_readings(tmp_path: Path) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    async def main() -> None:
        sim = Cjt188Simulator()
        sim.add("00000000000701", meter_type=0x11, total_m3=88.8)
        sim.add("00000000000702", meter_type=0x20, total_m3=12.0)
        meters = [{"id": "b1", "address": "00000000000701"}, {"id": "b2", "address": "00000000000702",
                                                               "meter_type": "heat"}]
        async with Site(tmp_path, sim, meters, poll_s=3600) as s:
            await wait_for(lambda: len(s.of("meter.reading")) >= 2, 10, "first readings")
            s.ctx.clock.set(datetime(2026, 12, 26, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
            res = await s.comp.billing.check()
            assert res["period"] == "2026Q4" and set(res["polled"]) == {"b1", "b2"}
            await wait_for(lambda: len(s.of("meter.billing_reading")) >= 2, 10, "billing readings")
            bills = {b["meter"]: b for b in s.of("meter.billing_reading")}
            assert bills["b1"]["values"]["total_m3"] == pytest.approx(88.8, abs=0.01)
            assert bills["b2"]["period"] == "2026Q4" and bills["b2"]["values"]["total_m3"] == pytest.approx(12.0, abs=0.01)

    run(main())


def test_a_serial_bus_defaults_to_the_cjt188_line_settings(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, '[[buses]]\nid = "s"\ntransport = "serial"\nport = "/dev/ttyUSB3"\n'
                                '[[buses]]\nid = "s2"\ntransport = "serial"\nport = "/dev/ttyUSB4"\nbaud = 9600\n'
                                'timeout_s = 0.5\n[[buses]]\nid = "m"\ntransport = "rtu"\nport = "/dev/ttyUSB5"\n')
    s, s2, m = cfg.buses
    assert (s.baud, s.timeout_s, s.parity, s.wakeup_bytes) == (2400, 1.5, None, 4)
    assert (s2.baud, s2.timeout_s) == (9600, 0.5) and (m.baud, m.timeout_s) == (9600, 0.3)
