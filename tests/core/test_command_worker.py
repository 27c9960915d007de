"""A big command is read by a child process (gateway.command_worker): the answers are the ones a small one gets.

Each payload here is over ``OFF_LOOP_BYTES`` (1 MiB), so the router hands it to a child that screens and
parses it with the same code, and takes its big lists back in pickled chunks. Compared with what
:func:`gateway.command_screen.read_command` says in this process: a snapshot-like command with 3,000
cards and its units arrives whole and in order, a signed one is checked (good and bad signature), and
malformed ones (not JSON, too deep, not an object, no id) get the same refusal code and message.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config

from gateway.command_screen import read_command
from gateway.command_worker import gc_paused
from gateway.commands import OFF_LOOP_BYTES, CommandRouter, sign
from gateway.metrics import Metrics
from gateway.store import Store

pytestmark = pytest.mark.timeout(120)
PAD = "x" * (OFF_LOOP_BYTES // 3000 + 10)   # 3,000 cards with this in a field: over the child's threshold


def _cards(n: int) -> list[dict[str, Any]]:
    return [{"card": f"H10301:1:{i}", "holder": f"{PAD}{i}", "doors": ["building:1"], "n": i * 0.5} for i in range(n)]


def _router(tmp_path: Path, key: bytes | None = None) -> tuple[Store, CommandRouter, list[Any]]:
    store = Store(make_config(tmp_path).db_path)
    store.open({})
    got: list[Any] = []
    router = CommandRouter(store, lambda: datetime.now(UTC), Metrics(), hmac_key=key)

    async def snapshot(args: Any) -> dict[str, Any]:
        got.append(json.loads(json.dumps(args)))   # a copy: the router frees the big lists after the answer
        return {"count": len(args["cards"])}

    router.register("cards.snapshot", snapshot)
    return store, router, got


def test_a_big_command_arrives_whole_and_malformed_ones_get_the_same_refusals(tmp_path: Path) -> None:
    store, router, got = _router(tmp_path)
    cards, units = _cards(3000), [{"unit": f"u{i}", "occupants": i} for i in range(1500)]
    good = json.dumps({"id": "snap-1", "args": {"rev": 3, "cards": cards, "units": units}}).encode()
    assert len(good) > OFF_LOOP_BYTES
    bad = {
        "bad_json": good[:-5],
        "too_deep": b'{"id": "deep-1", "pad": "' + PAD.encode() * 3000 + b'", "args": ' + b"[" * 40 + b"]" * 40 + b"}",
        "bad_request": b"[" + good + b"]",
        "missing_id": good.replace(b'"snap-1"', b"17", 1),
    }

    async def main() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        return await router.handle("cards.snapshot", good), {k: await router.handle("cards.snapshot", v)
                                                            for k, v in bad.items()}

    try:
        ok, refused = asyncio.run(main())
    finally:
        store.close()
    assert router.parsed_in_child == 1 + len(bad)   # not the thread's fallback
    assert ok == {"id": "snap-1", "ok": True, "result": {"count": 3000}}
    assert got == [{"rev": 3, "cards": cards, "units": units}]
    for code, result in refused.items():
        assert result["ok"] is False and result["error"]["code"] == code, (code, result)
        _, here = read_command(bad[code], router.max_bytes, router.max_depth)
        if here is not None:   # refused by the reader: the same id, code and message as in this process
            assert (result["id"], result["error"]["code"], result["error"]["message"]) == here
    import gc
    assert gc.isenabled()   # the pause while the big lists were unpickled is over


def test_a_big_signed_command_is_checked_with_the_childs_signature(tmp_path: Path) -> None:
    key = b"k" * 32
    store, router, got = _router(tmp_path, key)
    msg: dict[str, Any] = {"id": "snap-2", "ts": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "args": {"rev": 1, "cards": _cards(3000)}}
    msg["sig"] = sign(key, "cards.snapshot", msg)
    forged = {**msg, "id": "snap-3", "sig": sign(b"other", "cards.snapshot", msg)}

    async def main() -> list[dict[str, Any]]:
        return [await router.handle("cards.snapshot", json.dumps(m).encode()) for m in (msg, forged)]

    try:
        signed, bad = asyncio.run(main())
    finally:
        store.close()
    assert signed["ok"] is True and len(got) == 1 and router.parsed_in_child == 2
    assert bad["ok"] is False and bad["error"]["code"] == "bad_signature"


def test_gc_pauses_nest() -> None:
    import gc
    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
