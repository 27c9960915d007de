"""Fees and central's per-card results (issues 14 and 15), in process through the MQTT command handlers.

The fee rule (docs/access.md "Fees"): only usable household cards count; one free card per registered
occupant, at most ``free_cards_per_unit`` (3); a lost card's replacement is charged once, as a replacement.
Central's upserts never rewrite a card revoked here, and say so per card.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config

from drivers.cards import wiegand_encode
from gateway.access import AccessComponent, CardIn, EnrolmentIn
from gateway.access.errors import BadSpec, CardConflict
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(90)

SITE = """
[[readers]]
id = "r1"
driver = "serial-ascii"
port = "loop://"

[[doors]]
id = "d1"
building = "3"
unit = "3-1"
reader = "r1"
"""
UNIT = "3-1-0201"


def card(n: int) -> str:
    return wiegand_encode("H10301", 33, n)


def run(tmp_path: Path, body: Callable[[Any, AccessComponent], Awaitable[None]]) -> None:
    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, SITE), components=[AccessComponent()])
        try:
            await body(ctx, ctx.components["access"])
        finally:
            await stop_context(ctx)

    asyncio.run(main())


async def command(ctx: Any, name: str, cid: str, args: dict[str, Any]) -> dict[str, Any]:
    """Through the command router, as a message from central would go (validation, ok/error, stored by id)."""
    result: dict[str, Any] = await ctx.commands.handle(name, json.dumps({"id": cid, "args": args}))
    return result


async def issue(access: AccessComponent, n: int, **kw: Any) -> dict[str, Any]:
    body = {"card": card(n), "unit": UNIT, "holder": "Sun Li", "holder_kind": "resident", "doors": ["d1"], **kw}
    return await access.cards.issue_card(CardIn.model_validate(body), "tech", "technician")


def fees(ctx: Any) -> list[dict[str, Any]]:
    return [e.data for e in ctx.events.query(0, 1000, ["card.fee_due"])]


def test_free_cards_follow_the_registered_occupants(tmp_path: Path) -> None:
    async def body(ctx: Any, access: AccessComponent) -> None:
        r = await command(ctx, "units.apply", "u1", {"units": [{"unit": UNIT, "occupants": 2}]})
        assert r["ok"] and r["result"] == {"units": 1}
        await issue(access, 1)
        await issue(access, 2)
        await issue(access, 3, holder_kind="worker", doors=[])  # not a household card: never counted
        assert fees(ctx) == []
        await issue(access, 4, holder_kind="family")
        assert fees(ctx) == [{"unit": UNIT, "card": card(4), "cards_in_unit": 3, "free_cards": 2, "occupants": 2,
                              "why": "beyond_free"}]
        # a unit central never described gets the usual three
        for n in range(10, 13):
            await issue(access, n, unit="3-1-0301")
        assert len(fees(ctx)) == 1
        await issue(access, 13, unit="3-1-0301")
        assert fees(ctx)[-1] == {"unit": "3-1-0301", "card": card(13), "cards_in_unit": 4, "free_cards": 3,
                                 "occupants": None, "why": "beyond_free"}
        # occupants can also come with a delta; more than three occupants still get three
        r = await command(ctx, "cards.apply", "a1", {"base_rev": 0, "rev": 1, "changes": [],
                                                    "units": [{"unit": "3-1-0401", "occupants": 6}]})
        assert r["ok"] and r["result"] == {"applied_rev": 1, "results": []}
        for n in range(20, 24):
            await issue(access, n, unit="3-1-0401")
        assert fees(ctx)[-1]["card"] == card(23) and fees(ctx)[-1]["free_cards"] == 3
        bad = await command(ctx, "units.apply", "u2", {"units": [{"unit": UNIT, "occupants": -1}]})
        assert not bad["ok"] and bad["error"]["code"] == "bad_args"

    run(tmp_path, body)


def test_expired_and_revoked_cards_do_not_count(tmp_path: Path) -> None:
    async def body(ctx: Any, access: AccessComponent) -> None:
        soon = ctx.clock.now() + timedelta(hours=1)
        await issue(access, 1, valid_until=soon.isoformat())  # a guest's card, for a day
        await issue(access, 2)
        await issue(access, 3)
        await access.cards.revoke_card(card(3), "moved_out", "tech", "technician")
        ctx.clock.set(soon + timedelta(minutes=1))  # the guest's card has expired
        await issue(access, 4)
        await issue(access, 5)
        assert fees(ctx) == []  # usable: 2, 4, 5
        await issue(access, 6)
        assert [(f["card"], f["cards_in_unit"]) for f in fees(ctx)] == [(card(6), 4)]

    run(tmp_path, body)


def test_a_lost_cards_replacement_is_flagged_and_charged_once(tmp_path: Path) -> None:
    async def body(ctx: Any, access: AccessComponent) -> None:
        for n in (1, 2, 3):
            await issue(access, n)
        with pytest.raises(CardConflict) as active:
            await issue(access, 4, replaces=card(1))
        assert active.value.code == "replaces_not_revoked"
        await access.cards.revoke_card(card(1), "lost", "night", "operator")
        new = await issue(access, 4, replaces=card(1))
        assert new["replaces"] == card(1)
        issued = ctx.events.query(0, 1000, ["card.issued"])[-1].data
        assert issued["replaces"] == card(1)
        # charged as a replacement (the household lost a card), not as a fourth card
        assert fees(ctx) == [{"unit": UNIT, "card": card(4), "cards_in_unit": 3, "free_cards": 3, "occupants": None,
                              "why": "replacement_lost", "replaces": card(1)}]
        with pytest.raises(CardConflict) as twice:
            await issue(access, 5, replaces=card(1))
        assert twice.value.code == "replaces_already_replaced"
        with pytest.raises(CardConflict) as other:
            await issue(access, 5, unit="3-1-0202", replaces=card(2))
        assert other.value.code == "replaces_other_unit"
        with pytest.raises(BadSpec) as unknown:
            await issue(access, 5, replaces=card(99))
        assert unknown.value.code == "replaces_unknown"
        # a damaged card's replacement takes its place for free
        await access.cards.revoke_card(card(2), "damaged", "tech", "technician")
        await issue(access, 6, replaces=card(2))
        assert len(fees(ctx)) == 1
        # an enrolment can be a replacement too: checked when it starts, not only at the door
        with pytest.raises(CardConflict):
            await access.enrolments.start_enrolment(EnrolmentIn.model_validate(
                {"door": "d1", "unit": UNIT, "holder_kind": "resident", "doors": ["d1"], "replaces": card(3)}),
                "tech", "technician")

    run(tmp_path, body)


def test_central_upsert_over_a_card_revoked_here_answers_kept_revoked(tmp_path: Path) -> None:
    async def body(ctx: Any, access: AccessComponent) -> None:
        await issue(access, 1)
        await access.cards.revoke_card(card(1), "stolen", "night", "operator")
        upsert = {"op": "upsert", "card": {"card": card(1), "unit": UNIT, "holder": "", "holder_kind": "tenant",
                                           "doors": ["other-gateway-door"]}}
        fresh = {"op": "upsert", "card": {"card": card(2), "unit": UNIT, "holder_kind": "resident", "doors": ["d1"]}}
        empty = {"op": "upsert", "card": {"card": card(3), "unit": UNIT, "holder_kind": "resident", "doors": []}}
        gone = {"op": "revoke", "card": card(9), "reason": "lost"}
        r = await command(ctx, "cards.apply", "a1", {"base_rev": 0, "rev": 1,
                                                    "changes": [upsert, fresh, empty, gone]})
        assert r["ok"], r
        results = r["result"]["results"]
        assert [(x["card"], x["op"], x["result"]) for x in results] == [
            (card(1), "upsert", "kept_revoked"), (card(2), "upsert", "applied"), (card(3), "upsert", "refused"),
            (card(9), "revoke", "not_found")]
        assert results[0]["reason"] == "stolen" and results[2]["reason"] == "empty_scope"
        kept = access.cards.card_view(card(1))
        assert (kept["status"], kept["holder"], kept["holder_kind"], kept["doors"]) == \
            ("revoked", "Sun Li", "resident", ["d1"])  # exactly as the duty room left it
        assert access.cards.card_view(card(3)) is None and access.cards.rev() == 1
        # scope changed in place by central: applied and audited per card
        moved = {"op": "upsert", "card": {**fresh["card"], "doors": ["d1", "building:3"]}}
        r = await command(ctx, "cards.apply", "a2", {"base_rev": 1, "rev": 2, "changes": [moved]})
        assert r["result"]["results"] == [{"card": card(2), "op": "upsert", "result": "applied"}]
        audit = [a for a in ctx.audit.query(0, 100) if a["action"] == "card.update"]
        assert audit[-1]["target"] == card(2) and audit[-1]["detail"] == \
            {"doors_before": ["d1"], "doors": ["d1", "building:3"]}
        # a snapshot the same way: the revoked card stays as it is, and the answer says so
        snap = [upsert["card"], fresh["card"], {**empty["card"], "card": card(4)}]
        r = await command(ctx, "cards.snapshot", "s1", {"rev": 5, "cards": snap,
                                                       "units": [{"unit": UNIT, "occupants": 1}]})
        assert r["ok"], r
        assert r["result"]["count"] == 2 and sorted((x["card"], x["result"], x["reason"])
                                                    for x in r["result"]["results"]) == \
            sorted([(card(1), "kept_revoked", "stolen"), (card(4), "refused", "empty_scope")])
        kept = access.cards.card_view(card(1))
        assert (kept["status"], kept["holder"], kept["doors"]) == ("revoked", "Sun Li", ["d1"])
        assert access.cards.card_view(card(4)) is None
        await issue(access, 5)  # one occupant now: the second usable card costs
        assert fees(ctx)[-1]["why"] == "beyond_free" and fees(ctx)[-1]["free_cards"] == 1

    run(tmp_path, body)
