"""Privacy: a revoked card holder's name is erased after the retention period (and never reaches events or logs)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from conftest import make_config

from drivers.cards import normalize_card_id, wiegand_encode
from gateway.access import AccessComponent, CardIn
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(90)


def test_revoked_holder_names_are_erased_after_retention(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        cfg = make_config(tmp_path, '[access]\nholder_retention_days = 0.00001\n')  # under a second
        ctx = await build_context(cfg, components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        try:
            gone, kept = (normalize_card_id(wiegand_encode("H10301", 12, n)) for n in (1001, 1002))
            for card, name in ((gone, "Wang Fang"), (kept, "Li Lei")):
                await access.cards.issue_card(CardIn.model_validate(
                    {"card": card, "unit": "3-1-0201", "holder": name, "holder_kind": "resident", "doors": ["*"]}),
                    "tech", "technician")
            await access.cards.revoke_card(gone, "other", "tech", "technician", note="Wang Fang called: moved away")
            await asyncio.sleep(1.0)
            assert await access.privacy.forget_revoked_holders() == 1
            holders = {r["card"]: (r["holder"], r["revoke_note"])
                       for r in ctx.store.query("SELECT card, holder, revoke_note FROM access_cards")}
            assert holders == {gone: ("", ""), kept: ("Li Lei", "")}  # the active card keeps it; the note goes too
            assert await access.privacy.forget_revoked_holders() == 0  # idempotent
            actions = [a["action"] for a in ctx.audit.query(0, 100)]
            assert "cards.forget_holders" in actions
            events = ctx.events.query(0, 1000)
            assert not any("Wang Fang" in str(e.data) or "Li Lei" in str(e.data) for e in events)
        finally:
            await stop_context(ctx)

    asyncio.run(main())
    assert "Wang Fang" not in caplog.text and "Li Lei" not in caplog.text
