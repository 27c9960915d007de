"""What the simulators remember across restarts: one small JSON file in the demo's var dir.

A simulated meter that starts again from its initial total makes the gateway see the total
go down: a false ``reverse`` anomaly for every meter after every restart of ``make demo``.
So each simulator puts its devices' state here (``put``), :class:`SimState` writes it
atomically (temporary file, fsync, rename) every few seconds, on a valve change and on a
clean stop, and a restarted simulator takes it back (``get``). Meters save ``(total, at)``
and continue from ``total + volume drawn since at`` (:mod:`drivers.sim.usage`): what they
served before a crash is never more than what they serve after it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

SAVE_EVERY_S = 10.0
VERSION = 1


def saved_number(saved: dict[str, Any], key: str, *, at: bool = False) -> float:
    """A finite number from a saved device state (ValueError otherwise); an ``at`` in the future (the clock was
    set back) is taken as now, so the meter counts on instead of standing still until then."""
    value = saved[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{key} = {value!r}: not a finite number >= 0")
    return min(float(value), time.time()) if at else float(value)


class SimState:
    """Device state by key (``"modbus/<bus>/<device id>"``, ``"cjt188/<bus>/<address>"``), on disk."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._data: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._dirty = False
        #: each puts its devices' current state; called before every periodic save
        self.collectors: list[Callable[[], None]] = []
        if path is not None:
            self._data = self._read(path)

    @staticmethod
    def _read(path: Path) -> dict[str, dict[str, Any]]:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("simulator state %s unreadable (%s): starting from the initial values", path, exc)
            return {}
        devices = raw.get("devices") if isinstance(raw, dict) and raw.get("version") == VERSION else None
        return {k: v for k, v in devices.items() if isinstance(v, dict)} if isinstance(devices, dict) else {}

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self._data.get(key)

    def put(self, key: str, value: dict[str, Any], *, now: bool = False) -> None:
        """Remember ``value`` for ``key``; ``now`` writes the file at once (a valve changed)."""
        with self._lock:
            self._data[key] = value
            self._dirty = True
        if now:
            self.save()

    def save(self) -> None:
        """Write the file if anything changed (atomic: a crash leaves the old or the new one)."""
        if self.path is None:
            return
        with self._lock:
            if not self._dirty:
                return
            body = json.dumps({"version": VERSION, "devices": self._data}, indent=1, sort_keys=True)
            self._dirty = False
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("simulator state not saved to %s: %s", self.path, exc)

    async def keep_saving(self, every_s: float = SAVE_EVERY_S) -> None:
        """Every ``every_s``: let each collector ``put``, then save; once more when cancelled (a clean stop)."""
        try:
            while True:
                await asyncio.sleep(every_s)
                self.collect()
        finally:
            self.collect()

    def collect(self) -> None:
        for fn in list(self.collectors):
            try:
                fn()
            except Exception:  # one broken device must not stop the others' state being saved
                log.exception("simulator state: a collector failed")
        self.save()


__all__ = ["SimState"]


class Remembered(Protocol):
    """A simulated meter whose draws, counters and valve survive a restart of ``simulate``."""

    pattern: Any
    on_change: Callable[[], None] | None

    def restore(self, saved: Any) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...


def remember(meter: Remembered, key: str, state: SimState, rate_m3h: float) -> None:
    """A flat's draws (``rate_m3h``), its counters and valve taken back from ``state`` and put there as they change."""
    from drivers.sim.usage import DrawPattern

    meter.pattern = DrawPattern(key, rate_m3h=rate_m3h)
    saved = state.get(key)
    if saved is not None:
        try:
            meter.restore(saved)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("meter %s: saved state %r unusable (%s); starting afresh", key, saved, exc)

    def keep(now: bool = False) -> None:
        state.put(key, meter.snapshot(), now=now)

    meter.on_change = lambda: keep(now=True)
    state.collectors.append(keep)
    keep()
