"""Permission sync in process: a 100,000-card snapshot replaces the register atomically while swipes go on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import DOOR_SITE, make_config
from pydantic import ValidationError

from drivers.cards import wiegand_encode
from gateway.access import AccessComponent, ApplyArgs, CardIn, SnapshotArgs
from gateway.commands import CommandError
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(150)

N = 100_000


def cards(facility: int, n: int = N) -> list[CardIn]:
    return [CardIn.model_construct(card=wiegand_encode("H10304", facility, i), unit=f"3-{i % 9 + 1}-{i % 1000:04d}",
                                   holder="", holder_kind="resident", doors=["building:3"], valid_from=None,
                                   valid_until=None, schedule=None, status="active") for i in range(n)]


def test_snapshot_of_100k_is_atomic_while_swipes_go_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.access import sync

    # the swipes below keep the doors busy, so the snapshot would stage 5 cards a write: 20,000 writes, 74 s of
    # the suite. What is tested here is the one switch; the slice sizes are the next test's.
    monkeypatch.setattr(sync, "BUSY_CHUNK", sync.SNAPSHOT_CHUNK)

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, DOOR_SITE), components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        try:
            old, new = cards(1), cards(2)
            await access.sync.apply_snapshot(1, old)
            assert ctx.store.query_one("SELECT COUNT(*) FROM access_cards")[0] == N
            probes = [(False, old[0].card), (False, old[-1].card), (True, new[0].card), (True, new[-1].card)]
            # each decision as "which register did it see": old (False) or new (True)
            views: list[bool] = []
            counts: set[int] = set()
            apply = asyncio.create_task(access.sync.apply_snapshot(2, new))
            while not apply.done():
                for is_new, card in probes:
                    granted = await access.card_read("r1", card) is None
                    views.append(granted == is_new)
                counts.add(ctx.store.query_one("SELECT COUNT(*) FROM access_cards WHERE facility=2")[0])
                await asyncio.sleep(0.005)
            assert (await apply)["count"] == N
            # one switch from the whole old register to the whole new one, never a mix
            assert views == sorted(views), views
            assert counts <= {0, N}
            assert len(views) >= 8, "swipes were decided while the snapshot was applied"
            assert [await access.card_read("r1", c) is None for _n, c in probes] == [False, False, True, True]
            assert ctx.store.query_one("SELECT COUNT(*) FROM access_cards")[0] == N
        finally:
            await stop_context(ctx)

    asyncio.run(main())


def test_snapshot_stages_in_small_writes_while_the_doors_decide(tmp_path: Path) -> None:
    """A decision waits at most for the staging write already running: after a swipe (the doors busy for
    DOORS_BUSY_S) a snapshot stages BUSY_CHUNK cards a write, otherwise SNAPSHOT_CHUNK."""
    from gateway.access import sync

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, DOOR_SITE), components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        sizes: list[int] = []
        stage = sync.register.stage_rows

        def counted(conn: Any, rows: list[Any]) -> Any:
            sizes.append(len(rows))
            return stage(conn, rows=rows)

        try:
            sync.register.stage_rows = counted  # type: ignore[assignment]
            await access.sync.apply_snapshot(1, cards(1, 1000))
            assert not access.swipes.busy() and sizes == [sync.SNAPSHOT_CHUNK] * 4
            sizes.clear()
            await access.card_read("r1", wiegand_encode("H10304", 9, 9))  # a swipe: the doors are busy now
            assert access.swipes.busy()
            await access.sync.apply_snapshot(2, cards(2, 1000))
            assert sizes == [sync.BUSY_CHUNK] * (1000 // sync.BUSY_CHUNK)
        finally:
            sync.register.stage_rows = stage  # type: ignore[assignment]
            await stop_context(ctx)

    asyncio.run(main())


def test_apply_rules_in_process(tmp_path: Path) -> None:
    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, DOOR_SITE), components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        card = wiegand_encode("H10301", 1, 1)
        up: dict[str, Any] = {"op": "upsert", "card": {"card": card, "unit": "3-1-0101", "holder_kind": "worker",
                                                         "doors": ["d1"]}}
        try:
            assert (await access.sync.apply(ApplyArgs.model_validate(
                {"base_rev": 0, "rev": 1, "changes": [up]})))["applied_rev"] == 1
            row = access.cards.card_view(card)
            assert row is not None and row["schedule"], "a worker's card gets working hours by default"
            # the same delta again (a new command id) is a no-op, a stale base is a gap
            again = await access.sync.apply(ApplyArgs.model_validate({"base_rev": 0, "rev": 1, "changes": [up]}))
            assert again == {"applied_rev": 1, "already": True}
            with pytest.raises(CommandError) as gap:
                await access.sync.apply(ApplyArgs.model_validate({"base_rev": 0, "rev": 2, "changes": []}))
            assert gap.value.code == "rev_gap" and gap.value.details["have_rev"] == 1
            with pytest.raises(CommandError) as bad:
                await access.sync.snapshot(SnapshotArgs.model_validate(
                    {"rev": 5, "cards": [{"card": "26:zz", "unit": "x", "holder_kind": "resident"}]}))
            assert bad.value.code == "bad_card"
            assert access.cards.rev() == 1  # nothing applied
            # a delta must move forward; an old snapshot arriving late must not roll the register back
            with pytest.raises(ValidationError, match="must be after base_rev"):
                ApplyArgs.model_validate({"base_rev": 1, "rev": 1, "changes": []})
            assert (await access.sync.snapshot(SnapshotArgs.model_validate({"rev": 3, "cards": []})))["applied_rev"] == 3
            with pytest.raises(CommandError) as stale:
                await access.sync.snapshot(SnapshotArgs.model_validate({"rev": 2, "cards": []}))
            assert stale.value.code == "stale_rev" and stale.value.details["have_rev"] == 3
            assert access.cards.rev() == 3
        finally:
            await stop_context(ctx)

    asyncio.run(main())


def test_anti_passback_per_door_pair(tmp_path: Path) -> None:
    toml = """
