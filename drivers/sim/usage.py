"""How a flat draws hot water over a day, for the demo's simulated meters.

A meter that flows at a constant rate for ever looks like a leak to the gateway after
``leak_hours`` and, after a simulator restart, would have to jump or go back. Real flats
draw in short bursts -- a shower in the morning, the dishes in the evening, nothing at
night -- and a meter counts only while water flows. :class:`DrawPattern` is that, as a
pure function of wall-clock time: the day is cut into slots; in each slot a flat draws or
not (more likely at the usual hours), for a few minutes, at its own rate, decided by a
hash of the meter's key and the slot. So the volume between any two instants is known
exactly (:meth:`DrawPattern.volume`), the same after a restart, and never negative: a
simulator that saved ``(total, at)`` continues from ``total + volume(at, now)``.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

SLOT_S = 900.0
#: chance that a flat draws in a quarter-hour, by local hour (morning and evening peaks, quiet night)
HOURLY_CHANCE = (0.02, 0.01, 0.01, 0.01, 0.02, 0.08, 0.35, 0.45, 0.35, 0.15, 0.10, 0.12,
                 0.18, 0.12, 0.08, 0.08, 0.10, 0.18, 0.35, 0.40, 0.40, 0.30, 0.15, 0.05)
#: at most this many days of slots are summed (a simulator left off for months only counts that much)
MAX_DAYS = 60


@dataclass(frozen=True)
class DrawPattern:
    """Bursts of ``rate_m3h`` (a few minutes each) in the slots a hash of ``key`` picks."""

    key: str
    rate_m3h: float = 0.6
    utc_offset_s: float = 8 * 3600.0   # the demo site's clock (Asia/Shanghai)

    def _slot(self, k: int) -> tuple[float, float]:
        """(start offset in the slot, seconds of flow) of slot ``k``; (0, 0) when nobody draws then."""
        h = hashlib.blake2b(f"{self.key}/{k}".encode(), digest_size=8).digest()
        roll = int.from_bytes(h[:4], "big") / 2**32
        hour = int(((k * SLOT_S + self.utc_offset_s) % 86400) // 3600)
        if roll >= HOURLY_CHANCE[hour]:
            return 0.0, 0.0
        length = 60.0 + h[4] / 255 * 360.0           # one to seven minutes
        start = h[5] / 255 * (SLOT_S - length)
        return start, length

    def flow_at(self, t: float | None = None) -> float:
        """The flow (m3/h) at wall-clock time ``t`` (now when None)."""
        t = time.time() if t is None else t
        k = math.floor(t / SLOT_S)
        start, length = self._slot(k)
        offset = t - k * SLOT_S
        return self.rate_m3h if length and start <= offset < start + length else 0.0

    def volume(self, t0: float, t1: float) -> float:
        """Cubic metres drawn between ``t0`` and ``t1`` (wall-clock seconds); 0 when ``t1 <= t0``."""
        if t1 <= t0:
            return 0.0
        t0 = max(t0, t1 - MAX_DAYS * 86400.0)
        seconds = 0.0
        for k in range(math.floor(t0 / SLOT_S), math.floor(t1 / SLOT_S) + 1):
            start, length = self._slot(k)
            if not length:
                continue
            a, b = k * SLOT_S + start, k * SLOT_S + start + length
            seconds += max(0.0, min(b, t1) - max(a, t0))
        return self.rate_m3h * seconds / 3600.0


__all__ = ["DrawPattern", "SLOT_S"]
