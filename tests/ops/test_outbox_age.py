"""/health and /metrics say how long the oldest undelivered event has waited, not only how many wait: a queue
that stopped moving is seen by its age while its depth still looks small."""

from __future__ import annotations

import re
from typing import Any

from conftest import wait_until


def oldest_gauge(gw: Any) -> float:
    m = re.search(r"^estate_gateway_outbox_oldest_age_seconds (\S+)$", gw.get("/api/v1/metrics").text, re.M)
    assert m, "no outbox_oldest_age_seconds gauge"
    return float(m.group(1))


def test_oldest_undelivered_event_age_through_an_outage(gateway_factory: Any, mosquitto: Any) -> None:
    gw = gateway_factory()
    wait_until(lambda: gw.health()["uplink"]["connected"], 20, what="uplink")
    wait_until(lambda: gw.health()["outbox"]["depth"] == 0, 20, what="gateway.started delivered")
    out = gw.health()["outbox"]
    assert out["oldest_ts"] is None and out["oldest_age_s"] == 0
    assert oldest_gauge(gw) == 0

    mosquitto.stop()
    try:
        wait_until(lambda: not gw.health()["uplink"]["connected"], 30, what="uplink down")
        assert gw.post("/api/v1/test-events", json={"count": 3}).status_code == 202
        first = gw.get("/api/v1/events", params={"type": "gateway.test"}).json()["items"][0]
        # the oldest waiting event is the first one recorded in the outage, and it ages while it waits
        wait_until(lambda: gw.health()["outbox"]["oldest_age_s"] >= 1, 30, what="the oldest event ageing")
        out = gw.health()["outbox"]
        assert out["depth"] >= 3 and out["oldest_ts"] <= first["ts"]
        assert oldest_gauge(gw) >= 1
    finally:
        mosquitto.start()
    wait_until(lambda: gw.health()["outbox"]["depth"] == 0, 60, what="outbox drained")
    out = gw.health()["outbox"]
    assert out["oldest_ts"] is None and out["oldest_age_s"] == 0
    assert oldest_gauge(gw) == 0
