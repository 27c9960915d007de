"""Counters and gauges rendered as Prometheus text (no client library needed for this much).

Label values are bounded, because some come from the wire (an error's reason, an account, a
receiver's refusal) and every new value is a new series: 30,000 DC-09 blocks with random id
tokens once made 30,000 series and a 3.2 MB ``/metrics`` (issue 18). So a label with a
vocabulary from the config (:meth:`Metrics.known`: receiver ids, configured accounts) takes only
those values, anything else counts as ``other``; any other label takes at most
:data:`MAX_LABEL_VALUES` distinct values per metric (config ids such as ``device``: :data:`LABEL_CAPS`),
later ones count as ``other`` too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

#: the one series unknown or overflowing label values count in
OTHER = "other"
#: distinct values of a label without a configured vocabulary, per metric, before new ones are ``other``
MAX_LABEL_VALUES = 64
#: labels whose values the code only ever takes from config ids (a site may have hundreds of readers):
#: a larger cap, as a backstop only
LABEL_CAPS = {"device": 4096, "bus": 4096}

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
    "alarm_connections_refused_total": "Receiver connections closed unread (allow_from, caps) or idle, by reason",
    "alarm_plain_refused_total": "Plain DC-09 blocks refused from accounts that have a key",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self, prefix: str = "estate_gateway_") -> None:
        self.prefix = prefix
        self._counters: dict[str, dict[Labels, float]] = {}
        self._gauges: dict[str, dict[Labels, float]] = {}
        self._callbacks: dict[str, Callable[[], float]] = {}
        self._lock = threading.Lock()
        self._known: dict[str, frozenset[str]] = {}
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._overflowed: set[tuple[str, str]] = set()

    def known(self, label: str, values: Iterable[str]) -> None:
        """Give ``label`` a vocabulary (from the config): other values of it count as ``other``."""
        with self._lock:
            self._known[label] = self._known.get(label, frozenset()) | frozenset(str(v) for v in values)

    def _bounded(self, name: str, labels: dict[str, str] | None, remember: bool = True) -> Labels:
        """The labels with every value bounded (caller holds the lock)."""
        if not labels:
            return ()
        return tuple((label, self._value(name, label, str(raw), remember)) for label, raw in sorted(labels.items()))

    def _value(self, name: str, label: str, value: str, remember: bool) -> str:
        vocab = self._known.get(label)
        if vocab is not None:
            return value if value in vocab else OTHER
        seen = self._seen.setdefault((name, label), set())
        cap = LABEL_CAPS.get(label, MAX_LABEL_VALUES)
        if value in seen:
            return value
        if len(seen) < cap:
            if remember:
                seen.add(value)
            return value
        if (name, label) not in self._overflowed:
            self._overflowed.add((name, label))
            log.warning("metrics: %s has %d values of label %s: later ones count as %r", name, cap, label, OTHER)
        return OTHER

    def inc(self, name: str, labels: dict[str, str] | None = None, n: float = 1) -> None:
        with self._lock:
            series = self._counters.setdefault(name, {})
            k = self._bounded(name, labels)
            series[k] = series.get(k, 0) + n

    def set(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        with self._lock:
            self._gauges.setdefault(name, {})[self._bounded(name, labels)] = value

    def gauge_fn(self, name: str, fn: Callable[[], float]) -> None:
        """A gauge read when scraped (e.g. outbox depth)."""
        self._callbacks[name] = fn

    def get(self, name: str, labels: dict[str, str] | None = None) -> float:
        with self._lock:
            for table in (self._counters, self._gauges):
                if name in table:
                    return table[name].get(self._bounded(name, labels, remember=False), 0)
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
