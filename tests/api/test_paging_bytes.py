"""The cursor pulls (``GET /events``, ``GET /readings``) write their pages straight to JSON instead of through the
response models: the bytes must be the ones the models (``Page``, ``ReadingPage``) give for the same page --
non-ASCII text, large and small floats, nested data, a filtered and an empty page."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from conftest import make_config, token_for, tokens_toml
from pydantic import TypeAdapter

from gateway.api.app import create_app
from gateway.api.routes.core import Page
from gateway.api.routes.metering import ReadingPage
from gateway.daemon import build_context, stop_context
from gateway.store import json_column
from gateway.metering import MeteringComponent, register

pytestmark = pytest.mark.timeout(60)

SITE = ('[[buses]]\nid = "b"\ntransport = "tcp"\nport = "127.0.0.1:1"\n'
        '[[meters]]\nid = "m1"\nbus = "b"\ndevice_id = 1\nprofile = "generic-hot-water"\nunit = "3-1-0101"\n'
        '[[meters]]\nid = "m2"\nbus = "b"\ndevice_id = 2\nprofile = "generic-hot-water"\nunit = "3-1-0102"\n')
TRICKY = {"text": "Zhāng ✓ 张", "big": 1e16, "small": 5e-324, "neg": -0.0, "n": [1, 2.5, None, True, {"a": "é"}],
          "int": 2 ** 62}


def same_as_model(body: bytes, model: type) -> bool:
    adapter = TypeAdapter(model)
    return adapter.dump_json(adapter.validate_json(body)) == body


def test_event_and_reading_pages_are_the_models_bytes(tmp_path: Path) -> None:
    async def main() -> None:
        comp = MeteringComponent()
        ctx = await build_context(make_config(tmp_path, tokens_toml() + SITE), components=[comp], start=False)
        try:
            await comp.start(ctx)  # its bus (port 1) never connects: the readings are inserted here

            def txn(conn: object) -> None:
                for i in range(30):
                    vals = {"total_m3": 100 + i * 0.0123456, "flow_m3h": 0.15000001, "temp_c": -0.04, "status": i,
                            "note": TRICKY["text"]}
                    register.insert_reading(conn, f"m{1 + i % 2}", f"3-1-010{1 + i % 2}",
                                            f"2026-12-01T00:00:{i:02d}.000Z", register.encode_values(vals))
            await ctx.store.write(txn)
            for i in range(20):
                await ctx.events.record("door.forced" if i % 2 else "gateway.test", {**TRICKY, "i": i})
            app = create_app(ctx)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw",
                                         headers={"Authorization": f"Bearer {token_for('central')}"}) as client:
                for path in ("/api/v1/readings?limit=5000", "/api/v1/readings?limit=7&after=3",
                             "/api/v1/readings?meter=m2&limit=4", "/api/v1/readings?after=999"):
                    r = await client.get(path)
                    assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
                    assert same_as_model(r.content, ReadingPage), path
                page = (await client.get("/api/v1/readings?limit=5000")).json()
                assert len(page["items"]) == 30 and page["items"][0]["values"]["flow_m3h"] == 0.15
                assert page["items"][0]["values"]["note"] == TRICKY["text"] and page["next"] == "30"
                for path in ("/api/v1/events?limit=1000", "/api/v1/events?after=3&limit=5",
                             "/api/v1/events?type=door.forced", "/api/v1/events?after=9999"):
                    r = await client.get(path)
                    assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
                    assert same_as_model(r.content, Page), path
                forced = (await client.get("/api/v1/events?type=door.forced")).json()
                assert [e["data"]["i"] for e in forced["items"]] == list(range(1, 20, 2))
                assert forced["items"][0]["data"]["n"] == TRICKY["n"] and forced["next"] == forced["items"][-1]["seq"]
        finally:
            await stop_context(ctx)

    asyncio.run(main())


def test_json_column_decodes_a_page_in_one_parse_or_row_by_row() -> None:
    assert json_column([], 0) == []
    assert json_column([(1, '{"a":"é"}'), (2, "[1,2]"), (3, "3.5")], 1) == [{"a": "é"}, [1, 2], 3.5]
    # texts that are not one value each (not what the store writes): decoded row by row, so an error is an error
    with pytest.raises(ValueError):
        json_column([("1,2",), ("3",)], 0)
