"""Counters and gauges rendered as Prometheus text (no client library needed for this much)."""

from __future__ import annotations

import threading
from collections.abc import Callable

Labels = tuple[tuple[str, str], ...]

HELP = {
    "events_recorded_total": "Events committed to the local store",
    "events_delivered_total": "Events acknowledged by the broker (PUBACK)",
    "outbox_depth": "Events waiting for delivery",
    "outbox_shed_total": "meter.reading events shed because the outbox was full",
    "mqtt_reconnects_total": "MQTT connections established after the first",
    "mqtt_connected": "1 when the uplink is connected",
    "device_errors_total": "Protocol or I/O errors per device",
    "device_online": "1 when a device is online",
    "commands_total": "Commands received from central, by result",
    "http_requests_total": "HTTP requests by status class",
}


def _key(labels: dict[str, str] | None) -> Labels:
    return tuple(sorted((labels or {}).items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self, prefix: str = "estate_gateway_") -> None:
        self.prefix = prefix
        self._counters: dict[str, dict[Labels, float]] = {}
        self._gauges: dict[str, dict[Labels, float]] = {}
        self._callbacks: dict[str, Callable[[], float]] = {}
        self._lock = threading.Lock()

    def inc(self, name: str, labels: dict[str, str] | None = None, n: float = 1) -> None:
        with self._lock:
            series = self._counters.setdefault(name, {})
            k = _key(labels)
            series[k] = series.get(k, 0) + n

    def set(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        with self._lock:
            self._gauges.setdefault(name, {})[_key(labels)] = value

    def gauge_fn(self, name: str, fn: Callable[[], float]) -> None:
        """A gauge read when scraped (e.g. outbox depth)."""
        self._callbacks[name] = fn

    def get(self, name: str, labels: dict[str, str] | None = None) -> float:
        with self._lock:
            for table in (self._counters, self._gauges):
                if name in table:
                    return table[name].get(_key(labels), 0)
        if name in self._callbacks:
            return self._callbacks[name]()
        return 0

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            tables = [("counter", dict(self._counters)), ("gauge", dict(self._gauges))]
        for kind, table in tables:
            for name, series in sorted(table.items()):
                self._header(lines, name, kind)
                for labels, value in sorted(series.items()):
                    lines.append(f"{self.prefix}{name}{self._labels(labels)} {value:g}")
        for name, fn in sorted(self._callbacks.items()):
            self._header(lines, name, "gauge")
            try:
                lines.append(f"{self.prefix}{name} {fn():g}")
            except Exception:
                continue
        return "\n".join(lines) + "\n"

    def _header(self, lines: list[str], name: str, kind: str) -> None:
        lines.append(f"# HELP {self.prefix}{name} {HELP.get(name, name.replace('_', ' '))}")
        lines.append(f"# TYPE {self.prefix}{name} {kind}")

    @staticmethod
    def _labels(labels: Labels) -> str:
        if not labels:
            return ""
        return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"
