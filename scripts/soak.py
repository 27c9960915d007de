"""Soak and chaos: an hour of a busy site compressed into a few minutes (``make soak``).

Real parts only: mosquitto, the daemon (``estate-gateway run``), simulated hardware
(``estate-gateway simulate``: OSDP readers, Modbus meters, a SIA DC-09 panel) plus extra
load from here: card swipes on the readers' control ports, alarms from a second DC-09
panel, bursts of test events over HTTP, operators acknowledging alarms.

Chaos, at random points: broker stopped and started, hardware unplugged (reader cable cut,
the whole simulator killed = readers, meter bus and panel gone), ``kill -9`` of the daemon
and a restart, and (as root, on a small tmpfs) the disk nearly full for a while.

Two phases: CHAOS (everything, kills included) then WATCH (load, flaps and unplugs but no
kills: one daemon lifetime, sampled for RSS and open files). At the end, with everything
reconnected and the outbox empty, the daemon is stopped and the checks run:

  * every event in the daemon's log (every recorded id) reached the central subscriber;
  * ``seq`` is gap free; SQLite ``PRAGMA integrity_check`` is ok;
  * RSS flat and no file descriptor growth during WATCH.

Writes bench/results/soak.json; exit 0 only if every check passed.
    SOAK_MINUTES=5 .venv/bin/python scripts/soak.py
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import BIN, Mosquitto, free_port, token_for, tokens_toml  # noqa: E402

MINUTES = float(os.environ.get("SOAK_MINUTES", "5"))
SEED = int(os.environ.get("SOAK_SEED", str(int(time.time()))))
CHAOS_SHARE = 0.6
GATEWAY_ID, SITE = "gw-soak", "soak-site"
ROOT_TOPIC = f"estate/{SITE}/{GATEWAY_ID}"
# 26-bit ids: the bits MSB first, padded with zero bits to 4 bytes (see the contract, card ids)
CARDS = [f"26:{(0x0281000 + i * 0x2041) << 6:08x}" for i in range(12)]
UNKNOWN_CARDS = [f"26:{(0x0c03000 + i * 0x1111) << 6:08x}" for i in range(4)]
HOLDER_MARK = "Soak Holder"  # card holder names: personal data, never in logs or MQTT events
RSS_GROWTH_LIMIT_MB = float(os.environ.get("SOAK_RSS_LIMIT_MB", "15"))
FD_GROWTH_LIMIT = 3

log_lines: list[str] = []


def say(msg: str) -> None:
    line = f"{time.strftime('%H:%M:%S')} {msg}"
    log_lines.append(line)
    print(line, flush=True)


# ---------------------------------------------------------------------- the site
def free_port_pair() -> int:
    """A free port p whose control port p+1000 is free too (the OSDP simulator's convention)."""
    for _ in range(200):
        p = free_port()
        if p + 1000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 1000))
                return p
            except OSError:
                continue
    raise RuntimeError("no free port pair")


def site_config(data_dir: Path, mqtt_port: int, http_port: int, osdp: list[int], modbus: int, dc09: int) -> str:
    readers = "".join(f'[[readers]]\nid = "r{i}"\ndriver = "osdp"\nport = "socket://127.0.0.1:{p}"\n\n'
                      for i, p in enumerate(osdp, 1))
    doors = "".join(f'[[doors]]\nid = "d{i}"\nname = "Door {i}"\nbuilding = "1"\nreader = "r{i}"\nunlock_s = 1\n'
                    f'held_open_s = 20\n\n' for i in range(1, len(osdp) + 1))
    meters = "".join(f'[[meters]]\nid = "hw-{i}"\nbus = "mb1"\ndevice_id = {i}\nprofile = "generic-hot-water"\n'
                     f'unit = "1-1-{i:04d}"\npoll_s = 1\n\n' for i in range(1, 7))
    return (f'[gateway]\nid = "{GATEWAY_ID}"\nsite = "{SITE}"\ndata_dir = "{data_dir}"\n\n'
            f'[mqtt]\nurl = "mqtt://127.0.0.1:{mqtt_port}"\nkeepalive_s = 5\n\n'
            f'[api]\nlisten = "127.0.0.1:{http_port}"\n\n{tokens_toml()}\n'
            f'[outbox]\nmax_events = 500000\n\n[store]\nbackup_interval_h = 0.02\nbackup_keep = 2\n\n'
            f'{readers}{doors}'
            f'[[buses]]\nid = "mb1"\ntransport = "tcp"\nport = "127.0.0.1:{modbus}"\ntimeout_s = 0.5\n\n{meters}'
            f'[[alarm_receivers]]\nid = "panel"\nprotocol = "sia-dc09"\nlisten = "127.0.0.1:{dc09}"\n'
            f'accounts = ["1234"]\n\n'
            f'[[alarm_zones]]\nreceiver = "panel"\nzone = 12\nbuilding = "1"\nname = "Stairwell smoke"\n'
            f'unlock_doors = ["d1"]\n')


