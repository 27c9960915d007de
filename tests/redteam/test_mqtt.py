"""Red team, MQTT commands: whatever central (or anyone who may publish on cmd/) sends gets one cmd-result.

Before: a 100,000-deep nested command raised RecursionError, got no answer, and central retried it
forever; a ``door.unlock`` reusing a ``ping``'s id answered ``ok:true`` with the ping's result and
did not unlock. Here the same payloads go through a real mosquitto to the daemon: each is answered
(``too_deep``, ``too_large``, ``bad_json``, ``id_reused``), the daemon lives, the door stays shut.
The screen itself (:mod:`gateway.command_screen`) is fuzzed against ``json.loads``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import DOOR_SITE, make_config, mqtt_pub, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.command_screen import depth, guess_id, screen
from gateway.commands import REFUSED, CommandRouter
from gateway.metrics import Metrics
from gateway.store import Store

pytestmark = pytest.mark.timeout(120)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.text(alphabet='[]{}"\\a', max_size=8),   # brackets, quotes and backslashes inside strings
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=20)


def _json_depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_json_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_json_depth, value.values()), default=0)
    return 0


# ---------------------------------------------------------------------- the screen, fuzzed
@settings(max_examples=150)
@given(json_values)
def test_depth_of_any_json_is_its_nesting(value: Any) -> None:
    raw = json.dumps(value).encode()
    assert depth(raw) == _json_depth(value)
    assert screen(raw, len(raw), _json_depth(value)) is None


@settings(max_examples=150)
@given(st.binary(max_size=300))
def test_any_bytes_are_screened_without_error(raw: bytes) -> None:
    assert depth(raw) >= 0
    found = guess_id(raw)
    assert found is None or 1 <= len(found) <= 128


@settings(max_examples=100)
@given(st.from_regex(r"[A-Za-z0-9._:-]{1,128}", fullmatch=True), json_values)
def test_the_top_level_id_is_found_in_a_broken_payload(cmd_id: str, args: Any) -> None:
    text = json.dumps({"args": {"id": "not-this-one", "x": args}, "id": cmd_id})
    assert guess_id(text.encode()) == cmd_id
    assert guess_id(text[:-1].encode() + b"{[") == cmd_id         # cut short and broken: still found


def test_a_100k_deep_payload_is_measured_flat() -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    assert depth(nested) == 100_000
    assert screen(nested, 10**7, 32) == ("too_deep", "command nests 100000 levels deep; the limit is 32 "
                                                     "([mqtt] max_command_depth)")
    assert depth(b'{"a": "[[[[{{{{", "b": ["\\"[[["]}') == 2   # brackets inside strings are no nesting


# ---------------------------------------------------------------------- the router, in process
def test_router_answers_everything_and_never_runs_a_reused_id(tmp_path: Path) -> None:
    store = Store(make_config(tmp_path).db_path)
    store.open({})
    metrics = Metrics()
    unlocked: list[Any] = []
    router = CommandRouter(store, lambda: datetime.now(UTC), metrics, max_bytes=300_000, max_depth=8)

    async def ping(args: Any) -> dict[str, Any]:
        return {"pong": True}

    async def unlock(args: Any) -> dict[str, Any]:
        unlocked.append(args)
        return {"door": "d1"}

    router.register("ping", ping)
    router.register("door.unlock", unlock)

    async def main() -> list[dict[str, Any]]:
        deep = b'{"id": "deep-1", "args": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        return [await router.handle("ping", deep),
                await router.handle("ping", b'{"id": "big-1", "args": {"x": "' + b"a" * 400_000 + b'"}}'),
                await router.handle("ping", b"\xff\xfe not json"),
                await router.handle("ping", '{"id": "p-1", "args": {}}'),
                await router.handle("door.unlock", '{"id": "p-1", "args": {"door": "d1"}}'),
                await router.handle("ping", '{"id": "p-1", "args": {}}')]

    try:
        deep, big, garbage, ping_ok, reused, replay = asyncio.run(main())
    finally:
        store.close()
    assert (deep["id"], deep["ok"], deep["error"]["code"]) == ("deep-1", False, "too_deep")
    assert (big["id"], big["error"]["code"]) == ("big-1", "too_large")
    assert garbage["id"] is None and garbage["error"]["code"] == "bad_json" and garbage["command"] == "ping"
    assert ping_ok == {"id": "p-1", "ok": True, "result": {"pong": True}}
    assert reused["ok"] is False and reused["error"]["code"] == "id_reused"
    assert reused["error"]["first_command"] == "ping" and unlocked == []
    assert replay == ping_ok   # same name, same id: the idempotent replay it always was
    for code in ("too_deep", "too_large", "bad_json", "id_reused"):
        assert metrics.get("commands_refused_total", {"reason": code}) == 1
    assert router.quiet.total == 4


def test_any_payload_on_any_command_gets_exactly_one_answer(tmp_path: Path) -> None:
    """Fuzzed through CommandRouter.handle: bytes, JSON values, commands with a few shared ids on two names."""
    store = Store(make_config(tmp_path).db_path)
    store.open({})
    router = CommandRouter(store, lambda: datetime.now(UTC), Metrics(), max_bytes=2000, max_depth=6)
    runs: dict[str, list[str]] = {}

    for name in ("ping", "door.unlock"):
        async def handler(args: Any, name: str = name) -> dict[str, Any]:
            runs.setdefault(name, []).append(json.dumps(args))
            return {}
        router.register(name, handler)
    commands = st.fixed_dictionaries({"id": st.sampled_from(["a", "b", "c"]), "args": st.dictionaries(
        st.sampled_from(["door", "x"]), json_values, max_size=2)}).map(lambda m: json.dumps(m).encode())
    payloads = st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()) | commands
    claimed: dict[str, tuple[str, dict[str, Any]]] = {}   # id -> the command that ran under it, its answer

    @settings(max_examples=200)
    @given(st.sampled_from(["ping", "door.unlock", "nope"]), payloads)
    def check(name: str, raw: bytes) -> None:
        result = asyncio.run(router.handle(name, raw))
        assert result["ok"] is True or set(result["error"]) >= {"code", "message"}, result
        code = None if result["ok"] else result["error"]["code"]
        if result["id"] is None or code in REFUSED - {"id_reused"}:
            return   # refused before it ran: claims nothing
        first, answer = claimed.setdefault(result["id"], (name, result))
        if first == name:
            assert result == answer   # the same command again: its one answer
        else:
            assert code == "id_reused", result

    try:
        check()
    finally:
        store.close()
    # an id ran at most once, under one name
    ran = [json.loads(r) for rs in runs.values() for r in rs]
    assert len(ran) <= 3


# ---------------------------------------------------------------------- over a real broker, the daemon
def test_hostile_commands_each_get_a_result_and_the_daemon_lives(gateway_factory: Any, mosquitto: Any,
                                                                  mqtt_sub: Any) -> None:
    gw = gateway_factory(DOOR_SITE, mqtt_extra="max_command_bytes = 1048576\n")
    results = mqtt_sub(mosquitto.port, f"{gw.topic_root}/cmd-result")
    wait_until(lambda: gw.health()["uplink"]["connected"], 30, what="uplink")
    cmd = f"{gw.topic_root}/cmd"

    def send(name: str, body: bytes | dict[str, Any], pred: Any) -> dict[str, Any]:
        mqtt_pub(mosquitto.port, f"{cmd}/{name}", body)
        return results.wait_for(lambda t, p: pred(p), 60)[1]

    deep = send("cards.apply", b'{"id": "rt-deep", "args": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                lambda p: p.get("id") == "rt-deep")
    assert deep["ok"] is False and deep["error"]["code"] == "too_deep"
    bare_deep = send("ping", b"[" * 100_000, lambda p: p.get("command") == "ping" and p["id"] is None)
    assert bare_deep["error"]["code"] == "too_deep"
    big = send("cards.snapshot", b'{"id": "rt-big", "args": {"pad": "' + b"x" * 2_000_000 + b'"}}',
               lambda p: p.get("id") == "rt-big")
    assert big["error"]["code"] == "too_large"
    garbage = send("door.unlock", b"\x00\xffnot json at all", lambda p: p.get("command") == "door.unlock")
    assert garbage["id"] is None and garbage["error"]["code"] == "bad_json"

    pong = send("ping", {"id": "rt-1", "args": {}}, lambda p: p.get("id") == "rt-1")
    assert pong["ok"] is True
    reused = send("door.unlock", {"id": "rt-1", "args": {"door": "d1", "seconds": 2}},
                  lambda p: p.get("id") == "rt-1" and not p["ok"])
    assert reused["error"]["code"] == "id_reused" and reused["error"]["first_command"] == "ping"
    # the daemon lives and still obeys a proper command; only that one unlocked the door
    fresh = send("door.unlock", {"id": "rt-2", "args": {"door": "d1", "seconds": 2}}, lambda p: p.get("id") == "rt-2")
    assert fresh["ok"] is True, fresh
    wait_until(lambda: gw.events_of_type("door.unlocked"), 20, what="door.unlocked of rt-2")
    assert len(gw.events_of_type("door.unlocked")) == 1
    assert gw.health()["status"] == "ok" and gw.proc is not None and gw.proc.poll() is None
    metrics = gw.get("/metrics").text
    for code in ("too_deep", "too_large", "bad_json", "id_reused"):
        assert f'estate_gateway_commands_refused_total{{reason="{code}"}}' in metrics
    assert "RecursionError" not in gw.log.read_text() and "Traceback" not in gw.log.read_text()


def test_a_thousand_made_up_commands_leave_a_bounded_log(gateway_factory: Any, mosquitto: Any,
                                                         mqtt_sub: Any) -> None:
    """Unknown names and bad args are the sender's choice: each answered, the log gets a line a minute, not 1,000."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    gw = gateway_factory(DOOR_SITE)
    results = mqtt_sub(mosquitto.port, f"{gw.topic_root}/cmd-result")
    wait_until(lambda: gw.health()["uplink"]["connected"], 30, what="uplink")
    lines_before = len(gw.log.read_text().splitlines())
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rt-flood")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        sent = [client.publish(f"{gw.topic_root}/cmd/made-up-{i}", json.dumps({"id": f"u-{i}", "args": {}}), qos=1)
                for i in range(900)]
        sent += [client.publish(f"{gw.topic_root}/cmd/ping", json.dumps({"id": f"b-{i}", "args": [i]}), qos=1)
                 for i in range(100)]
        for info in sent:
            info.wait_for_publish(30)
    finally:
        client.disconnect()  # first: loop_stop() alone waits out paho's 1 s select
        client.loop_stop()

    def answered() -> dict[str, str]:
        return {p["id"]: p["error"]["code"] for _, p in results.snapshot()
                if isinstance(p, dict) and str(p.get("id")).startswith(("u-", "b-"))}
    wait_until(lambda: len(answered()) == 1000, 90, interval=0.5, what="1,000 answers")
    codes = answered()
    assert {codes[f"u-{i}"] for i in range(900)} == {"unknown_command"}
    assert {codes[f"b-{i}"] for i in range(100)} == {"bad_args"}
    new_lines = gw.log.read_text().splitlines()[lines_before:]
    assert len([ln for ln in new_lines if "made-up" in ln]) <= 2, new_lines[:5]   # once a minute, with a count
    assert len(new_lines) <= 10, new_lines[:20]
    metrics = gw.get("/metrics").text
    assert 'estate_gateway_commands_refused_total{reason="unknown_command"} 900' in metrics
