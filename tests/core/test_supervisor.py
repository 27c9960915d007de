"""A crashing driver is logged, reported device.offline, restarted with backoff; the daemon lives on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import make_config
from gateway.daemon import build_context, stop_context


class FlakyDriver:
    """A component whose driver task crashes twice, then runs and reports the device online."""

    name = "flaky"
    migrations: list[tuple[int, str]] = []

    def __init__(self) -> None:
        self.starts = 0

    def routes(self) -> None:
        return None

    async def start(self, ctx: Any) -> None:
        self.ctx = ctx
        ctx.supervisor.min_backoff = 0.05
        ctx.supervisor.spawn("flaky-driver", self.run, device=("r-flaky", "reader"))

    async def run(self) -> None:
        self.starts += 1
        await self.ctx.devices.set_state("r-flaky", "reader", True)
        if self.starts <= 2:
            raise OSError("serial port vanished")
        await asyncio.Event().wait()

    async def stop(self) -> None:
        pass


def test_crashing_driver_is_restarted_and_reported(tmp_path: Path) -> None:
    async def main() -> None:
        comp = FlakyDriver()
        ctx = await build_context(make_config(tmp_path), [comp])
        for _ in range(100):
            if comp.starts >= 3:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        assert comp.starts == 3
        types = [e.type for e in ctx.events.query(0, 100)]
        assert types.count("device.offline") == 2 and types.count("device.online") == 2
        offline = [e for e in ctx.events.query(0, 100) if e.type == "device.offline"][0]
        assert offline.data == {"device": "r-flaky", "kind": "reader", "reason": "driver crashed: serial port vanished",
                                "reason_code": "task_crashed", "reason_args": {"error": "serial port vanished"}}
        assert ctx.supervisor.restarts["flaky-driver"] == 2
        assert "flaky-driver" in ctx.supervisor.running()
        await stop_context(ctx)

    asyncio.run(main())


def test_sd_notify_ready_and_watchdog(gateway_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Under systemd (Type=notify) the daemon says READY=1, then pings WATCHDOG=1, and STOPPING=1 on SIGTERM."""
    import socket

    from conftest import wait_until

    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    got: list[str] = []

    def drain() -> list[str]:
        try:
            while True:
                got.append(sock.recv(4096).decode())
        except OSError:
            pass
        return got

    gw = gateway_factory(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
    wait_until(lambda: any("READY=1" in m for m in drain()), 10, what="READY=1")
    wait_until(lambda: sum("WATCHDOG=1" in m for m in drain()) >= 2, 10, what="two watchdog pings")
    gw.stop()
    wait_until(lambda: any("STOPPING=1" in m for m in drain()), 10, what="STOPPING=1")
    sock.close()


def test_prune_keeps_undelivered_and_newest(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from gateway.events import EventLog
    from gateway.store import Store

    async def main() -> None:
        store = Store(tmp_path / "g.db")
        store.open()
        now = [datetime.now(timezone.utc) - timedelta(days=100)]
        log = EventLog(store, clock=lambda: now[0])
        old = [await log.record("gateway.test", {"i": i}) for i in range(5)]
        await log.mark_delivered([e.seq for e in old[:4]])  # the 5th is still undelivered
        now[0] = datetime.now(timezone.utc)
        assert await log.prune(90) == 4
        left = [e.seq for e in log.query(0, 100)]
        assert left == [5]
        await log.mark_delivered([5])
        assert await log.prune(90) == 0  # the newest row anchors seq
        assert (await log.record("gateway.test", {})).seq == 6
        store.close()

    asyncio.run(main())


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """The shipped unit passes systemd-analyze (with ExecStart pointed at this venv's binary)."""
    import shutil
    import subprocess

    import pytest

    from conftest import BIN, ROOT

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    unit = (ROOT / "systemd" / "estate-gateway.service").read_text()
    for key in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "SupplementaryGroups=dialout",
                "StateDirectory=estate-gateway", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                "LimitNOFILE=65536"):
        assert key in unit
    local = tmp_path / "estate-gateway.service"
    local.write_text(unit.replace("/opt/estate-gateway/bin/estate-gateway", str(BIN)))
    res = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=60)
    problems = [line for line in res.stderr.splitlines() if "estate-gateway.service" in line]
    assert not problems, res.stderr
