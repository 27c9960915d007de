"""Address ranges from the config (``trusted_proxies``), matched without raising on garbage.

Its own module so that the auth code does not import uvicorn's protocol (the CLI imports auth).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def in_networks(host: str, nets: tuple[Network, ...]) -> bool:
    if not nets:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(addr in net for net in nets)
