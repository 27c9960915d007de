"""One log line per MQTT outage, not one per reconnect attempt.

While the broker is away paho retries (1, 2, 4 ... 30 s) and used to log an error for every
attempt, so an hour's outage buried everything else in the journal. :class:`OutageLog` keeps
what a technician needs: the first failure, in words, when the outage starts (and a *different*
failure once, e.g. the broker back but refusing our certificate); the rest is counted; and when
the link is back, one summary line: ``mqtt: uplink back after 42 s, 37 attempts``. The count
and the last error stay on the health endpoint (``uplink.last_error``) all along.

On a broker cluster the same block tells a failover: the loss names the node, and the summary
says where the link went: ``mqtt: failover 2 to mqtt://n2:1883 (from mqtt://n1:1883) after 3 s,
0 failed attempts`` -- one block per failover, whatever the number of nodes tried in between.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class OutageLog:
    """The log of one uplink's outages (called on the asyncio loop only)."""

    def __init__(self, log: logging.Logger, clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.clock = clock
        self.since: float | None = None      # when the current outage began (None: the link is up)
        self.attempts = 0                     # failed connection attempts in this outage
        self._said: set[str] = set()          # failures already logged in this outage
        self._ever_up = False

    @property
    def down(self) -> bool:
        return self.since is not None

    def _begin(self) -> None:
        if self.since is None:
            self.since, self.attempts, self._said = self.clock(), 0, set()

    def lost(self, reason: str, node: str = "") -> None:
        """An established link dropped: the outage starts (one warning); ``node``: the cluster node it was on."""
        self._begin()
        where = f" to {node}" if node else ""
        self.log.warning("mqtt: connection%s lost (%s); events are kept in the outbox until it is back",
                         where, reason)

    def failed(self, text: str) -> None:
        """A connection attempt failed: logged the first time this outage fails this way, counted always."""
        self._begin()
        self.attempts += 1
        if text not in self._said:
            self._said.add(text)
            self.log.error("mqtt: %s", text)

    def connected(self, url: str, connection: int, *, failover_from: str | None = None, failovers: int = 0) -> None:
        """The link is up: the summary of the outage (or failover) it ends, or the first connection."""
        if self.since is not None and failover_from is not None:
            took = self.clock() - self.since
            self.log.warning("mqtt: failover %d to %s (from %s) after %s, %d failed attempt%s (connection %d)",
                             failovers, url, failover_from, _duration(took), self.attempts,
                             "" if self.attempts == 1 else "s", connection)
        elif self.since is not None:
            took = self.clock() - self.since
            verb = "back" if self._ever_up else "up"
            self.log.info("mqtt: uplink %s after %s, %d failed attempt%s (connection %d to %s)", verb,
                          _duration(took), self.attempts, "" if self.attempts == 1 else "s", connection, url)
        else:
            self.log.info("mqtt: connected to %s (connection %d)", url, connection)
        self.since, self.attempts, self._said = None, 0, set()
        self._ever_up = True


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


__all__ = ["OutageLog"]
