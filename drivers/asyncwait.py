"""Waiting for a doorbell with a bound: the one helper the asyncio loops of drivers and gateway share.

Here, not in ``gateway``, because drivers never import gateway; the uplink's pump, the meter scheduler and the
relay board's coil timer each wait like this (issue 20's review found three copies).
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, timeout: float) -> None:
    """Until ``event`` is set or ``timeout`` seconds have passed (which is not an error)."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        pass
