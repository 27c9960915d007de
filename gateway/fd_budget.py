"""Enough file descriptors for every listener at its cap? Said once at start, with the numbers and the fix.

Why: each TCP listener holds up to its ``max_connections`` sockets (HTTP 256, each alarm receiver 256
by default) and every socket is a file descriptor. Outside systemd (whose unit sets ``LimitNOFILE``)
the usual limit is 1,024: three receivers and the HTTP port at their caps need about that alone, and
the database, the serial ports and the broker need some more. Running out is survived (accept pauses
and logs once a minute, ``drivers/listener.py``) but then a panel or the duty room cannot connect
while the flood lasts. Better to say so at start, once, than to find it in a flood.
"""

from __future__ import annotations

import logging

from gateway.config.models import GatewayConfig

log = logging.getLogger(__name__)

#: fds besides the listeners' connections: SQLite (database, WAL, shm, backups), the broker, logs,
#: the event loop's own, a margin for bursts of accepts
RESERVE = 128


def listener_caps(cfg: GatewayConfig) -> dict[str, int]:
    """Connections each listener may hold at once, by a name an operator can find in the config."""
    caps = {"[api] max_connections": cfg.api.max_connections}
    for rc in cfg.alarm_receivers:
        if rc.listen:
            caps[f"alarm receiver {rc.id} max_connections"] = rc.max_connections
    return caps


def fd_need(cfg: GatewayConfig) -> int:
    """Every listener at its cap, plus the reserve, plus one per configured device (serial port, bus, reader)."""
    devices = len(cfg.readers) + len(cfg.buses) + len(cfg.meters) + len(cfg.alarm_receivers)
    return sum(listener_caps(cfg).values()) + RESERVE + devices


def fd_shortfall(cfg: GatewayConfig, limit: int) -> str | None:
    """The warning to give when ``limit`` (RLIMIT_NOFILE) is below :func:`fd_need`, else None."""
    need = fd_need(cfg)
    if need <= limit:
        return None
    caps = listener_caps(cfg)
    listed = " + ".join(f"{n} ({name})" for name, n in caps.items())
    rest = need - sum(caps.values())
    return (f"open file limit {limit} is below what the listeners may hold at once: {listed} + {rest} (reserve "
            f"and devices) = {need}; under a connection flood a panel or the console may not get in. Raise the "
            f"limit (LimitNOFILE={need} or more in the systemd unit, or ulimit -n) or lower max_connections")


def warn_if_short(cfg: GatewayConfig) -> None:
    """Log :func:`fd_shortfall` once against this process's soft limit (call it after raising the limit)."""
    try:
        import resource
    except ImportError:   # not on this platform
        return
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (warning := fd_shortfall(cfg, soft)) is not None:
        log.warning("%s", warning)
