"""One refusal, two wires: a domain error answers the same code on HTTP (status from one table) and MQTT."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from conftest import make_config
from gateway.api.app import _install_error_handlers
from gateway.api.errors import STATUS_BY_ERROR, status_of
from gateway.commands import CommandError, CommandRouter
from gateway.errors import Conflict, DomainError, Invalid, NotFound, Unavailable
from gateway.store import Store


@pytest.mark.parametrize(("error", "status"), [
    (NotFound(None, "no door d9"), 404),
    (Conflict("reader_offline", "reader r1 is offline"), 409),
    (Invalid("card_exists", "x"), 422),
    (Unavailable(None, "no metering here"), 503),
    (CommandError("rev_gap", "ask for a snapshot"), 422),
])
def test_http_status_comes_from_the_one_table(error: DomainError, status: int) -> None:
    assert status_of(error) == status
    app = FastAPI()
    _install_error_handlers(app)
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise error

    app.include_router(router)
    r = TestClient(app).get("/boom")
    assert r.status_code == status
    assert r.json() == {"error": {"code": error.code, "message": error.message, **error.extra}}


def test_every_error_class_has_a_status() -> None:
    for cls in (DomainError, Invalid, NotFound, Conflict, Unavailable):
        assert cls in STATUS_BY_ERROR


def test_mqtt_answers_a_domain_error_with_the_same_code(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    store = Store(cfg.db_path)
    store.open({})
    try:
        router = CommandRouter(store, lambda: datetime.now(UTC))

        async def refuse(args: object) -> dict[str, object]:
            raise NotFound("unknown_door", "no door 'd9'", door="d9")

        router.register("door.unlock", refuse)
        result = asyncio.run(router.handle("door.unlock", json.dumps({"id": "c-1", "args": {}})))
        assert result == {"id": "c-1", "ok": False,
                          "error": {"code": "unknown_door", "message": "no door 'd9'", "door": "d9"}}
    finally:
        store.close()
