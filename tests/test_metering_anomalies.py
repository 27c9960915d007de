"""Plausibility rules: reverse (with documented rollover), spike, leak, stuck."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from drivers.modbus.profile import parse_profile
from gateway.config import MeterConfig, MeteringSection
from gateway.metering import MeteringComponent, MeterRuntime

PROFILE = parse_profile("p", {"rollover_m3": 99999.0, "fields": {
    "total_m3": {"address": 0, "type": "float32"}, "flow_m3h": {"address": 2, "type": "float32"}}})
NOFLOW = parse_profile("q", {"fields": {"total_m3": {"address": 0, "type": "float32"}}})
T0 = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)


def setup(profile=PROFILE) -> tuple[MeteringComponent, MeterRuntime]:
    comp = MeteringComponent()
    comp.ctx = SimpleNamespace(config=SimpleNamespace(metering=MeteringSection(leak_hours=6, spike_m3=5)))
    m = MeterRuntime(cfg=MeterConfig(id="m", bus="b", device_id=1, profile="p", unit="1-1"), profile=profile, plan=())
    return comp, m


def feed(comp: MeteringComponent, m: MeterRuntime, seq: list[tuple[float, float | None, float]]) -> list[list[str]]:
    """(total, flow, hours since T0) -> anomalies started at each reading."""
    out = []
    for total, flow, h in seq:
        values = {"total_m3": total} if flow is None else {"total_m3": total, "flow_m3h": flow}
        out.append([k for k, _ in comp._plausibility(m, values, T0 + timedelta(hours=h))])
    return out


def test_normal_consumption_is_quiet() -> None:
    comp, m = setup()
    assert feed(comp, m, [(10.0, 0.0, 0), (10.2, 0.3, 1), (10.5, 0.0, 2), (10.5, 0.0, 3)]) == [[], [], [], []]


def test_reverse_is_reported_once_and_rollover_is_not_reverse() -> None:
    comp, m = setup()
    assert feed(comp, m, [(100.0, 0, 0), (99.0, 0, 1), (98.5, 0, 2), (98.6, 0, 3)]) == [[], ["reverse"], [], []]
    comp, m = setup()
    assert feed(comp, m, [(99998.5, 0, 0), (0.7, 0, 1)]) == [[], []]


def test_spike() -> None:
    comp, m = setup()
    assert feed(comp, m, [(100.0, 0, 0), (180.0, 0, 1), (180.1, 0, 2)]) == [[], ["spike"], []]
    assert m.anomalies == {}


def test_leak_after_continuous_flow_for_hours() -> None:
    comp, m = setup()
    seq = [(100.0 + 0.05 * h, 0.05, h) for h in range(0, 8)]
    got = feed(comp, m, seq)
    assert got[6] == ["leak"] and sum(got, []) == ["leak"]
    assert "leak" in m.anomalies
    feed(comp, m, [(100.5, 0.0, 9)])
    assert "leak" not in m.anomalies


def test_leak_without_a_flow_register_uses_the_total() -> None:
    comp, m = setup(NOFLOW)
    got = feed(comp, m, [(100.0 + 0.01 * h, None, h) for h in range(0, 9)])
    assert ["leak"] in got


def test_stuck_register_while_flow_is_reported() -> None:
    comp, m = setup()
    got = feed(comp, m, [(100.0, 0.2, 0), (100.0, 0.2, 0.25), (100.0, 0.2, 0.5), (100.0, 0.2, 0.75)])
    assert got == [[], [], ["stuck"], []]
    feed(comp, m, [(100.3, 0.2, 1.0)])
    assert "stuck" not in m.anomalies


def test_old_readings_are_pruned_billing_rows_kept(tmp_path) -> None:
    import asyncio

    from conftest import make_config
    from gateway.daemon import build_context, stop_context

    async def main() -> None:
        comp = MeteringComponent()
        ctx = await build_context(make_config(tmp_path, "[metering]\nkeep_days = 30\n"), components=[comp])
        try:
            def seed(conn):
                for ts in ("2026-01-01T00:00:00.000Z", "2026-11-01T00:00:00.000Z"):
                    conn.execute("INSERT INTO readings(meter, unit, read_at, vals) VALUES('m','u',?,'{}')", (ts,))
                conn.execute("INSERT INTO billing_readings VALUES('m','2025Q4','u','2025-12-26T00:00:00.000Z','{}')")
            await ctx.store.write(seed)
            ctx.clock.set(datetime(2026, 11, 23, tzinfo=timezone.utc))
            assert await comp.prune() == 1
            assert ctx.store.query_one("SELECT COUNT(*) FROM readings")[0] == 1
            assert ctx.store.query_one("SELECT COUNT(*) FROM billing_readings")[0] == 1
        finally:
            await stop_context(ctx)

    asyncio.run(main())
