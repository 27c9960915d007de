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