[[readers]]
id = "r-in"
driver = "serial-ascii"
port = "loop://"

[[readers]]
id = "r-out"
driver = "serial-ascii"
port = "loop://"

[[doors]]
id = "gate-in"
building = "3"
reader = "r-in"

[[doors]]
id = "gate-out"
building = "3"
reader = "r-out"

[access]
[[access.anti_passback]]
entry = "gate-in"
exit = "gate-out"
"""

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, toml), components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        card = wiegand_encode("H10301", 3, 3)
        try:
            await access.cards.issue_card(CardIn.model_validate({"card": card, "unit": "3-1-0101",
                                                           "holder_kind": "resident", "doors": ["building 3"]}),
                                    "t", "technician")
            assert await access.card_read("r-in", card) is None
            assert await access.card_read("r-in", card) == "anti_passback"  # passed the card back
            assert await access.card_read("r-out", card) is None
            assert await access.card_read("r-in", card) is None
        finally:
            await stop_context(ctx)
        # a restart (power cut, upgrade) does not forget who is inside
        ctx = await build_context(make_config(tmp_path, toml), components=[AccessComponent()])
        access = ctx.components["access"]
        try:
            assert await access.card_read("r-in", card) == "anti_passback"
            assert await access.card_read("r-out", card) is None
        finally:
            await stop_context(ctx)

    asyncio.run(main())


def test_snapshot_validation_steps_aside_while_a_decision_is_in_flight() -> None:
    """The loop validating a snapshot's cards holds the GIL; a door decision in flight (read -> committed ->
    relay) goes first: each validation slice waits while one is being decided -- for a bounded time, so a
    stream of swipes cannot stop a snapshot."""
    from gateway.access.sync import Sync

    calls: list[bool] = []
    answers = iter([True, True, True, False])

    def deciding() -> bool:
        calls.append(True)
        return next(answers, False)

    asyncio.run(Sync(None, deciding=deciding)._step_aside())  # type: ignore[arg-type]
    assert len(calls) == 4          # asked until the decision was done
    asyncio.run(Sync(None, deciding=lambda: True)._step_aside())  # type: ignore[arg-type]  # bounded: returns


def test_a_card_read_counts_as_in_flight_until_it_is_answered(tmp_path: Path) -> None:
    """Swipes.deciding() is what the snapshot's validation asks: true from the read until the relay command."""
    async def main() -> None:
        cfg = make_config(tmp_path, DOOR_SITE)
        access = AccessComponent()
        ctx = await build_context(cfg, components=[access])
        try:
            seen: list[bool] = []
            real = ctx.events.transact

            async def transact(fn: Any) -> Any:
                seen.append(access.swipes.deciding())
                return await real(fn)

            ctx.events.transact = transact  # type: ignore[method-assign]
            assert not access.swipes.deciding()
            reader = cfg.readers[0].id
            await access.card_read(reader, "W26:1:1")
            assert seen and all(seen)
            assert not access.swipes.deciding()
        finally:
            await stop_context(ctx)

    asyncio.run(main())
