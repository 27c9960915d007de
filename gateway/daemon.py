"""The daemon: one asyncio loop owning the store, the components, the uplink and the HTTP API.

Start order: store (migrations) -> event log -> components -> uplink -> HTTP ->
READY to systemd. Stop order (SIGTERM/SIGINT) is the reverse: stop accepting HTTP,
stop drivers, let in-flight MQTT messages be acknowledged, close the store. Every
event was committed when it was recorded, so a stop -- clean or kill -9 -- loses
nothing; a clean one merely avoids duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gateway.api  # noqa: F401 - before uvicorn: its stand-ins keep uvicorn's command line unloaded
from drivers.listener import quiet_accept_errors, raise_fd_limit
from gateway import __version__, fd_budget
from gateway.audit import AuditLog
from gateway.clock import Clock
from gateway.commands import CommandRouter
from gateway.config import GatewayConfig
from gateway.context import GatewayContext
from gateway.devices import DeviceRegistry
from gateway.events import EventLog
from gateway.gauges import register as register_gauges
from gateway.metrics import Metrics
from gateway.store import Store, secure_dir, sweep_partial_backups
from gateway.supervisor import Supervisor
from gateway.uplink_outbound import ResendArgs

if TYPE_CHECKING:  # pragma: no cover - typing only; both load lazily (start-up time, memory)
    import uvicorn

    from gateway.uplink import Uplink

log = logging.getLogger(__name__)


def default_components() -> list[Any]:
    """The estate's areas, in start order (access first: alarms call it for fire linkage)."""
    from gateway.access import AccessComponent
    from gateway.alarms import AlarmsComponent
    from gateway.commissioning import CommissioningComponent
    from gateway.console import ConsoleComponent
    from gateway.metering import MeteringComponent

    return [AccessComponent(), MeteringComponent(), AlarmsComponent(), CommissioningComponent(), ConsoleComponent()]


SWITCH_INTERVAL_S = 0.0005  #: the writer binding a batch hands the GIL to the loop (the doors) after 0.5 ms, not 5

async def build_context(cfg: GatewayConfig, components: Iterable[Any] | None = None, *,
                        clock: Clock | None = None, start: bool = True) -> GatewayContext:
    """Open the store, wire the shared services, start the components (no MQTT, no HTTP).

    The daemon uses it, and so do in-process tests of a component.
    """
    comps = list(default_components() if components is None else components)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    clock = clock or Clock(cfg.gateway.timezone)
    store = Store(cfg.db_path, synchronous=cfg.store.synchronous, busy_timeout_s=cfg.store.busy_timeout_s,
                  fail_after_s=cfg.store.fail_after_s, min_free_mb=cfg.store.min_free_mb)
    await asyncio.get_running_loop().run_in_executor(
        None, lambda: store.open({c.name: list(getattr(c, "migrations", [])) for c in comps},
                                 backup_dir=cfg.data_path / cfg.store.backup_dir))
    metrics = Metrics()
    events = EventLog(store, max_outbox=cfg.outbox.max_events, clock=clock.now,
                      on_metric=lambda name, n: metrics.inc(f"{name}_total", n=n))
    events.subscribe(lambda ev: metrics.inc("events_recorded_total"))
    devices = DeviceRegistry(events, metrics)
    ctx = GatewayContext(
        config=cfg,
        store=store,
        events=events,
        commands=CommandRouter(store, clock.now, metrics, hmac_key=_hmac_key(cfg),
                               max_bytes=cfg.mqtt.max_command_bytes, max_depth=cfg.mqtt.max_command_depth),
        devices=devices,
        supervisor=Supervisor(devices),
        metrics=metrics,
        audit=AuditLog(store, clock, events),
        clock=clock,
        components={c.name: c for c in comps},
    )
    if start:
        for comp in comps:
            await comp.start(ctx)
    return ctx


def _hmac_key(cfg: GatewayConfig) -> bytes | None:
    """The per-gateway command key: hex in the file (64 hex digits = 32 bytes), or its raw text."""
    if not cfg.mqtt.command_hmac_key_file:
        return None
    text = cfg.resolve(cfg.mqtt.command_hmac_key_file).read_text(encoding="utf-8").strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        return text.encode("utf-8")


async def stop_context(ctx: GatewayContext) -> None:
    for comp in reversed(list(ctx.components.values())):
        try:
            await comp.stop()
        except Exception:
            log.exception("component %s did not stop cleanly", getattr(comp, "name", comp))
    await ctx.supervisor.stop()
    await asyncio.get_running_loop().run_in_executor(None, ctx.store.close)


