"""Token guessing is slowed: a few typos are free, then each failure doubles the wait (HTTP and console login)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from gateway.api.auth import AuthThrottle

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
