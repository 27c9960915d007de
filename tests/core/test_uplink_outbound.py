"""Answers split to the broker's packet limit, and the failover order of a cluster's nodes (no broker needed)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.uplink_nodes import Nodes
from gateway.uplink_outbound import split_answer

TOPIC = "estate/site/gw/cmd-result"
item = st.fixed_dictionaries({"meter": st.text(max_size=40), "unit": st.text(max_size=20),
                              "values": st.dictionaries(st.text(max_size=12), st.floats(allow_nan=False), max_size=4),
                              "read_at": st.text(max_size=30)})


@settings(max_examples=60, deadline=None)
@given(st.lists(item, max_size=200), st.integers(min_value=4096, max_value=20000))
def test_parts_fit_the_limit_and_put_the_items_back_together(items: list[dict[str, Any]], limit: int) -> None:
    answer = {"id": "c-1", "ok": True, "result": {"items": items, "next": "42"}}
    parts = split_answer(answer, TOPIC, limit)
    if len(parts) == 1 and "part" not in parts[0]:
        assert parts[0] == answer
        return
    assert [p["part"] for p in parts] == list(range(1, len(parts) + 1))
    assert {p["parts"] for p in parts} == {len(parts)}
    assert all(p["id"] == "c-1" and p["result"]["next"] == "42" for p in parts)
    assert [i for p in parts for i in p["result"]["items"]] == items
    for p in parts:
        assert len(json.dumps(p, ensure_ascii=False).encode()) + len(TOPIC) + 64 <= limit


def test_small_answers_and_errors_go_whole() -> None:
    err = {"id": "c-2", "ok": False, "error": {"code": "bad_args", "message": "x" * 10000}}
    assert split_answer(err, TOPIC, 4096) == [err]
    small = {"id": "c-3", "ok": True, "result": {"items": [1, 2, 3]}}
    assert split_answer(small, TOPIC, 4096) == [small]


def test_an_item_too_big_for_one_packet_is_answered_too_large_not_sent_oversized() -> None:
    answer = {"id": "c-4", "ok": True, "result": {"items": [{"n": 1}, {"blob": "x" * 8000}, {"n": 3}]}}
    [only] = split_answer(answer, TOPIC, 4096)
    assert only["id"] == "c-4" and only["ok"] is False and only["error"]["code"] == "too_large"
    assert "item 1" in only["error"]["message"] and "max_packet_bytes = 4096" in only["error"]["message"]
    assert len(json.dumps(only).encode()) + len(TOPIC) + 64 <= 4096
    unsplittable = {"id": "c-5", "ok": True, "result": {"export": "y" * 8000}}
    assert split_answer(unsplittable, TOPIC, 4096)[0]["error"]["code"] == "too_large"
    # the same item under a larger limit goes through, in parts or whole
    assert [i for p in split_answer(answer, TOPIC, 20000) for i in p["result"]["items"]] == answer["result"]["items"]


def test_nodes_go_round_and_count_a_failover_only_on_another_node() -> None:
    nodes = Nodes(["mqtt://a:1", "mqtt://b:1", "mqtt://c:1"])
    assert nodes.cluster and nodes.current == "mqtt://a:1"
    assert nodes.linked("mqtt://a:1") is None
    assert [nodes.advance() for _ in range(4)] == ["mqtt://b:1", "mqtt://c:1", "mqtt://a:1", "mqtt://b:1"]
    assert nodes.linked("mqtt://b:1") == "mqtt://a:1"
    assert nodes.linked("mqtt://b:1") is None   # back on the same node: a reconnect, not a failover
    one = Nodes(["mqtt://a:1"])
    assert not one.cluster and one.advance() == "mqtt://a:1"