# ---------------------------------------------------------------------- systemd
def sd_notify(message: str) -> bool:
    """Tell systemd (Type=notify) about READY/WATCHDOG/STOPPING; no-op outside systemd."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(addr)
            sock.sendall(message.encode())
        return True
    except OSError as exc:
        log.warning("sd_notify failed: %s", exc)
        return False


#: an attempt of the store writer may run this much longer than the busy timeout (a big batch on a slow
#: card) before the watchdog calls the writer wedged
WRITER_MARGIN_S = 10.0


def watchdog_interval() -> float | None:
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1e6 / 2


@contextlib.contextmanager
def _signals_stay_with_daemon() -> Iterator[None]:
    yield


class InstanceLock:
    """One daemon per data_dir: a second one would be a second writer."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "gateway.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(f"another estate-gateway is running on {self.path.parent} (lock {self.path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def held(data_dir: Path) -> bool:
        path = data_dir / "gateway.lock"
        if not path.exists():
            return False
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)


# ---------------------------------------------------------------------- the daemon
class Daemon:
    def __init__(self, cfg: GatewayConfig, *, components: list[Any] | None = None) -> None:
        self.cfg = cfg
        self.components = components
        self.boot_id = str(uuid.uuid4())
        self.ctx: GatewayContext | None = None
        self.uplink: Uplink | None = None
        self._stop = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._lock = InstanceLock(cfg.data_path)

    def request_stop(self, why: str = "") -> None:
        if not self._stop.is_set():
            log.info("stopping%s", f" ({why})" if why else "")
            self._stop.set()

    async def run(self) -> None:
        from gateway.uplink import Uplink

        self._lock.acquire()
        loop = asyncio.get_running_loop()
        # out of fds, accept() must cost one line a minute, not a traceback per try (issue 18)
        loop.set_exception_handler(quiet_accept_errors(log))
        if (raised := raise_fd_limit()) is not None:
            log.info("open file limit raised from %d to %d", *raised)
        fd_budget.warn_if_short(self.cfg)   # every listener at its cap must fit under the limit (issue 18)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        try:
            ctx = self.ctx = await build_context(self.cfg, self.components, start=False)
            self.uplink = ctx.uplink = Uplink(self.cfg, ctx.events, ctx.commands, ctx.metrics,
                                              boot_id=self.boot_id, version=__version__)
            await ctx.events.record("gateway.started", {"boot_id": self.boot_id, "version": __version__,
                                                        "outbox_depth": ctx.events.outbox_depth})
            self._register_core_commands(ctx)
            register_gauges(ctx, Backups(self.cfg).newest_age_s)
            for comp in ctx.components.values():
                await comp.start(ctx)
            ctx.supervisor.spawn("uplink", self.uplink.run)
            ctx.supervisor.spawn("housekeeping", self._housekeeping)
            await self._start_http(ctx)
            sd_notify("READY=1\nSTATUS=running")
            if (interval := watchdog_interval()) is not None:
                ctx.supervisor.spawn("watchdog", lambda: self._watchdog(interval))
            log.info("estate-gateway %s running: gateway %s, site %s, boot %s", __version__,
                     self.cfg.gateway.id, self.cfg.gateway.site, self.boot_id)
            await self._stop.wait()
        finally:
            await self._shutdown()

    def _register_core_commands(self, ctx: GatewayContext) -> None:
        async def ping(args: dict[str, Any]) -> dict[str, Any]:
            """Central checks the command path end to end."""
            return {"boot_id": self.boot_id, "version": __version__, "last_seq": ctx.events.last_seq(),
                    "outbox_depth": ctx.events.outbox_depth}

        ctx.commands.register("ping", ping)
        if self.uplink is not None:   # outbound only: central recovers a seq gap over MQTT
            ctx.commands.register("events.resend", self.uplink.resend, ResendArgs)

    async def _start_http(self, ctx: GatewayContext) -> None:
        import uvicorn

        from gateway.api.addresses import networks
        from gateway.api.app import create_app
        from gateway.api.limits import Limits, bounded_protocol, refusal_counter, server_tls

        app = create_app(ctx)
        api = self.cfg.api
        # bounded connections (issue 18): caps in total and per source, header/body deadlines, keep-alive
        limits = Limits(max_connections=api.max_connections, max_per_source=api.max_per_source,
                        header_timeout_s=api.header_timeout_s, body_timeout_s=api.body_timeout_s,
                        max_requests=api.max_requests_per_connection, exempt=networks(api.trusted_proxies))
        tls = server_tls(str(self.cfg.resolve(api.tls_cert_file)), str(self.cfg.resolve(api.tls_key_file))) \
            if api.tls else None  # HTTPS is done by the protocol: handshakes are counted and timed out too
        protocol = bounded_protocol(limits, refusal_counter(ctx.metrics.inc), tls=tls)
        config = uvicorn.Config(app, host=api.host, port=int(api.listen.rpartition(":")[2]), log_level="warning",
                                log_config=None,  # its warnings in the daemon's format; logging.config unloaded
                                lifespan="off", access_log=False, loop="none", http=protocol,
                                proxy_headers=False,  # X-Forwarded-For only from [api] trusted_proxies (auth)
                                timeout_keep_alive=api.keepalive_s,  # type: ignore[arg-type]
                                backlog=min(128, api.max_connections),  # accepts in a burst: bounded fds
                                h11_max_incomplete_event_size=16 * 1024)
        server = uvicorn.Server(config)
        # The daemon owns the signals; uvicorn (>= 0.29 takes them in capture_signals) must not.
        server.capture_signals = _signals_stay_with_daemon  # type: ignore[method-assign]
        self._server = server
        ctx.supervisor.spawn("http", server.serve, restart=False)
        for _ in range(200):
            if server.started:
                return
            await asyncio.sleep(0.025)
        raise RuntimeError(f"HTTP API did not start on {self.cfg.api.listen}")

    async def _shutdown(self) -> None:
        sd_notify("STOPPING=1")
        ctx = self.ctx
        if self._server is not None:
            self._server.should_exit = True
        if ctx is not None:
            for comp in reversed(list(ctx.components.values())):
                try:
                    await comp.stop()
                except Exception:
                    log.exception("component %s did not stop cleanly", comp.name)
            if self.uplink is not None:
                await self.uplink.drain(timeout=3.0)
                await self.uplink.close()
            await ctx.supervisor.stop()
            await asyncio.get_running_loop().run_in_executor(None, ctx.store.close)
        self._lock.release()
        log.info("stopped")

    async def _watchdog(self, interval: float) -> None:
        """Ping systemd while the loop *and* the store writer are alive.

        The writer is alive when its thread runs and it is idle (waiting, backing off) or inside an
        attempt that began less than ``busy_timeout_s`` + :data:`WRITER_MARGIN_S` ago. A degraded
        store (a lock held by someone else, a full disk) is not a dead one: each of its attempts ends
        within the busy timeout and the writer retries, and a restart would not free the lock or the
        disk. A writer wedged inside one attempt (stuck in Python) stops the pings: systemd restarts.
        Nothing here waits on the store, and no exception ends this task (logged once, carries on)."""
        assert self.ctx is not None
        store = self.ctx.store
        limit = store.busy_timeout_s + WRITER_MARGIN_S
        said: set[str] = set()
        while True:
            try:
                age = store.attempt_age()
                if store.writer_alive() and age < limit:
                    sd_notify("WATCHDOG=1")
                    said.discard("wedged")
                elif "wedged" not in said:
                    said.add("wedged")
                    log.error("watchdog: the store writer is %s: no ping, systemd will restart the gateway",
                              f"stuck in one attempt for {age:.0f} s" if store.writer_alive() else "dead")
            except Exception:  # the watchdog must outlive its own trouble
                if "error" not in said:
                    said.add("error")
                    log.exception("watchdog: check failed (carrying on)")
            await asyncio.sleep(interval)

    async def _housekeeping(self) -> None:
        """Prune the delivered event log, take periodic backups (a failed one leaves no ``.part`` and is
        tried again at the next round; parts a crash left are swept at start)."""
        ctx = self.ctx
        assert ctx is not None
        backups = Backups(self.cfg, ctx.store)
        if swept := sweep_partial_backups(backups.dir):
            log.warning("removed %d partial backup file(s) left in %s", swept, backups.dir)
        last_backup = backups.newest_age_s()
        interval = self.cfg.store.backup_interval_h * 3600
        while True:
            await asyncio.sleep(60)
            try:
                pruned = await ctx.events.prune(self.cfg.outbox.retention_days)
                if pruned:
                    log.info("pruned %d delivered events older than %g days", pruned, self.cfg.outbox.retention_days)
                if interval > 0 and (last_backup is None or last_backup >= interval):
                    path = await asyncio.get_running_loop().run_in_executor(None, backups.take)
                    log.info("backup written: %s", path)
                    last_backup = 0.0
                elif last_backup is not None:
                    last_backup += 60
            except (OSError, sqlite3.Error) as exc:  # a full disk: /health says so; try again next round
                log.error("housekeeping: %s (retrying in a minute)", exc)


