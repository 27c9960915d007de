"""The duty room's card situations at real doors (issue 14): two libosdp readers (the simulator over TCP), in process.

Each test plays one situation where it happens -- at the reader: what the gateway records, and whether
the relay moves (an ``osdp_OUT`` command reaching the simulated reader).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, two_osdp_readers_site, until

from drivers.cards import wiegand_encode
from drivers.sim.osdp_reader import OsdpReaderSim
from gateway.access import AccessComponent, CardIn, EnrolmentIn
from gateway.access.errors import BadSpec, CardConflict
from gateway.access.models import CardPatch
from gateway.daemon import build_context, stop_context
from gateway.errors import NotFound

pytestmark = pytest.mark.timeout(120)

RESIDENT = wiegand_encode("H10301", 21, 1)
LOST = wiegand_encode("H10301", 21, 2)
NEW = wiegand_encode("H10301", 21, 3)
STRANGER = wiegand_encode("H10306", 400, 4)
OUTPUT, LED, BUZZER = 1, 2, 3
GREEN, RED = 2, 1
U1, MAIN = 0, 1   # OSDP addresses: b3-u1 (unit 3-1 entrance), b3-main (building 3 main gate)


class Site:
    def __init__(self, ctx: Any, sim: OsdpReaderSim) -> None:
        self.ctx, self.sim = ctx, sim
        self.access: AccessComponent = ctx.components["access"]

    def events(self, *types: str) -> list[Any]:
        return self.ctx.events.query(0, 10_000, list(types))

    async def swipe(self, card: str, address: int, event: str) -> Any:
        """Present ``card`` at the reader and wait for the first new ``event`` it causes."""
        n = len(self.events(event))
        self.sim.swipe(card, address)
        return (await until(lambda: self.events(event)[n:], 10, event))[0]

    def commands(self, address: int, kind: int) -> list[dict[str, Any]]:
        return [c for c in self.sim.commands(address) if c["command"] == kind]

    async def relay_pulsed(self, address: int, before: int) -> dict[str, Any]:
        await until(lambda: len(self.commands(address, OUTPUT)) > before, 10, "relay command at the reader")
        return self.commands(address, OUTPUT)[before]

    async def no_relay(self, address: int, before: int) -> None:
        await asyncio.sleep(0.4)  # a relay command would have reached the reader by now (polled every ~50 ms)
        assert len(self.commands(address, OUTPUT)) == before, "the relay moved"

    async def issue(self, card: str, **kw: Any) -> dict[str, Any]:
        body = {"card": card, "unit": "3-1-0201", "holder": "Zhao Lei", "holder_kind": "resident",
                "doors": ["building 3"], **kw}
        return await self.access.cards.issue_card(CardIn.model_validate(body), "tech", "technician")

    async def enrol(self, **kw: Any) -> dict[str, Any]:
        body = {"door": "b3-u1", "unit": "3-1-0201", "holder": "Zhao Min", "holder_kind": "family",
                "doors": ["b3-u1", "b3-main"], **kw}
        return await self.access.enrolments.start_enrolment(EnrolmentIn.model_validate(body), "tech", "technician")

    def audit(self, action: str) -> list[dict[str, Any]]:
        return [a for a in self.ctx.audit.query(0, 1000) if a["action"] == action]


def with_site(tmp_path: Path, body: Callable[[Site], Any]) -> None:
    async def main() -> None:
        sim = OsdpReaderSim([U1, MAIN]).start()
        try:
            ctx = await build_context(make_config(tmp_path, two_osdp_readers_site(sim.url)),
                                      components=[AccessComponent()])
            try:
                site = Site(ctx, sim)
                await until(lambda: all(site.access.readers.online.get(r) for r in ("r-b3u1", "r-b3main")), 20,
                            "readers online")
                await body(site)
            finally:
                await stop_context(ctx)
        finally:
            sim.stop()

    asyncio.run(main())


# ---------------------------------------------------------------------- enrolment
def test_enrolment_leaves_residents_alone_and_verifies_by_a_real_decision(tmp_path: Path) -> None:
    async def body(site: Site) -> None:
        await site.issue(RESIDENT)
        await site.issue(LOST)
        await site.access.cards.revoke_card(LOST, "lost", "night", "operator")
        enrol = await site.enrol()

        # a resident with a valid card comes home meanwhile: let in, relay pulsed, the enrolment still waits
        n = len(site.commands(U1, OUTPUT))
        granted = await site.swipe(RESIDENT, U1, "access.granted")
        assert granted.data["card"] == RESIDENT
        await site.relay_pulsed(U1, n)
        assert site.access.enrolments.view(enrol["id"])["state"] == "pending"
        # the lost card is tried there: denied, recorded, no relay, and it does not become the new card
        n = len(site.commands(U1, OUTPUT))
        denied = await site.swipe(LOST, U1, "access.denied")
        assert denied.data["reason"] == "revoked" and denied.data["card"] == LOST
        await site.no_relay(U1, n)
        assert site.access.enrolments.view(enrol["id"])["state"] == "pending"
        assert [e.data["card"] for e in site.events("card.issued")] == [RESIDENT, LOST]  # nothing new issued

        # the new (unknown) card: issued, then decided at this door like any swipe -- granted, relay pulsed
        n, beeps = len(site.commands(U1, OUTPUT)), len(site.commands(U1, BUZZER))
        issued = await site.swipe(NEW, U1, "card.issued")
        assert issued.data["card"] == NEW and issued.data["unit"] == "3-1-0201"
        grant = await until(lambda: [e for e in site.events("access.granted") if e.data["card"] == NEW], 10, "grant")
        assert grant[0].data == {"door": "b3-u1", "card": NEW, "unit": "3-1-0201", "holder_kind": "family"}
        out = await site.relay_pulsed(U1, n)
        assert out["output_no"] == 0
        buzz = await until(lambda: site.commands(U1, BUZZER)[beeps:], 10, "enrolment beeps")
        assert buzz[0]["rep_count"] == 2
        verified = [e.data for e in site.events("card.verified") if e.data["card"] == NEW]
        assert verified == [{"card": NEW, "door": "b3-u1", "ok": True}]
        view = site.access.enrolments.view(enrol["id"])
        assert (view["state"], view["card"]) == ("done", NEW)
        ver = site.access.cards.verification(NEW)
        assert {d["door"]: d["verified"] for d in ver["doors"]} == {"b3-u1": True, "b3-main": False}
        # the next unknown card is not taken: the enrolment is over
        assert (await site.swipe(STRANGER, U1, "access.denied")).data == \
            {"door": "b3-u1", "card": STRANGER, "reason": "unknown"}

    with_site(tmp_path, body)


def test_an_unknown_card_the_enrolment_refuses_is_recorded(tmp_path: Path) -> None:
    async def body(site: Site) -> None:
        ends = site.ctx.clock.now() + timedelta(minutes=3)
        enrol = await site.enrol(valid_until=ends.isoformat())
        # the card was to be valid for 3 minutes; the swipe comes after 4 (the enrolment waits 10): refused
        site.ctx.clock.set(ends + timedelta(minutes=1))
        n = len(site.commands(U1, OUTPUT))
        denied = await site.swipe(STRANGER, U1, "access.denied")
        assert denied.data == {"door": "b3-u1", "card": STRANGER, "reason": "unknown", "enrolment": enrol["id"],
                               "enrolment_error": "already_expired"}
        await site.no_relay(U1, n)
        red = await until(lambda: [c for c in site.commands(U1, LED) if c["on_color"] == RED], 10, "red LED")
        assert red
        view = site.access.enrolments.view(enrol["id"])
        assert view["state"] == "failed" and view["error"].startswith("already_expired")
        assert site.access.cards.card_view(STRANGER) is None

    with_site(tmp_path, body)


def test_a_pending_enrolment_can_be_cancelled(tmp_path: Path) -> None:
    async def body(site: Site) -> None:
        enrol = await site.enrol()
        view = await site.access.enrolments.cancel(enrol["id"], "tech", "technician")
        assert view["state"] == "cancelled"
        assert [a["target"] for a in site.audit("enrolment.cancel")] == ["b3-u1"]
        assert site.audit("enrolment.cancel")[0]["detail"] == {"enrolment": enrol["id"]}
        # the door is back to normal: an unknown card is just unknown
        assert (await site.swipe(STRANGER, U1, "access.denied")).data == \
            {"door": "b3-u1", "card": STRANGER, "reason": "unknown"}
        assert not site.events("card.issued")
        with pytest.raises(CardConflict) as twice:
            await site.access.enrolments.cancel(enrol["id"], "tech", "technician")
        assert twice.value.code == "enrolment_not_pending"
        with pytest.raises(NotFound):
            await site.access.enrolments.cancel("nope", "tech", "technician")
        # and a new one can start at once
        assert (await site.enrol())["state"] == "pending"

    with_site(tmp_path, body)


# ---------------------------------------------------------------------- revocation by the duty room
def test_a_card_revoked_at_night_is_denied_at_every_door_at_once(tmp_path: Path) -> None:
    async def body(site: Site) -> None:
        await site.issue(RESIDENT)
        granted_before = len(site.commands(MAIN, OUTPUT))
        await site.swipe(RESIDENT, MAIN, "access.granted")
        await site.relay_pulsed(MAIN, granted_before)  # the grant's own pulse is in before counting what follows
        card = await site.access.cards.revoke_card(RESIDENT, "lost", "night-desk", "operator",
                                                   note="called at 02:10 from the unit")
        assert (card["status"], card["revoke_reason"]) == ("revoked", "lost")
        before = {a: len(site.commands(a, OUTPUT)) for a in (U1, MAIN)}
        for address, door in ((U1, "b3-u1"), (MAIN, "b3-main")):
            denied = await site.swipe(RESIDENT, address, "access.denied")
            assert denied.data["door"] == door and denied.data["reason"] == "revoked"
        for address in (U1, MAIN):
            await site.no_relay(address, before[address])
        audit = site.audit("card.revoke")
        assert [(a["actor"], a["role"], a["detail"]) for a in audit] == \
            [("night-desk", "operator", {"reason": "lost", "note_given": True})]
        revoked = [e.data for e in site.events("card.revoked")]
        assert revoked == [{"card": RESIDENT, "reason": "lost"}]
        assert "02:10" not in str([e.data for e in site.events()])  # the note stays in the register

    with_site(tmp_path, body)


# ---------------------------------------------------------------------- scope changed in place
def test_scope_is_changed_in_place_and_takes_effect_at_the_door(tmp_path: Path) -> None:
    async def body(site: Site) -> None:
        await site.issue(RESIDENT, doors=["b3-u1"])
        assert (await site.swipe(RESIDENT, MAIN, "access.denied")).data["reason"] == "not_permitted"
        card = await site.access.cards.update_card(RESIDENT, CardPatch(doors=["b3-u1", "b3-main"]), "tech",
                                                   "technician")
        assert card["doors"] == ["b3-u1", "b3-main"] and card["status"] == "active"
        updated = site.events("card.updated")[-1].data
        assert updated["card"] == RESIDENT and updated["doors"] == ["b3-u1", "b3-main"]
        audit = site.audit("card.update")[-1]
        assert audit["detail"] == {"changed": ["doors"], "doors_before": ["b3-u1"], "doors": ["b3-u1", "b3-main"]}
        n = len(site.commands(MAIN, OUTPUT))
        await site.swipe(RESIDENT, MAIN, "access.granted")
        await site.relay_pulsed(MAIN, n)
        with pytest.raises(BadSpec) as empty:
            await site.access.cards.update_card(RESIDENT, CardPatch(doors=[]), "tech", "technician")
        assert empty.value.code == "empty_scope"
        await site.access.cards.revoke_card(RESIDENT, "moved_out", "tech", "technician")
        with pytest.raises(CardConflict) as revoked:
            await site.access.cards.update_card(RESIDENT, CardPatch(doors=["*"]), "tech", "technician")
        assert revoked.value.code == "card_revoked"

    with_site(tmp_path, body)
