"""The gauges that alerting needs and no area owns: the oldest undelivered event's age, the data disk's free
space, the newest backup's age, the store's health, and who this gateway is.

Why here and read when scraped (:meth:`Metrics.gauge_fn`): an alert rule in ``config/prometheus/`` is only as
good as the number it reads, and a number computed at the scrape is never stale -- an outbox that stopped
draining shows its age growing even if nothing else in the daemon runs. Each callback is cheap (one indexed
row, one ``statvfs``, one small directory listing). Label values come only from the config.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from gateway import __version__

HELP = {
    "outbox_oldest_age_seconds": "Age of the oldest event not yet delivered to central (0: none waiting)",
    "disk_free_bytes": "Bytes free for the gateway on the data_dir's filesystem",
    "disk_free_ratio": "Share of the data_dir's filesystem free for the gateway (0..1)",
    "backup_age_seconds": "Seconds since the newest periodic backup (since start when there is none)",
    "store_degraded": "1 while the store cannot commit (health degraded), else 0",
    "info": "Always 1; labels name the gateway, its site and version (join on instance)",
}


def event_age_s(ts: str | None, now: datetime) -> float:
    """Seconds from an event's RFC 3339 ``ts`` to ``now`` (0 for none, never negative)."""
    if not ts:
        return 0.0
    then = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return max(0.0, (now - then).total_seconds())


def oldest_pending(events: Any, now: datetime) -> dict[str, Any]:
    """For ``/health``: how long the oldest undelivered event has waited (depth alone hides a queue that stopped
    moving)."""
    ts = events.oldest_pending_ts()
    return {"oldest_ts": ts, "oldest_age_s": round(event_age_s(ts, now), 1)}


def disk_free(path: str) -> tuple[float, float]:
    """(bytes available to an unprivileged writer, that as a share of the filesystem)."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    return float(free), (free / total if total else 0.0)


def store_degraded(store: Any) -> float:
    """1 while the store reports trouble (``Store.trouble``: the reason and since, None when commits succeed)."""
    return 0.0 if getattr(store, "trouble", None) is None else 1.0


def register(ctx: Any, newest_backup_age_s: Callable[[], float | None]) -> None:
    """Register the core gauges on ``ctx.metrics`` (the daemon calls this once the context exists)."""
    from gateway import metrics as metrics_module

    for name, text in HELP.items():
        metrics_module.HELP.setdefault(name, text)
    m, data_dir, started = ctx.metrics, str(ctx.config.data_path), time.time()
    m.gauge_fn("outbox_oldest_age_seconds", lambda: event_age_s(ctx.events.oldest_pending_ts(), ctx.clock.now()))
    m.gauge_fn("disk_free_bytes", lambda: disk_free(data_dir)[0])
    m.gauge_fn("disk_free_ratio", lambda: disk_free(data_dir)[1])

    def backup_age() -> float:
        age = newest_backup_age_s()
        return time.time() - started if age is None else max(0.0, age)

    m.gauge_fn("backup_age_seconds", backup_age)
    m.gauge_fn("store_degraded", lambda: store_degraded(ctx.store))
    # counters a dashboard reads exist from the start (at 0), not only after their first increment
    for counter in ("events_delivered_total", "mqtt_reconnects_total", "outbox_shed_total"):
        m.inc(counter, n=0)
    g = ctx.config.gateway
    m.set("info", 1, {"gateway": g.id, "site": g.site, "version": __version__})