class Backups:
    """Online backups in ``data_dir/<store.backup_dir>``, keeping the newest ``backup_keep``."""

    def __init__(self, cfg: GatewayConfig, store: Store | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.dir = cfg.data_path / cfg.store.backup_dir

    def take(self, dest: Path | None = None) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        if dest is None or dest.parent.resolve() == self.dir.resolve():
            secure_dir(self.dir)  # our own folder is private; one the user names keeps its mode
        dest = dest or self.dir / f"gateway-{stamp}.db"
        store = self.store or Store(self.cfg.db_path)
        out = store.backup_to(dest)
        self.prune()
        return out

    def list(self) -> list[Path]:
        return sorted(self.dir.glob("gateway-*.db"))

    def prune(self) -> None:
        """Keep the newest ``backup_keep`` of each kind: periodic, before a migration, before an upgrade.

        Backups hold personal data (holder names) too, so none is kept forever."""
        keep = self.cfg.store.backup_keep
        for pattern in ("gateway-*.db", "pre-migrate-*.db", "pre-upgrade-*.db"):
            for old in sorted(self.dir.glob(pattern))[:-keep]:
                old.unlink(missing_ok=True)

    def newest_age_s(self) -> float | None:
        files = self.list()
        return time.time() - files[-1].stat().st_mtime if files else None
