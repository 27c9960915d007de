"""Token guessing is slowed: a few typos are free, then each failure doubles the wait (HTTP and console login).

Failures only: a valid token is never refused, whoever failed at the same address. The address is
the socket's; X-Forwarded-For counts only from ``[api] trusted_proxies``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipaddress

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import GatewayProc
from gateway.api.addresses import networks
from gateway.api.auth import AuthThrottle, forwarded_client
from gateway.api.errors import ApiError

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
    t.refuse("10.0.0.9")  # counted, answered 401 by the caller
    with pytest.raises(ApiError) as refused:
        t.refuse("10.0.0.9")  # inside the wait: 429, not counted again
    assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "8"
    clock.now += 101
    assert t.wait_s("10.0.0.9") == 0  # a quiet spell forgets


def test_throttle_keeps_a_bounded_table() -> None:
    t = AuthThrottle(max_clients=100)
    for i in range(1000):
        t.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(t._failures) == 100


def test_forwarded_for_counts_only_from_a_trusted_proxy() -> None:
    proxies = networks(["10.0.0.0/24"])
    # an untrusted peer's header is ignored whatever it says
    assert forwarded_client("192.168.1.5", ["6.6.6.6"], proxies) == "192.168.1.5"
    assert forwarded_client("127.0.0.1", ["6.6.6.6"], ()) == "127.0.0.1"
    # from a proxy: the right-most address that is not a proxy (what the client put first is not believed)
    assert forwarded_client("10.0.0.2", ["6.6.6.6, 192.168.1.7"], proxies) == "192.168.1.7"
    assert forwarded_client("10.0.0.2", ["6.6.6.6, 192.168.1.7, 10.0.0.3"], proxies) == "192.168.1.7"
    assert forwarded_client("10.0.0.2", ["192.168.1.7", "10.0.0.9"], proxies) == "192.168.1.7"  # two header lines
    assert forwarded_client("10.0.0.2", [], proxies) == "10.0.0.2"
    assert forwarded_client("10.0.0.2", ["not an address"], proxies) == "10.0.0.2"


ADDRESSES = st.one_of(st.ip_addresses().map(str), st.sampled_from(["10.0.0.2", "10.0.0.77", "unknown", "", " "]),
                      st.text(max_size=40))


@settings(max_examples=300)
@given(peer=st.ip_addresses().map(str), lines=st.lists(
    st.lists(ADDRESSES, max_size=6).map(", ".join) | st.text(max_size=80), max_size=3))
def test_forwarded_for_never_raises_and_never_makes_up_an_address(peer: str, lines: list[str]) -> None:
    proxies = networks(["10.0.0.0/24", "fd00::/8"])
    got = forwarded_client(peer, lines, proxies)
    hops = [h.strip() for line in lines for h in line.split(",")]
    assert got == peer or got in hops  # the peer, or an address the header really holds
    if got != peer:
        assert ipaddress.ip_address(got) and not any(ipaddress.ip_address(got) in n for n in proxies)
    assert forwarded_client(peer, lines, ()) == peer  # nobody trusted: the header is never read


def until_throttled(send: Callable[[], httpx.Response], attempts: int = 5) -> httpx.Response:
    """Wrong tokens until one is answered 429 (bounded). On a loaded box a wait may run out between two
    requests; that one then counts as a failure (401) and doubles the wait, so a 429 comes soon after."""
    for _ in range(attempts):
        r = send()
        if r.status_code == 429:
            return r
        assert r.status_code == 401, r.text
    raise AssertionError(f"no 429 in {attempts} wrong tokens")


def test_wrong_tokens_are_throttled_but_a_valid_one_never_is(gateway_factory: Any) -> None:
    gw = gateway_factory()
    url = f"{gw.url}/api/v1/events"
    wrong = {"Authorization": "Bearer guess"}
    for _ in range(6):  # five free, the sixth starts a 1 s wait
        assert httpx.get(url, headers=wrong).status_code == 401
    r = until_throttled(lambda: httpx.get(url, headers=wrong))
    assert r.json()["error"]["code"] == "too_many_attempts"
    assert int(r.headers["retry-after"]) >= 1
    # someone else at the same address with a valid token is never refused for it
    assert httpx.get(url, headers=gw.headers("central")).status_code == 200
    assert httpx.get(url).status_code == 401  # no token: nothing guessed, nothing counted
    # the console login form: a valid token signs in from the throttled address, a wrong one waits
    r = httpx.post(f"{gw.url}/login", data={"token": gw.token("operator")}, headers={"origin": gw.url})
    assert r.status_code == 303
    until_throttled(lambda: httpx.post(f"{gw.url}/login", data={"token": "guess"}, headers={"origin": gw.url}), 10)
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert "auth_failed_total" in metrics and "auth_throttled_total" in metrics
    log = gw.log.read_text()
    assert "Bearer guess" not in log and "guess" not in log  # tokens, right or wrong, never reach the log
    assert 1 <= log.count("auth: wrong token") <= 2  # once a minute per address, with a count


def test_rotating_forwarded_for_does_not_escape_the_throttle(gateway_factory: Any) -> None:
    gw = gateway_factory()
    url = f"{gw.url}/api/v1/events"
    statuses = [httpx.get(url, headers={"Authorization": "Bearer guess", "X-Forwarded-For": f"198.51.100.{i}"}).status_code
                for i in range(30)]
    assert 429 in statuses and statuses.count(401) <= 8  # loopback is no trusted proxy: its header is ignored


def test_behind_a_trusted_proxy_each_forwarded_address_is_throttled_alone(tmp_path: Any, mosquitto: Any) -> None:
    gw = GatewayProc(tmp_path, mosquitto.port, api_extra='trusted_proxies = ["127.0.0.0/8"]')
    gw.start()
    try:
        url = f"{gw.url}/api/v1/events"

        def send(xff: str, token: str = "guess") -> httpx.Response:
            return httpx.get(url, headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": xff})

        def get(xff: str, token: str = "guess") -> int:
            return send(xff, token).status_code

        assert all(get("198.51.100.1") == 401 for _ in range(6))   # five free, the sixth starts the wait
        until_throttled(lambda: send("198.51.100.1"))
        assert get("198.51.100.2") == 401  # another client behind the same proxy is not slowed
        assert get("198.51.100.1", gw.token("central")) == 200  # nor is a valid token from the guesser's
        # a client forging the header in front of the proxy gains nothing: the proxy appends the real one
        # (were the forged address believed, it would have five free tries: a 429 within four says it is not)
        until_throttled(lambda: send("198.51.100.9, 198.51.100.1"), 4)
    finally:
        gw.stop()


def test_the_throttle_counts_an_ipv6_client_per_64() -> None:
    """Rotating addresses inside one IPv6 /64 (one host may own it all) is one source to the throttle;
    an IPv4 client and a forwarded one behind a trusted proxy are counted as themselves."""
    from types import SimpleNamespace

    from starlette.requests import Request

    from gateway.api.addresses import networks
    from gateway.api.auth import client_address

    app = SimpleNamespace(state=SimpleNamespace(trusted_proxies=networks(["10.0.0.0/8"])))

    def source(peer: str, xff: str | None = None) -> str:
        headers = [(b"x-forwarded-for", xff.encode())] if xff else []
        return client_address(Request({"type": "http", "client": (peer, 1234), "headers": headers, "app": app}))

    assert {source(f"2001:db8:1:2::{i:x}") for i in range(1, 50)} == {"2001:db8:1:2::/64"}
    assert source("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert source("192.0.2.7") == "192.0.2.7" and source("::ffff:192.0.2.7") == "192.0.2.7"
    assert source("10.0.0.2", "2001:db8:9:9::abcd") == "2001:db8:9:9::/64"
    assert source("192.0.2.7", "198.51.100.1") == "192.0.2.7"  # not a trusted proxy: its header is not read
