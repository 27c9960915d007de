"""Device health: readers, buses, alarm receivers. A change of state is an event.

A state's reason is a :class:`~drivers.reasons.Reason`: its English words stay ``reason`` (logs,
events, ``/health``) and its code and args ride beside as ``reason_code``/``reason_args``, so the
console can say it in Chinese.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from drivers.reasons import NONE, Reason, reason_fields
from gateway.events import EventLog, format_ts
from gateway.metrics import Metrics

log = logging.getLogger(__name__)

DeviceKind = Literal["reader", "bus", "receiver", "meter", "uplink"]


@dataclass
class DeviceState:
    id: str
    kind: str
    online: bool | None = None  # None = not heard from yet
    reason: Reason = NONE
    since: str = ""
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "online": self.online, "reason": str(self.reason),
                "reason_code": "", "reason_args": {}, **reason_fields(self.reason),
                "since": self.since, "errors": self.errors, **self.extra}


class DeviceRegistry:
    """Knows every device's last state; emits device.online/offline only on a change."""

    def __init__(self, events: EventLog, metrics: Metrics) -> None:
        self.events = events
        self.metrics = metrics
        self.devices: dict[str, DeviceState] = {}

    def declare(self, device_id: str, kind: str) -> DeviceState:
        state = self.devices.get(device_id)
        if state is None:
            state = self.devices[device_id] = DeviceState(device_id, kind)
        return state

    async def set_state(self, device_id: str, kind: str, online: bool, reason: Reason = NONE) -> bool:
        """Record a state; returns True when it changed (and an event was committed)."""
        state = self.declare(device_id, kind)
        self.metrics.set("device_online", 1 if online else 0, {"device": device_id, "kind": kind})
        if state.online is online:
            state.reason = reason or state.reason
            return False
        first = state.online is None
        state.online = online
        state.reason = reason
        state.since = format_ts(self.events.clock())
        if first and online:
            log.info("device %s (%s) online", device_id, kind)
            return False  # coming up at start is not news
        log.warning("device %s (%s) %s%s", device_id, kind, "online" if online else "offline",
                    f": {reason}" if reason else "")
        data: dict[str, Any] = {"device": device_id, "kind": kind}
        if reason:
            data.update(reason=str(reason), **reason_fields(reason))
        await self.events.record("device.online" if online else "device.offline", data)
        return True

    def error(self, device_id: str, kind: str, what: str) -> None:
        """Count a protocol/I-O error (bad CRC, garbled frame...) without an event per error."""
        state = self.declare(device_id, kind)
        state.errors += 1
        self.metrics.inc("device_errors_total", {"device": device_id, "kind": kind, "error": what})

    def snapshot(self) -> list[dict[str, Any]]:
        return [d.as_dict() for d in self.devices.values()]

    def offline(self) -> list[dict[str, Any]]:
        return [d.as_dict() for d in self.devices.values() if d.online is False]
