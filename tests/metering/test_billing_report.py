"""The quarter's billing report central pulls (GET /billing?quarter=): every meter's quarter-end reading or why it
has none, played through a quarter with a controlled clock against pymodbus meters (real component and store)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from conftest import until as wait_for
from metering.meter_site import GENERIC, Harness, run

from drivers.sim.meters import MeterSimulator
from gateway.metering import register

SHANGHAI = ZoneInfo("Asia/Shanghai")
BROKEN = '[fields.total_m3]\naddress = 1\ntype = "bogus"\n'


def reasons(report: dict) -> dict[str, str | None]:
    return {i["meter"]: i["reason"] if i["status"] == "missing" else "read" for i in report["items"]}


def test_every_meter_has_its_reading_or_the_reason_through_a_quarter(tmp_path: Path) -> None:
    (tmp_path / "meters").mkdir()
    (tmp_path / "meters" / "broken.toml").write_text(BROKEN)
    meters = [("hw-1", 1, "generic-hot-water"), ("hw-2", 2, "generic-hot-water"), ("hw-3", 3, "broken"),
              ("hw-4", 4, "generic-hot-water"), ("hw-5", 5, "generic-hot-water")]

    async def main() -> None:
        sim = MeterSimulator(framing="tcp")
        for dev in (1, 2, 5):
            sim.add(dev, GENERIC, total_m3=100.0 + dev)
        sim.add(4, GENERIC, fault="silent")   # never answers
        async with Harness(tmp_path, sim, meters, poll_s=0.2, extra='profile_dirs = ["meters"]') as h:
            h.ctx.clock.set(datetime(2026, 12, 20, 10, 0, tzinfo=SHANGHAI))
            await h.start()
            await wait_for(lambda: {e["meter"] for e in h.of("meter.reading")} >= {"hw-1", "hw-2", "hw-5"}, 10,
                           "first readings")
            report = h.comp.billing_report("2026Q4")
            assert report["window"] == {"from": "2026-12-24T16:00:00.000Z", "to": "2026-12-30T16:00:00.000Z"}
            assert reasons(report) == {"hw-1": "window_not_started", "hw-2": "window_not_started",
                                       "hw-3": "profile_error", "hw-4": "window_not_started",
                                       "hw-5": "window_not_started"}

            # hw-2 read before, silent from now on; hw-5 silent through the window
            sim.meters[2].fault = sim.meters[5].fault = "silent"
            await wait_for(lambda: h.comp.meters["hw-2"].online is False and h.comp.meters["hw-5"].online is False,
                           10, "offline")
            h.ctx.clock.set(datetime(2026, 12, 26, 10, 0, tzinfo=SHANGHAI))
            await h.comp.billing.check()
            await wait_for(lambda: h.of("meter.billing_reading"), 10, "billing reading")
            await h.comp.flush()
            report = h.comp.billing_report("2026Q4")
            assert reasons(report) == {"hw-1": "read", "hw-2": "window_open", "hw-3": "profile_error",
                                       "hw-4": "window_open", "hw-5": "window_open"}

            # after the window: hw-5 answers again (no reading in the window), an old meter's row stands
            h.ctx.clock.set(datetime(2027, 1, 2, 9, 0, tzinfo=SHANGHAI))
            sim.meters[5].fault = None
            await wait_for(lambda: h.comp.meters["hw-5"].online is True, 10, "hw-5 back")
            await h.ctx.store.write(lambda c: register.insert_billing_reading(
                c, "hw-old", "2026Q4", "3-1-0999", "2026-12-25T01:00:00.000Z", '{"total_m3":7.123456789}'))
            report = h.comp.billing_report("2026Q4")
            assert reasons(report) == {"hw-1": "read", "hw-2": "offline", "hw-3": "profile_error",
                                       "hw-4": "never_read", "hw-5": "no_reading_in_window", "hw-old": "read"}
            assert (report["read"], report["missing"]) == (2, 4)
            items = {i["meter"]: i for i in report["items"]}
            assert items["hw-1"]["values"]["total_m3"] == round(items["hw-1"]["values"]["total_m3"], 3) >= 101
            assert items["hw-1"]["read_at"].startswith("2026-12-26T02:00")
            assert items["hw-old"]["values"] == {"total_m3": 7.123456789} and items["hw-old"]["unit"] == "3-1-0999"
            assert items["hw-2"]["last_read_at"] is not None and items["hw-4"]["last_read_at"] is None
            assert reasons(h.comp.billing_report("2026Q3"))["hw-1"] == "no_reading_in_window"

    run(main())
