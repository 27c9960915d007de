"""Valve states and precision as profiles declare them, checked against a maker's published registers over a real
Modbus TCP exchange (a pymodbus server holding those registers as the meter), and fuzzed.

Vectors (not written here; the maker's protocol document as transcribed in a public driver):
tankwanghow/pou_con, lib/pou_con/hardware/devices/xintai_water_meter.ex @ 6aecd360fe4b6124fac148b5b94aba8607644cae,
after Kaifeng Xintai's "Water Meter MODBUS 485 protocol V1":
- "Response bytes: 1E 85 0B 3F = 0.545 m3/h" (instantaneous flow at 0x0005, float32 little endian);
- valve status register 0x001C, read bits: 0x0001 open, 0x0002 closed, 0x0004 abnormal, 0x0008 battery low;
  write 0x0001 open, 0x0002 close.
Flow-limit semantics (the restrict template profile): Belimo "VAV-Compact Modbus Register" en-gb 2019-03,
register no. 107 (address 106) Vmax: 0..10000 = 0.00..100.00 % of nominal flow, default 10000.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus import FramerType
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer

from drivers.modbus import ProfileError, load_profile, plan_reads
from drivers.modbus.profile import VALVE_LIMIT_FIELD, VALVE_STATE_FIELD, parse_profile
from drivers.modbus.transport import ModbusBus

METERS = Path(__file__).resolve().parents[2] / "gateway" / "meters"
XINTAI = load_profile(METERS / "xintai-water.toml")
RESTRICT = load_profile(METERS / "generic-hot-water-restrict.toml")

#: the Xintai document's example: bytes 1E 85 0B 3F in the flow register pair = 0.545 m3/h
XINTAI_FLOW_REGS = (0x1E85, 0x0B3F)
OPEN, CLOSED, ABNORMAL, LOW_BATTERY = 0x0001, 0x0002, 0x0004, 0x0008


class RegisterMeter:
    """A pymodbus TCP server holding one device's holding registers as given (a meter's register image)."""

    def __init__(self, device_id: int, registers: dict[int, int]) -> None:
        image = [0] * 64
        for address, value in registers.items():
            image[address] = value
        # pymodbus' sequential block numbers from 1: block(1, image) puts wire address a at image[a]
        self.block = ModbusSequentialDataBlock(1, image)
        self.server = ModbusTcpServer(ModbusServerContext(devices={device_id: ModbusDeviceContext(hr=self.block)},
                                                          single=False),
                                      framer=FramerType.SOCKET, address=("127.0.0.1", 0))

    async def __aenter__(self) -> str:
        await self.server.serve_forever(background=True)
        listening: Any = self.server.transport
        return f"127.0.0.1:{listening.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: Any) -> None:
        await self.server.shutdown()


async def poll(bus: ModbusBus, profile: Any, device_id: int) -> dict[str, Any]:
    """What the scheduler does for one meter: the polled plan (fields + valve state), decoded and folded."""
    values: dict[str, Any] = {}
    for block in plan_reads(profile.polled()):
        values.update(block.decode(await bus.read(block.table, block.start, block.count, device_id)))
    return profile.fold(values)


def test_xintai_registers_over_modbus_tcp_flow_precision_and_valve_status_bits() -> None:
    async def main() -> None:
        meter = RegisterMeter(5, {0x0005: XINTAI_FLOW_REGS[0], 0x0006: XINTAI_FLOW_REGS[1],
                                  0x001C: OPEN | LOW_BATTERY, 0x0007: 0x00AA})
        async with meter as port:
            bus = ModbusBus("tcp", port, timeout_s=1.0)
            try:
                values = await poll(bus, XINTAI, 5)
                # 1E 85 0B 3F is 0.54499996 as a float32: reported to the profile's 3 decimals
                assert values["flow_m3h"] == 0.545 and values["pipe_status"] == 0xAA
                assert values[VALVE_STATE_FIELD] == OPEN | LOW_BATTERY
                v = XINTAI.valve
                assert v is not None
                assert v.state_of(values[VALVE_STATE_FIELD]) == "open"           # the battery bit is not a state
                await bus.write(0x001C, CLOSED | LOW_BATTERY, 5)  # the meter's own status, as it would read
                assert v.state_of((await poll(bus, XINTAI, 5))[VALVE_STATE_FIELD]) == "closed"
                await bus.write(0x001C, OPEN | ABNORMAL, 5)
                assert v.state_of((await poll(bus, XINTAI, 5))[VALVE_STATE_FIELD]) == "unknown"
                # the command the gateway writes, as the document gives it
                assert v.writes("closed") == [(0x001C, 0x0002)] and v.writes("open") == [(0x001C, 0x0001)]
                assert v.states == ("open", "closed")
                with pytest.raises(ValueError):
                    v.writes("restricted")
            finally:
                await bus.close()

    asyncio.run(main())


def test_restricted_is_open_with_the_flow_limit_written_first() -> None:
    v = RESTRICT.valve
    assert v is not None and v.restrict is not None
    assert v.states == ("open", "closed", "restricted")
    # restrict: the limit before opening (a closed valve never opens at full flow); open: lift it, then open
    assert v.writes("restricted") == [(0x0020, 3000), (0x001C, 1)]
    assert v.writes("open") == [(0x0020, 10000), (0x001C, 1)]
    assert v.writes("closed") == [(0x001C, 2)]
    assert [v.state_of(1, limit) for limit in (10000, 3000, 5000, None)] == ["open", "restricted", "unknown", "open"]
    assert v.state_of(2, 3000) == "closed"
    assert [f.name for f in RESTRICT.status_fields] == [VALVE_STATE_FIELD, VALVE_LIMIT_FIELD]
    names = [f.name for b in plan_reads(RESTRICT.polled()) for f in b.fields]
    assert VALVE_STATE_FIELD in names and VALVE_LIMIT_FIELD in names


def test_precision_is_declared_per_field_with_sensible_defaults() -> None:
    p = parse_profile("p", {"fields": {
        "total_m3": {"address": 0, "type": "int32"},
        "total_fraction_m3": {"address": 2, "type": "float32", "add_to": "total_m3"},
        "flow_m3h": {"address": 4, "type": "float32", "precision": 3},
        "battery_v": {"address": 6, "type": "uint16", "scale": 0.01},
        "heat_kwh": {"address": 7, "type": "uint32", "scale": 0.25}}})
    f = {x.name: x for x in p.fields}
    assert f["flow_m3h"].decode(f["flow_m3h"].encode(0.15)) == 0.15           # not 0.15000001
    assert f["flow_m3h"].decode(f["flow_m3h"].encode(-0.0001)) == 0.0         # no -0.0
    assert f["battery_v"].decode([360]) == 3.6 and f["battery_v"].decimals == 2
    assert f["heat_kwh"].decode(f["heat_kwh"].encode(3.75)) == 3.75
    assert f["total_m3"].decode([0, 7]) == 7 and isinstance(f["total_m3"].decode([0, 7]), int)
    # a folded total: its own precision if declared, else the finest of its parts
    assert p.fold({"total_m3": 12, "total_fraction_m3": 0.3456789}) == {"total_m3": 12.345679}
    assert p.round_values({"flow_m3h": 0.15000001, "total_m3": 12.3456789012, "other": 0.1000000001}) == {
        "flow_m3h": 0.15, "total_m3": 12.345679, "other": 0.1000000001}
    shipped = load_profile(METERS / "tuf-2000m.toml")
    assert shipped.fold({"total_m3": 12, "total_fraction_m3": 0.3456789}) == {"total_m3": 12.346}


def test_profile_problems_for_valves_restriction_supply_and_precision() -> None:
    raw = {"supply_temp_field": "nope", "supply_floor_c": 120,
           "fields": {"total_m3": {"address": 0, "precision": 12}, "temp_c": {"address": 2, "precision": "x"}},
           "valve": {"address": 28, "open": 1, "close": 9, "state_mask": 3, "bogus": 1,
                     "restrict": {"address": 32, "value": 5, "unrestricted": 5, "when": "night"}}}
    with pytest.raises(ProfileError) as exc:
        parse_profile("bad", raw)
    keys = {k for _, k, _ in exc.value.problems}
    assert {"supply_temp_field", "supply_floor_c", "fields.total_m3.precision", "fields.temp_c.precision",
            "valve.bogus", "valve.restrict.when", "valve.restrict.value"} <= keys, keys
    with pytest.raises(ProfileError) as exc:  # 1 and 9 are the same under mask 3
        parse_profile("bad", {"fields": {"total_m3": {"address": 0}}, "valve": {"address": 1, "close": 9, "state_mask": 3}})
    assert [k for _, k, _ in exc.value.problems] == ["valve.close"]
    with pytest.raises(ProfileError) as exc:
        parse_profile("bad", {"supply_floor_c": 40, "fields": {"total_m3": {"address": 0}}})
    assert "needs supply_temp_field" in str(exc.value)


scalar = st.one_of(st.integers(-5, 70000), st.floats(allow_nan=True), st.text(max_size=4), st.booleans(), st.none())
tables = st.dictionaries(st.sampled_from(["address", "open", "close", "state_address", "state_mask", "value",
                                          "unrestricted", "x"]), scalar, max_size=6)


@settings(max_examples=300, deadline=None)
@given(valve=st.one_of(scalar, tables, tables.map(lambda t: {**t, "restrict": t})),
       top=st.dictionaries(st.sampled_from(["supply_temp_field", "supply_floor_c"]), scalar, max_size=2),
       precision=scalar)
def test_fuzzed_valve_and_supply_tables_are_refused_with_problems_never_a_crash(
        valve: Any, top: dict[str, Any], precision: Any) -> None:
    raw = {**top, "valve": valve, "fields": {"total_m3": {"address": 0, "precision": precision},
                                            "temp_c": {"address": 2}}}
    try:
        p = parse_profile("f", raw)
    except ProfileError as exc:
        assert exc.problems
        return
    if p.valve is not None:
        for state in p.valve.states:
            assert all(0 <= a <= 0xFFFF and 0 <= v <= 0xFFFF for a, v in p.valve.writes(state))


@given(raw=st.integers(0, 0xFFFF), limit=st.one_of(st.none(), st.integers(0, 0xFFFF)))
def test_any_register_value_reads_as_a_known_state(raw: int, limit: int | None) -> None:
    for profile in (XINTAI, RESTRICT):
        assert profile.valve is not None
        assert profile.valve.state_of(raw, limit) in ("open", "closed", "restricted", "unknown")