class Proc:
    """A child process with a log file; restartable."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.argv, self.log, self.env = name, argv, log, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})})

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int, wait: float = 30) -> int | None:
        if not self.alive:
            return None
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


# ---------------------------------------------------------------------- central
class Central:
    """The office system: a persistent-session subscriber keeping every event id it saw."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.ids: dict[str, int] = {}
        self.duplicates = 0
        self.personal_data_leaks = 0  # events carrying a card holder's name
        self.lock = threading.Lock()
        ready = threading.Event()
        c = self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="soak-central", clean_session=False)
        c.max_inflight_messages_set(0)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(f"{ROOT_TOPIC}/event/#", qos=1)
        c.on_subscribe = lambda *a: ready.set()
        c.on_message = self._on_message
        c.reconnect_delay_set(0.2, 1)
        c.connect_async("127.0.0.1", port)
        c.loop_start()
        if not ready.wait(15):
            raise RuntimeError("central could not subscribe")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        env = json.loads(msg.payload)
        leak = HOLDER_MARK.encode() in msg.payload
        with self.lock:
            self.personal_data_leaks += leak
            if env["id"] in self.ids:
                self.duplicates += 1
            else:
                self.ids[env["id"]] = int(env["seq"])

    def count(self) -> int:
        with self.lock:
            return len(self.ids)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# ---------------------------------------------------------------------- the soak
