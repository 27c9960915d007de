"""One log line per MQTT outage: the loss and its first failure when it starts, a summary when it ends,
nothing per reconnect attempt -- against a real mosquitto stopped and started again, and the rules alone."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import pytest
from conftest import wait_until

from gateway.uplink_outage import OutageLog

pytestmark = pytest.mark.timeout(90)


def _uplink_lines(log_text: str) -> list[str]:
    return [line for line in log_text.splitlines() if " gateway.uplink: " in line or " gateway.mqtt: " in line]


def test_a_broker_outage_logs_its_start_and_one_summary(gateway_factory: Any, mosquitto: Any) -> None:
    gw = gateway_factory()
    wait_until(lambda: gw.health()["uplink"]["connected"], 15, what="uplink")
    mosquitto.stop()
    wait_until(lambda: "no broker listening" in gw.log.read_text(), 20, what="the first failed reconnect")
    time.sleep(3.5)   # paho retries after 1 s, then 2 s: at least two attempts fail while the broker is away
    mosquitto.start()
    wait_until(lambda: "uplink back after" in gw.log.read_text(), 60, what="the outage summary")
    lines = _uplink_lines(gw.log.read_text())
    outage = lines[next(i for i, line in enumerate(lines) if "connection lost" in line):]
    assert len(outage) == 3, "\n".join(outage)
    assert "WARNING" in outage[0] and "events are kept in the outbox" in outage[0]
    assert "ERROR" in outage[1] and "connection refused" in outage[1] and "no broker listening" in outage[1]
    m = re.search(r"uplink back after (\d+) s, (\d+) failed attempts \(connection 2 to mqtt://", outage[2])
    assert m and int(m.group(2)) >= 2, outage[2]
    assert not [line for line in lines if " gateway.mqtt: " in line]   # no paho chatter
    assert gw.health()["uplink"]["last_error"] == ""
    gw.stop()
    assert not [line for line in _uplink_lines(gw.log.read_text()) if "ERROR" in line][1:], "errors on a clean stop"


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_outage_log_counts_attempts_and_says_each_kind_of_failure_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    out = OutageLog(logging.getLogger("test.outage"), clock)
    with caplog.at_level(logging.INFO, "test.outage"):
        out.failed("connection refused by b:1883: no broker listening there")   # the broker is not up yet at start
        clock.t += 5
        out.connected("mqtt://b:1883", 1)
        out.lost("Unspecified error")
        for _ in range(40):
            clock.t += 1
            out.failed("connection refused by b:1883: no broker listening there")
        out.failed("TLS: the broker's certificate at b:8883 is not trusted")       # a new way to fail: said once
        out.failed("TLS: the broker's certificate at b:8883 is not trusted")
        clock.t += 2
        out.connected("mqtt://b:1883", 2)
        out.connected("mqtt://b:1883", 3)   # a reconnect with no failure in between (a clean drop and back)
    assert _messages(caplog) == [
        "mqtt: connection refused by b:1883: no broker listening there",
        "mqtt: uplink up after 5 s, 1 failed attempt (connection 1 to mqtt://b:1883)",
        "mqtt: connection lost (Unspecified error); events are kept in the outbox until it is back",
        "mqtt: connection refused by b:1883: no broker listening there",
        "mqtt: TLS: the broker's certificate at b:8883 is not trusted",
        "mqtt: uplink back after 42 s, 42 failed attempts (connection 2 to mqtt://b:1883)",
        "mqtt: connected to mqtt://b:1883 (connection 3)",
    ]
    assert not out.down


def test_long_outages_read_in_minutes_and_hours(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    out = OutageLog(logging.getLogger("test.outage"), clock)
    out.connected("u", 1)
    with caplog.at_level(logging.INFO, "test.outage"):
        for took in (150, 3 * 3600 + 125):
            out.lost("gone")
            clock.t += took
            out.connected("u", 2)
    summaries = [m for m in _messages(caplog) if "back after" in m]
    assert summaries[0].startswith("mqtt: uplink back after 2 min 30 s, 0 failed attempts")
    assert summaries[1].startswith("mqtt: uplink back after 3 h 2 min, 0 failed attempts")
