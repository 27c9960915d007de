"""Address ranges from the config (``trusted_proxies``), matched without raising on garbage.

Its own module so that the auth code does not import uvicorn's protocol (the CLI imports auth). The
parsing and matching are the receivers' (:mod:`drivers.listener`), so HTTP and the alarm receivers
agree: an IPv4-mapped IPv6 peer (``::ffff:127.0.0.1`` on a ``[::]`` listener) matches IPv4 networks,
and an IPv6 client counts as its /64.
"""

from __future__ import annotations

from collections.abc import Iterable

from drivers import listener
from drivers.listener import Network, host_address, source_key

__all__ = ["Network", "in_networks", "networks", "source_key", "source_of"]


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return listener.parse_networks(cidrs)


def in_networks(host: str, nets: tuple[Network, ...]) -> bool:
    """Whether the address in ``host`` (text) is in one of ``nets``; False for anything that is not an address."""
    return listener.in_networks(host_address(host), nets)


def source_of(host: str) -> str:
    """The per-source bucket of a client address: the IPv4 address, or the IPv6 /64."""
    return source_key(host_address(host))