class Soak:
    def __init__(self, work: Path, data_dir: Path, small_disk: Path | None) -> None:
        self.work = work
        self.data_dir = data_dir
        self.small_disk = small_disk
        self.rng = random.Random(SEED)
        self.broker = Mosquitto(work)
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}/api/v1"
        self.osdp = [free_port_pair(), free_port_pair()]
        self.modbus, self.dc09 = free_port(), free_port()
        self.config = work / "gateway.toml"
        self.config.write_text(site_config(data_dir, self.broker.port, self.http_port, self.osdp, self.modbus,
                                           self.dc09))
        self.daemon = Proc("daemon", [str(BIN), "run", "-c", str(self.config)], work / "daemon.log")
        self.sim = Proc("simulate", [str(BIN), "simulate", "-c", str(self.config)], work / "simulate.log")
        self.counts: dict[str, int] = {k: 0 for k in (
            "kills", "restarts", "broker_flaps", "sim_restarts", "reader_unplugs", "swipes", "swipes_failed",
            "test_events_requested", "alarms_sent", "alarms_acked", "disk_full_phases", "http_errors")}
        self.watch: list[dict[str, float]] = []
        self.disk_full_now = False
        self.http_5xx: list[dict[str, Any]] = []  # (route, status, during a disk-full phase?)
        self.stop_load = asyncio.Event()
        self.phase = "start"
        self.final_health: dict[str, Any] = {}

    # -- lifecycle helpers
    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(role)}"}

    async def healthy(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                if not self.daemon.alive:
                    raise RuntimeError(f"daemon exited: see {self.daemon.log}")
                try:
                    r = await http.get(f"{self.url}/health")
                    if r.status_code == 200:
                        return r.json()
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("daemon did not become healthy")

    async def start_daemon(self) -> None:
        self.daemon.start()
        await self.healthy()

    # -- load
    async def swipes(self) -> None:
        """Card swipes at both doors, known and unknown cards, ~5 per second."""
        while not self.stop_load.is_set():
            port = self.rng.choice(self.osdp) + 1000
            card = self.rng.choice(CARDS + UNKNOWN_CARDS)
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
                writer.write(f"swipe {card}\n".encode())
                await writer.drain()
                await asyncio.wait_for(reader.readline(), 2)
                writer.close()
                self.counts["swipes"] += 1
            except (OSError, asyncio.TimeoutError):
                self.counts["swipes_failed"] += 1  # simulator down (chaos): the swipe never happened
            await asyncio.sleep(self.rng.uniform(0.05, 0.35))

    async def test_bursts(self) -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            while not self.stop_load.is_set():
                n = self.rng.randint(20, 400)
                try:
                    r = await http.post(f"{self.url}/test-events", json={"count": n}, headers=self.headers())
                    if r.status_code == 202:
                        self.counts["test_events_requested"] += n
                    else:
                        self.note_status("POST /test-events", r.status_code)
                except httpx.HTTPError:
                    pass  # daemon down (chaos)
                await asyncio.sleep(self.rng.uniform(0.5, 3))

    async def alarms(self) -> None:
        """A second DC-09 panel raising and restoring alarms; operators acknowledge them."""
        from drivers.sim.alarm_panel import Dc09Panel

        panel = Dc09Panel("127.0.0.1", self.dc09, account="1234", timeout_s=3)
        async with httpx.AsyncClient(timeout=5) as http:
            while not self.stop_load.is_set():
                code = self.rng.choice([110, 130, 301, 602, 120])
                zone = self.rng.choice([12, 3, 7])
                try:
                    await panel.send("ADM-CID", f"1{code:03d} 01 {zone:03d}")
                    self.counts["alarms_sent"] += 1
                    await asyncio.sleep(self.rng.uniform(0.5, 3))
                    await panel.send("ADM-CID", f"3{code:03d} 01 {zone:03d}")
                except (OSError, asyncio.TimeoutError, TimeoutError):
                    await panel.close()
                try:
                    r = await http.get(f"{self.url}/alarms", params={"state": "unacknowledged"}, headers=self.headers("operator"))
                    if r.status_code == 200:
                        for alarm in r.json().get("items", [])[:5]:
                            a = await http.post(f"{self.url}/alarms/{alarm['id']}/ack", json={"note": "soak"},
                                                headers=self.headers("operator"))
                            self.counts["alarms_acked"] += a.status_code == 200
                            self.note_status("POST /alarms/{id}/ack", a.status_code)
                except (httpx.HTTPError, KeyError, TypeError, ValueError):
                    pass
                await asyncio.sleep(self.rng.uniform(1, 4))
        await panel.close()

    def note_status(self, route: str, status: int) -> None:
        if status >= 500:
            self.counts["http_errors"] += 1
            self.http_5xx.append({"route": route, "status": status, "disk_full": self.disk_full_now,
                                  "phase": self.phase})

    async def issue_cards(self) -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            for i, card in enumerate(CARDS):
                r = await http.post(f"{self.url}/cards", headers=self.headers(), json={
                    "card": card, "unit": f"1-1-{i + 1:04d}", "holder": f"{HOLDER_MARK} {i}",
                    "holder_kind": "resident", "doors": ["d1", "d2"]})
                if r.status_code not in (201, 409):
                    say(f"issuing {card}: HTTP {r.status_code} {r.text[:200]}")

    # -- chaos
    async def chaos(self, until: float, kills: bool) -> None:
        while time.monotonic() < until:
            await asyncio.sleep(self.rng.uniform(4, 12))
            if time.monotonic() >= until:
                return
            choices = ["flap", "unplug", "sim"] + (["kill", "kill"] if kills else []) + \
                      (["disk"] if kills and self.small_disk is not None else [])
            what = self.rng.choice(choices)
            try:
                await getattr(self, f"do_{what}")()
            except Exception as exc:  # noqa: BLE001 - report and go on, the checks decide
                say(f"chaos {what} failed: {exc!r}")

    async def do_flap(self) -> None:
        down = self.rng.uniform(1, 6)
        say(f"broker down for {down:.1f} s")
        self.broker.stop()
        await asyncio.sleep(down)
        self.broker.start()
        self.counts["broker_flaps"] += 1

    async def do_unplug(self) -> None:
        port = self.rng.choice(self.osdp) + 1000
        down = self.rng.uniform(1, 5)
        say(f"reader cable on :{port - 1000} cut for {down:.1f} s")
        await self._control(port, "unplug")
        await asyncio.sleep(down)
        await self._control(port, "plug")
        self.counts["reader_unplugs"] += 1

    async def _control(self, port: int, line: str) -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 3)
        writer.write(f"{line}\n".encode())
        await writer.drain()
        await asyncio.wait_for(reader.readline(), 3)
        writer.close()

    async def do_sim(self) -> None:
        down = self.rng.uniform(1, 5)
        say(f"all hardware (readers, meter bus, panel) gone for {down:.1f} s")
        self.sim.signal(signal.SIGKILL)
        await asyncio.sleep(down)
        self.sim.start()
        self.counts["sim_restarts"] += 1

    async def do_kill(self) -> None:
        say("kill -9 of the daemon")
        self.daemon.signal(signal.SIGKILL)
        self.counts["kills"] += 1
        await asyncio.sleep(self.rng.uniform(0, 2))
        await self.start_daemon()
        self.counts["restarts"] += 1

    async def do_disk(self) -> None:
        assert self.small_disk is not None
        ballast = self.small_disk / "ballast"
        free = shutil.disk_usage(self.small_disk).free
        leave = 64_000
        say(f"disk nearly full: {free // 1_000_000} MB free -> {leave // 1000} kB for 12 s")
        self.disk_full_now = True
        with open(ballast, "wb") as f:
            chunk = b"\0" * (1 << 20)
            remaining = free - leave
            while remaining > 0:
                f.write(chunk[: min(len(chunk), remaining)])
                remaining -= len(chunk)
        await asyncio.sleep(12)
        ballast.unlink()
        await asyncio.sleep(1)  # answers to requests made while it was full
        self.disk_full_now = False
        self.counts["disk_full_phases"] += 1
        if not self.daemon.alive:
            say("daemon exited on the full disk; restarting")
            await self.start_daemon()
            self.counts["restarts"] += 1

    # -- watching
    async def sample(self, until: float) -> None:
        """RSS and open files of the daemon (one lifetime: no kills in this phase)."""
        assert self.daemon.proc is not None
        pid = self.daemon.proc.pid
        p = psutil.Process(pid)
        t0 = time.monotonic()
        while time.monotonic() < until:
            if not self.daemon.alive or self.daemon.proc.pid != pid:
                raise RuntimeError("the daemon died during the watch phase")
            self.watch.append({"t": round(time.monotonic() - t0, 1), "rss_mb": round(p.memory_info().rss / 1e6, 2),
                               "fds": p.num_fds(), "threads": p.num_threads()})
            await asyncio.sleep(3)

    # -- the run
    async def run(self) -> dict[str, Any]:
        total = MINUTES * 60
        self.broker.start()
        central = Central(self.broker.port)
        self.sim.start()
        await asyncio.sleep(1.5)
        await self.start_daemon()
        await self.issue_cards()
        load = [asyncio.create_task(c()) for c in (self.swipes, self.test_bursts, self.alarms)]
        t0 = time.monotonic()
        chaos_end = t0 + total * CHAOS_SHARE
        self.phase = "chaos"
        say(f"CHAOS phase for {total * CHAOS_SHARE:.0f} s (seed {SEED})")
        await self.chaos(chaos_end, kills=True)
        self.phase = "watch"
        # the watch phase starts with a fresh daemon lifetime, warmed up for a few seconds
        if not self.daemon.alive:
            await self.start_daemon()
        watch_end = time.monotonic() + total * (1 - CHAOS_SHARE)
        say(f"WATCH phase for {total * (1 - CHAOS_SHARE):.0f} s (no kills; RSS and fds sampled)")
        await asyncio.gather(self.chaos(watch_end, kills=False), self.sample(watch_end))
        self.stop_load.set()
        await asyncio.gather(*load, return_exceptions=True)
        say("load stopped; waiting for the outbox to drain")
        if not self.broker.proc:
            self.broker.start()
        if not self.sim.alive:
            self.sim.start()
        drained = await self.wait_drained(central)
        rc = self.daemon.signal(signal.SIGTERM)
        self.sim.signal(signal.SIGTERM)
        await asyncio.sleep(1)
        result = self.verify(central, drained, rc)
        central.close()
        self.broker.stop()
        return result

    def outbox_rows(self) -> int:
        """The truth about the outbox: its rows in the database (read-only, beside the daemon)."""
        conn = sqlite3.connect(f"file:{self.data_dir / 'gateway.db'}?mode=ro", uri=True, timeout=10)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        finally:
            conn.close()

    async def wait_drained(self, central: Central) -> bool:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            h = await self.healthy()
            if h["uplink"]["connected"] and self.outbox_rows() == 0:
                await asyncio.sleep(2)  # the last messages on their way to central
                self.final_health = await self.healthy()
                return True
            await asyncio.sleep(0.5)
        self.final_health = await self.healthy()
        return False

    def verify(self, central: Central, drained: bool, stop_rc: int | None) -> dict[str, Any]:
        db = self.data_dir / "gateway.db"
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        rows = conn.execute("SELECT seq, id, type FROM events ORDER BY seq").fetchall()
        outbox_left = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        conn.close()
        seqs = [r[0] for r in rows]
        gaps = [s for a, s in zip(seqs, seqs[1:]) if s != a + 1]
        by_type: dict[str, int] = {}
        for _, _, t in rows:
            by_type[t] = by_type.get(t, 0) + 1
        with central.lock:
            seen = dict(central.ids)
        missing = [(seq, ev_id, t) for seq, ev_id, t in rows if ev_id not in seen]
        daemon_log = self.daemon.log.read_text(errors="replace")
        log_leaks = daemon_log.count(HOLDER_MARK) + sum(daemon_log.count(token_for(r))
                                                        for r in ("operator", "technician", "central", "admin"))
        first_watch = self.watch[: max(1, len(self.watch) // 4)]
        last_watch = self.watch[-max(1, len(self.watch) // 4):]
        rss_growth = (max(s["rss_mb"] for s in last_watch) - max(s["rss_mb"] for s in first_watch)) if self.watch else 0
        # floor against floor: sockets come and go with the chaos (a reader unplugged has none for a while);
        # a leak raises the floor
        fd_growth = (min(s["fds"] for s in last_watch) - min(s["fds"] for s in first_watch)) if self.watch else 0
        checks = {
            "every_event_delivered": not missing,
            "seq_gap_free": not gaps and (not seqs or seqs[0] == 1),
            "integrity_check_ok": integrity == "ok",
            "outbox_drained": drained and outbox_left == 0,
            "clean_stop": stop_rc == 0,
            "rss_flat": rss_growth <= RSS_GROWTH_LIMIT_MB,
            "no_fd_growth": fd_growth <= FD_GROWTH_LIMIT,
            # a full disk may fail a write (5xx); anything else may not
            "no_http_5xx_unless_disk_full": not [e for e in self.http_5xx if not e["disk_full"]],
            # /health and the outbox_depth gauge agree with the database after all that
            "outbox_gauge_matches_db": self.final_health.get("outbox", {}).get("depth") == outbox_left,
            "no_names_or_tokens_in_log": log_leaks == 0,
            "no_names_in_mqtt_events": central.personal_data_leaks == 0,
        }
        return {
            "benchmark": "soak", "minutes": MINUTES, "seed": SEED, "passed": all(checks.values()), "checks": checks,
            "events_recorded": len(rows), "events_delivered": len(seen), "duplicates_at_central": central.duplicates,
            "missing": missing[:20], "missing_count": len(missing), "seq_gaps": gaps[:20], "integrity_check": integrity,
            "events_by_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
            "http_5xx": self.http_5xx[:50],
            "final_health_outbox": self.final_health.get("outbox"),
            "chaos": self.counts, "disk_full_tested": self.small_disk is not None,
            "disk_full_log_lines": sum(("disk is full" in line or "No space left" in line)
                                       for line in daemon_log.splitlines()),
            "watch": {"samples": len(self.watch), "rss_growth_mb": round(rss_growth, 2), "fd_growth": fd_growth,
                      "rss_mb_first": self.watch[0]["rss_mb"] if self.watch else None,
                      "rss_mb_last": self.watch[-1]["rss_mb"] if self.watch else None,
                      "fds_first": self.watch[0]["fds"] if self.watch else None,
                      "fds_last": self.watch[-1]["fds"] if self.watch else None,
                      "series": self.watch},
            "log": log_lines[-200:],
        }


def small_tmpfs(path: Path, size_mb: int = 192) -> bool:
    """As root: a small tmpfs for the data dir, so "disk nearly full" can be made real."""
    if os.geteuid() != 0 or os.environ.get("SOAK_NO_TMPFS"):
        return False
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "soak-data", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        say(f"no small disk for the disk-full test ({r.stderr.strip()}); skipping that part")
        return False
    return True


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="egw-soak-"))
    disk = work / "disk"
    mounted = small_tmpfs(disk)
    data_dir = disk / "var" if mounted else work / "var"
    say(f"soak for {MINUTES} min in {work} (data on {'a 192 MB tmpfs' if mounted else 'the work dir'})")
    soak = Soak(work, data_dir, disk if mounted else None)
    try:
        result = asyncio.run(soak.run())
    finally:
        soak.daemon.signal(signal.SIGKILL)
        soak.sim.signal(signal.SIGKILL)
        soak.broker.stop()
    out = ROOT / "bench" / "results" / "soak.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    daemon_log = soak.daemon.log.read_text(errors="replace")
    tracebacks = daemon_log.count("Traceback")
    if tracebacks:
        say(f"the daemon log has {tracebacks} tracebacks ({result['disk_full_log_lines']} lines about the full disk): "
            f"{soak.daemon.log}")
    if mounted:
        shutil.copytree(data_dir, work / "var-after", dirs_exist_ok=True)
        subprocess.run(["umount", str(disk)], check=False)
    summary = {k: result[k] for k in ("passed", "events_recorded", "events_delivered", "missing_count",
                                      "duplicates_at_central", "integrity_check")}
    print(json.dumps({**summary, "checks": result["checks"], "chaos": result["chaos"],
                      "watch": {k: v for k, v in result["watch"].items() if k != "series"}}, indent=2))
    print(f"wrote {out}; logs in {work}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
