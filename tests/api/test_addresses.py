"""HTTP reads client addresses the way the alarm receivers do (``drivers.listener``).

Before, ``trusted_proxies = ["127.0.0.1/32"]`` silently never matched on a ``[::]`` listener (the
peer is ``::ffff:127.0.0.1`` there), and each IPv6 address was its own per-source bucket while the
receivers count a /64 -- one host holding a /64 had 2^64 buckets.
"""

from __future__ import annotations

from typing import Any

from gateway.api.addresses import in_networks, networks, source_of
from gateway.api.auth import forwarded_client
from gateway.api.limits import ConnectionTable, Limits


def test_an_ipv4_mapped_peer_matches_ipv4_trusted_proxies() -> None:
    proxies = networks(["127.0.0.1/32"])
    assert in_networks("::ffff:127.0.0.1", proxies)
    assert forwarded_client("::ffff:127.0.0.1", ["203.0.113.9"], proxies) == "203.0.113.9"
    assert forwarded_client("::ffff:127.0.0.2", ["203.0.113.9"], proxies) == "::ffff:127.0.0.2"   # not a proxy
    assert not in_networks("not an address", proxies) and not in_networks("", proxies)
    assert in_networks("fe80::1%eth0", networks(["fe80::/64"]))


class _Conn:
    """What the table reads of a connection (its address and bucket) and the one call it makes (close)."""

    def __init__(self, table: ConnectionTable, host: str) -> None:
        self.table, self.host, self.source, self.closed = table, host, source_of(host), False

    def close_now(self) -> None:
        self.closed = True
        self.table.release(self)  # type: ignore[arg-type]


def test_two_ipv6_addresses_in_one_64_share_the_per_source_count() -> None:
    refused: list[str] = []
    table = ConnectionTable(Limits(max_connections=100, max_per_source=2), on_refused=refused.append)
    conns: list[Any] = [_Conn(table, "2001:db8:1:2::1"), _Conn(table, "2001:db8:1:2:ffff::9")]
    assert all(table.admit(c) for c in conns)
    assert {c.source for c in conns} == {"2001:db8:1:2::/64"}
    assert not table.admit(_Conn(table, "2001:db8:1:2::77")) and refused == ["per_source"]   # a third, same /64
    assert table.admit(_Conn(table, "2001:db8:1:3::1"))    # the next /64 is another source
    assert source_of("::ffff:10.0.0.5") == source_of("10.0.0.5") == "10.0.0.5"


def test_a_trusted_proxy_on_a_dual_stack_listener_is_exempt_from_the_per_source_cap() -> None:
    table = ConnectionTable(Limits(max_connections=100, max_per_source=1, exempt=networks(["127.0.0.1/32"])))
    assert all(table.admit(_Conn(table, "::ffff:127.0.0.1")) for _ in range(5))  # type: ignore[arg-type]
