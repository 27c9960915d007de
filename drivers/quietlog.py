"""Log a refusal once a minute per (source, reason), with a count -- never a flood.

Why: bad input on a hostile network comes as fast as the attacker can send it. Logging each
refusal turns one laptop into gigabytes of log (and a full disk); logging none hides the attack.
:class:`QuietLog` logs the first refusal of a kind at once, then at most one line per interval
saying how many more there were. Keys are bounded too (the oldest is forgotten past ``max_keys``),
so random sources or reasons cannot grow memory either.

Thread-safe: the OSDP and serial driver threads and the event loop share instances.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass
class _Seen:
    first: float
    suppressed: int = 0


class QuietLog:
    """``quiet.log(key, msg, *args)``: first one logged, then one summary line per ``interval_s`` per key."""

    def __init__(self, logger: logging.Logger, *, interval_s: float = 60.0, level: int = logging.WARNING,
                 max_keys: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.level = level
        self.max_keys = max_keys
        self.clock = clock
        self._seen: OrderedDict[Hashable, _Seen] = OrderedDict()
        self._lock = threading.Lock()
        #: every call, logged or not (for tests and metrics)
        self.total = 0

    def log(self, key: Hashable, msg: str, *args: object) -> bool:
        """Count one occurrence of ``key``; returns True when a line was written."""
        now = self.clock()
        with self._lock:
            self.total += 1
            seen = self._seen.get(key)
            if seen is not None and now - seen.first < self.interval_s:
                seen.suppressed += 1
                return False
            suppressed = seen.suppressed if seen is not None else 0
            self._seen[key] = _Seen(now)
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
        if suppressed:
            self.logger.log(self.level, msg + " (and %d more like it in the last %.0f s)",
                            *args, suppressed, self.interval_s)
        else:
            self.logger.log(self.level, msg, *args)
        return True
