"""Security by default: token guessing is slowed, the audit trail leaves for central as it is
written, and a revoked card holder's name is erased after the retention period."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import make_config
from drivers.cards import normalize_card_id, wiegand_encode
from gateway.access import AccessComponent, CardIn
from gateway.api.auth import AuthThrottle
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(90)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_lets_typos_through_then_doubles_the_wait() -> None:
    clock = FakeClock()
    t = AuthThrottle(free=3, max_wait_s=8, forget_s=100, clock=clock)
    for _ in range(3):
        t.failed("10.0.0.9")
        assert t.wait_s("10.0.0.9") == 0  # three typos cost nothing
    waits = []
    for _ in range(5):
        t.failed("10.0.0.9")
        waits.append(t.wait_s("10.0.0.9"))
    assert waits == [1, 2, 4, 8, 8]  # capped at max_wait_s
    assert t.wait_s("10.0.0.7") == 0  # another address is not punished
    clock.now += 8.5
    assert t.wait_s("10.0.0.9") == 0
    t.succeeded("10.0.0.9")
    t.failed("10.0.0.9")
    assert t.wait_s("10.0.0.9") == 0  # a right token reset the count
    for _ in range(4):
        t.failed("10.0.0.9")
    clock.now += 101
    assert t.wait_s("10.0.0.9") == 0  # a quiet spell forgets


def test_throttle_keeps_a_bounded_table() -> None:
    t = AuthThrottle(max_clients=100)
    for i in range(1000):
        t.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(t._failures) == 100


def test_wrong_tokens_get_429_and_even_a_right_one_waits(gateway_factory: Any) -> None:
    gw = gateway_factory()
    url = f"{gw.url}/api/v1/events"
    wrong = {"Authorization": "Bearer guess"}
    for _ in range(6):  # five free, the sixth starts a 1 s wait
        assert httpx.get(url, headers=wrong).status_code == 401
    r = httpx.get(url, headers=wrong)
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"
    assert int(r.headers["retry-after"]) >= 1
    assert httpx.get(url, headers=gw.headers("central")).status_code == 429  # no oracle during the wait
    assert httpx.get(url).status_code == 401  # no token: nothing guessed, nothing counted
    time.sleep(1.2)
    assert httpx.get(url, headers=gw.headers("central")).status_code == 200
    assert httpx.get(url, headers=wrong).status_code == 401  # the right token reset the count
    # the console login form is throttled by the same book (one failure already counted above)
    for _ in range(5):
        r = httpx.post(f"{gw.url}/login", data={"token": "guess"}, headers={"origin": gw.url})
        assert r.status_code == 401
    r = httpx.post(f"{gw.url}/login", data={"token": gw.token("operator")}, headers={"origin": gw.url})
    assert r.status_code == 429
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert "auth_failed_total" in metrics and "auth_throttled_total" in metrics
    assert "Bearer guess" not in gw.log.read_text()  # tokens, right or wrong, never reach the log


def test_audit_rows_are_exported_to_central(gateway_factory: Any, mosquitto: Any, mqtt_sub: Any) -> None:
    gw = gateway_factory()
    sub = mqtt_sub(mosquitto.port, "estate/+/+/event/audit.recorded")
    assert gw.post("/api/v1/test-events", json={"count": 2}).status_code == 202
    _, ev = sub.wait_for(lambda t, p: p["data"]["action"] == "POST /api/v1/test-events", 15)
    row = next(a for a in gw.get("/api/v1/audit").json()["items"] if a["id"] == ev["data"]["audit_id"])
    assert (ev["data"]["actor"], ev["data"]["role"], ev["data"]["target"]) == (row["actor"], row["role"], row["target"])
    assert ev["data"]["detail"] == row["detail"] == {"status": 202}


def test_revoked_holder_names_are_erased_after_retention(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        cfg = make_config(tmp_path, '[access]\nholder_retention_days = 0.00001\n')  # under a second
        ctx = await build_context(cfg, components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        try:
            gone, kept = (normalize_card_id(wiegand_encode("H10301", 12, n)) for n in (1001, 1002))
            for card, name in ((gone, "Wang Fang"), (kept, "Li Lei")):
                await access.issue_card(CardIn.model_validate(
                    {"card": card, "unit": "3-1-0201", "holder": name, "holder_kind": "resident", "doors": []}),
                    "tech", "technician")
            await access.revoke_card(gone, "moved out", "tech", "technician")
            await asyncio.sleep(1.0)
            assert await access.forget_revoked_holders() == 1
            holders = {r["card"]: r["holder"] for r in ctx.store.query("SELECT card, holder FROM access_cards")}
            assert holders == {gone: "", kept: "Li Lei"}  # the active card keeps it
            assert await access.forget_revoked_holders() == 0  # idempotent
            actions = [a["action"] for a in ctx.audit.query(0, 100)]
            assert "cards.forget_holders" in actions
            events = ctx.events.query(0, 1000)
            assert not any("Wang Fang" in str(e.data) or "Li Lei" in str(e.data) for e in events)
        finally:
            await stop_context(ctx)

    asyncio.run(main())
    assert "Wang Fang" not in caplog.text and "Li Lei" not in caplog.text


def test_audit_rows_cannot_be_changed_or_deleted(tmp_path: Path) -> None:
    import sqlite3

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path), components=[])
        try:
            await ctx.audit.record("tech", "technician", "card.issue", "26:0a1b2c40", {"holder": "Wang Fang"})
            row = ctx.audit.query(0, 10)[-1]
            assert row["detail"] == {}  # private keys never reach the trail
            for sql in ("UPDATE audit SET actor='x'", "DELETE FROM audit"):
                with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                    await ctx.store.write(lambda c, sql=sql: c.execute(sql))
        finally:
            await stop_context(ctx)

    asyncio.run(main())
