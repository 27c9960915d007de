"""Door access with a real libosdp reader (the simulator over TCP), in process: no broker, no HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, until

from drivers.cards import wiegand_encode
from drivers.sim.osdp_reader import OsdpReaderSim
from gateway.access import AccessComponent, CardIn, EnrolmentIn
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(120)

CARD_A = wiegand_encode("H10301", 12, 3456)
CARD_B = wiegand_encode("H10301", 12, 3457)
OUTPUT, LED, BUZZER = 1, 2, 3


def site_toml(sim: OsdpReaderSim, held_open_s: float = 60, extra: str = "") -> str:
    return f"""
[[readers]]
id = "r-b3u1"
driver = "osdp"
port = "{sim.url}"
address = 0

[[doors]]
id = "b3-u1"
name = "Building 3 unit 1 entrance"
building = "3"
unit = "3-1"
reader = "r-b3u1"
unlock_s = 3
held_open_s = {held_open_s}
{extra}
"""


def events_of(ctx: Any, *types: str) -> list[Any]:
    return ctx.events.query(0, 1000, list(types))


class Site:
    def __init__(self, ctx: Any, sim: OsdpReaderSim) -> None:
        self.ctx, self.sim = ctx, sim
        self.access: AccessComponent = ctx.components["access"]

    async def online(self) -> None:
        await until(lambda: self.access.readers.online.get("r-b3u1") is True, 20, "reader online")

    async def swipe(self, card: str, event: str) -> Any:
        n = len(events_of(self.ctx, event))
        self.sim.swipe(card)
        return (await until(lambda: events_of(self.ctx, event)[n:], 10, event))[0]


def with_site(tmp_path: Path, body: Callable[[Site], Any], *, held_open_s: float = 1.0) -> None:
    """Run ``body(site)`` against a started access component and a simulated reader."""

    async def main() -> None:
        sim = OsdpReaderSim([0]).start()
        try:
            cfg = make_config(tmp_path, site_toml(sim, held_open_s=held_open_s))
            ctx = await build_context(cfg, components=[AccessComponent()])
            try:
                s = Site(ctx, sim)
                await s.online()
                await body(s)
            finally:
                await stop_context(ctx)
        finally:
            sim.stop()

    asyncio.run(main())


async def issue(site: Site, card: str, **kw: Any) -> dict[str, Any]:
    body = {"card": card, "unit": "3-1-0201", "holder": "Wang Fang", "holder_kind": "resident", "doors": ["b3-u1"], **kw}
    return await site.access.cards.issue_card(CardIn.model_validate(body), "tech", "technician")


def test_grant_drives_relay_led_and_buzzer(tmp_path: Path) -> None:
    async def body(site: Site) -> None:
        await issue(site, CARD_A)
        ev = await site.swipe(CARD_A, "access.granted")
        assert ev.data == {"door": "b3-u1", "card": CARD_A, "unit": "3-1-0201", "holder_kind": "resident"}
        out = await asyncio.to_thread(site.sim.wait_command, lambda c: c["command"] == OUTPUT, 10)
        assert out["output_no"] == 0 and out["timer_count"] == 30
        led = await asyncio.to_thread(site.sim.wait_command, lambda c: c["command"] == LED, 10)
        assert led["on_color"] == 2  # green
        await asyncio.to_thread(site.sim.wait_command, lambda c: c["command"] == BUZZER, 10)
        assert "Wang" not in str([e.data for e in site.ctx.events.query(0, 1000)])

    with_site(tmp_path, body)


def test_denials_unknown_revoked_expired_out_of_hours(tmp_path: Path) -> None:
    async def body(site: Site) -> None:
        ev = await site.swipe(CARD_B, "access.denied")
        assert ev.data["reason"] == "unknown"
        led = await asyncio.to_thread(site.sim.wait_command, lambda c: c["command"] == LED, 10)
        assert led["on_color"] == 1  # red
        await issue(site, CARD_A)
        await site.access.cards.revoke_card(CARD_A, "lost", "tech", "technician")
        assert (await site.swipe(CARD_A, "access.denied")).data["reason"] == "revoked"
        card_c = wiegand_encode("H10301", 12, 1)
        until_ = site.ctx.clock.now() + timedelta(hours=1)
        await issue(site, card_c, valid_until=until_.isoformat())
        site.ctx.clock.set(until_ + timedelta(minutes=1))
        assert (await site.swipe(card_c, "access.denied")).data["reason"] == "expired"
        card_d = wiegand_encode("H10301", 12, 2)
        await issue(site, card_d, unit="3-1-0302", holder_kind="worker", doors=[])
        site.ctx.clock.set(datetime(2026, 11, 22, 23, 0, tzinfo=UTC))  # 07:00 Monday site time
        assert (await site.swipe(card_d, "access.denied")).data["reason"] == "outside_schedule"
        await asyncio.sleep(0.3)  # a relay command would have reached the reader by now (poll period ~50 ms)
        assert not [c for c in site.sim.commands() if c["command"] == OUTPUT], "a denial moved the relay"
        site.ctx.clock.set(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # 10:00 Monday
        assert (await site.swipe(card_d, "access.granted")).data["holder_kind"] == "worker"
        await asyncio.to_thread(site.sim.wait_command, lambda c: c["command"] == OUTPUT, 10)  # and a grant does

    with_site(tmp_path, body)


def test_enrol_by_swipe_then_verify(tmp_path: Path) -> None:
    async def body(site: Site) -> None:
        body = EnrolmentIn.model_validate({"door": "b3-u1", "unit": "3-1-0201", "holder": "Li Lei",
                                           "holder_kind": "family", "doors": ["building 3"]})
        enrol = await site.access.enrolments.start_enrolment(body, "tech", "technician")
        assert enrol["state"] == "pending"
        issued = await site.swipe(CARD_B, "card.issued")
        assert issued.data["card"] == CARD_B and issued.data["unit"] == "3-1-0201"
        assert site.access.enrolments.view(enrol["id"])["state"] == "done"
        # the issuing swipe's own decision (which verifies the door) commits after card.issued: wait for it
        ver = await until(lambda: (v := site.access.cards.verification(CARD_B)) and v["complete"] and v, 10, "verified")
        assert ver["doors"][0]["verified"]
        assert (await site.swipe(CARD_B, "access.granted")).data["card"] == CARD_B

    with_site(tmp_path, body)


def test_fourth_card_in_unit_is_charged(tmp_path: Path) -> None:
    async def body(site: Site) -> None:
        for n in range(3):
            await issue(site, wiegand_encode("H10301", 20, n))
        assert not events_of(site.ctx, "card.fee_due")
        await issue(site, wiegand_encode("H10301", 20, 3))
        fee = events_of(site.ctx, "card.fee_due")
        assert [e.data["cards_in_unit"] for e in fee] == [4]

    with_site(tmp_path, body)


def test_forced_and_held_open(tmp_path: Path) -> None:
    async def body(site: Site) -> None:
        n = len(events_of(site.ctx, "door.forced"))
        site.sim.door(True)
        await until(lambda: events_of(site.ctx, "door.forced")[n:], 10, "door.forced")
        await until(lambda: events_of(site.ctx, "door.held_open"), 10, "door.held_open")
        assert {d["id"]: d["state"] for d in site.access.door_states()}["b3-u1"] in ("forced", "held_open")
        assert site.access.handover_items()["doors"]
        site.sim.door(False)
        await until(lambda: events_of(site.ctx, "door.closed"), 10, "door.closed")
        # a granted opening is not forced
        await issue(site, CARD_A)
        await site.swipe(CARD_A, "access.granted")
        site.sim.door(True)
        await until(lambda: len(events_of(site.ctx, "door.opened")) >= 2, 10, "second door.opened")
        assert len(events_of(site.ctx, "door.forced")) == n + 1
        site.sim.door(False)

    with_site(tmp_path, body)


def test_unplugged_reader_goes_offline_and_back(tmp_path: Path) -> None:
    async def body(site: Site) -> None:
        await issue(site, CARD_A)
        site.sim.unplug()
        await until(lambda: events_of(site.ctx, "device.offline"), 20, "device.offline")
        assert {d["id"]: d["state"] for d in site.access.door_states()}["b3-u1"] == "offline"
        site.sim.plug()
        await until(lambda: events_of(site.ctx, "device.online"), 30, "device.online")
        assert (await site.swipe(CARD_A, "access.granted")).data["card"] == CARD_A

    with_site(tmp_path, body)


def test_hold_unlocked_and_release(tmp_path: Path) -> None:
    async def body(site: Site) -> None:
        await site.access.hold_unlocked(["b3-u1"], "fire", "alarm-1")
        await site.access.hold_unlocked(["b3-u1"], "fire", "alarm-2")
        assert [e.data for e in events_of(site.ctx, "door.unlocked")] == [{"door": "b3-u1", "reason": "fire"}]
        on = await asyncio.to_thread(site.sim.wait_command, lambda c: c["command"] == OUTPUT and c["control_code"] == 2, 10)
        assert on["output_no"] == 0
        assert site.access.door_states()[0]["state"] == "unlocked"
        await site.access.release_hold("alarm-1")
        assert not events_of(site.ctx, "door.relocked")
        await site.access.release_hold("alarm-2")
        assert [e.data for e in events_of(site.ctx, "door.relocked")] == [{"door": "b3-u1"}]
        await asyncio.to_thread(site.sim.wait_command, lambda c: c["command"] == OUTPUT and c["control_code"] == 1, 10)

    with_site(tmp_path, body)
