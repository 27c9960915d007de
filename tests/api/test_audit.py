"""The audit trail leaves for central as it is written, and its rows cannot be changed or deleted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config

from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(90)


def test_audit_rows_are_exported_to_central(gateway_factory: Any, mosquitto: Any, mqtt_sub: Any) -> None:
    gw = gateway_factory()
    sub = mqtt_sub(mosquitto.port, "estate/+/+/event/audit.recorded")
    assert gw.post("/api/v1/test-events", json={"count": 2}).status_code == 202
    _, ev = sub.wait_for(lambda t, p: p["data"]["action"] == "POST /api/v1/test-events", 15)
    row = next(a for a in gw.get("/api/v1/audit").json()["items"] if a["id"] == ev["data"]["audit_id"])
    assert (ev["data"]["actor"], ev["data"]["role"], ev["data"]["target"]) == (row["actor"], row["role"], row["target"])
    assert ev["data"]["detail"] == row["detail"] == {"status": 202}


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


def test_a_session_touch_does_not_carry_the_requests_audit_row(tmp_path: Path) -> None:
    """A console session's ``last_seen`` is stored by a task the request starts; that task must not
    commit the request's pending audit row. A body-less POST that answers 422 did nothing: exactly one
    audit row, saying 422 (it once left two, ``{"status": 202}`` and ``{"status": 422}``)."""
    import httpx

    from conftest import token_for, tokens_toml
    from gateway.api.app import create_app
    from gateway.api.auth import csrf_for

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, tokens_toml()), components=[])
        app = create_app(ctx)
        book = app.state.tokens.sessions
        try:
            sid = await book.open(token_for("admin"))
            for session in book._live.values():
                session.persisted = 0.0  # the next request stores last_seen (in a task of its own)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw",
                                         cookies={"egw_session": sid}) as client:
                r = await client.post("/api/v1/test-events", headers={"X-CSRF-Token": csrf_for(sid)})
            assert r.status_code == 422, r.text
            for _ in range(200):  # the session's own write ends (bounded wait)
                if not book._tasks:
                    break
                await asyncio.sleep(0.05)
            assert not book._tasks
            rows = ctx.audit.query(0, 10)
            assert [(a["action"], a["detail"]) for a in rows] == [("POST /api/v1/test-events", {"status": 422})]
            assert ctx.store.query_one("SELECT COUNT(*) FROM events WHERE type='gateway.test'")[0] == 0
        finally:
            await stop_context(ctx)

    asyncio.run(main())


def test_test_events_audit_row_says_what_the_answer_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``/test-events`` commits in chunks of 100: when a later chunk fails the answer is 503, and so is
    the audit row (it once said 202, committed with the first chunk); a full success says 202."""
    import sqlite3

    import httpx

    from conftest import token_for, tokens_toml
    from gateway.api.app import create_app
    from gateway.api.routes import core

    real_batch = core._test_batch

    def failing_at(bad_start: int) -> Any:
        def make(start: int, n: int, count: int, by: str) -> Any:
            inner = real_batch(start, n, count, by)

            def batch(conn: sqlite3.Connection, emit: Any) -> None:
                inner(conn, emit)
                if start == bad_start:
                    raise sqlite3.OperationalError("this chunk's write failed")

            return batch

        return make

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, tokens_toml()), components=[])
        app = create_app(ctx)
        headers = {"Authorization": f"Bearer {token_for('admin')}"}

        def tests_stored() -> int:
            return ctx.store.query_one("SELECT COUNT(*) FROM events WHERE type='gateway.test'")[0]

        try:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                for bad_start, stored in ((100, 100), (200, 300)):  # a middle chunk, then the last one
                    monkeypatch.setattr(core, "_test_batch", failing_at(bad_start))
                    r = await client.post("/api/v1/test-events", json={"count": 250}, headers=headers)
                    assert r.status_code == 503, r.text
                    assert tests_stored() == stored
                monkeypatch.setattr(core, "_test_batch", real_batch)
                r = await client.post("/api/v1/test-events", json={"count": 250}, headers=headers)
                assert r.status_code == 202 and tests_stored() == 550
            assert [a["detail"] for a in ctx.audit.query(0, 10)] == [{"status": 503}, {"status": 503}, {"status": 202}]
        finally:
            await stop_context(ctx)

    asyncio.run(main())
