"""``make demo`` stopped the way ``timeout``, a CI runner or a closed terminal stops it leaves nothing behind.

Before: SIGTERM to the demo's process group (``timeout``, a CI runner) or SIGHUP (a closed terminal)
left the simulator and mosquitto running -- they run in sessions of their own so that Ctrl-C
reaches the gateway first -- and the next ``make demo`` found its ports taken. Here the real
``scripts/demo.sh`` runs from a copy of the project's ``scripts/`` and ``config/`` (its fixed
simulator ports moved to free ones, so it never meets a real demo on this machine), the whole
process group gets the signal, and afterwards no process of that demo remains and every port is free.
A busy port is named with its holder and how to stop it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, ROOT, free_port, free_port_pair, wait_until

from gateway.ports import busy

pytestmark = pytest.mark.timeout(240)

#: the fixed ports in config/demo.toml that simulate and the gateway listen on
DEMO_PORTS = {"17001": "pair", "17002": "pair", "15020": "one", "15021": "one", "12128": "one"}


class DemoCopy:
    """scripts/demo.sh and config/ copied into a folder of its own, on free ports; .venv is the real one."""

    def __init__(self, where: Path) -> None:
        self.dir = where
        (where / "scripts").mkdir(parents=True)
        shutil.copy(ROOT / "scripts" / "demo.sh", where / "scripts" / "demo.sh")
        shutil.copytree(ROOT / "config", where / "config", ignore=shutil.ignore_patterns(".demo-run.toml"))
        (where / ".venv").symlink_to(Path(BIN).parent.parent)
        # `make demo` as the Makefile has it, minus the system packages step: make passes a SIGTERM on to
        # the script as well, so the script gets it twice (from the group and from make)
        (where / "Makefile").write_text("demo:\n\tbash scripts/demo.sh\n")
        toml = (where / "config" / "demo.toml").read_text()
        self.ports: list[int] = []
        for old, kind in DEMO_PORTS.items():
            new = free_port_pair() if kind == "pair" else free_port()
            assert f"127.0.0.1:{old}" in toml, old
            toml = toml.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
            self.ports += [new, new + 1000] if kind == "pair" else [new]
        (where / "config" / "demo.toml").write_text(toml)
        self.console, self.broker = free_port(), free_port()
        self.ports += [self.console, self.broker]
        self.log = where / "demo.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DemoCopy:
        env = {**os.environ, "EGW_PORT": str(self.console), "EGW_MQTT_PORT": str(self.broker)}
        # a process group of its own, as make/timeout/a terminal give it: the signal goes to all of it
        self.proc = subprocess.Popen(["make", "-s", "demo"], cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: "estate-gateway demo is up" in self.log.read_text() or self.proc.poll() is not None,  # type: ignore[union-attr]
                   150, interval=0.2, what="the demo up")
        assert self.proc.poll() is None, self.log.read_text()
        return self

    def processes(self) -> list[str]:
        """Every live process of this demo: started in its folder, or naming it on its command line."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z" and (cwd.startswith(str(self.dir)) or str(self.dir) in cmd):
                found.append(f"{pid}: {cmd.strip()}")
        return found

    def signal_group(self, sig: int) -> int:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)
        return self.proc.wait(60)

    def kill_leftovers(self) -> None:
        for line in self.processes():
            try:
                os.kill(int(line.split(":")[0]), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def demo(tmp_path: Path) -> Any:
    made: list[DemoCopy] = []

    def make() -> DemoCopy:
        d = DemoCopy(tmp_path / f"demo{len(made)}")
        made.append(d)
        return d

    yield make
    for d in made:
        d.kill_leftovers()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_to_the_demos_process_group_stops_all_of_it(demo: Any, sig: int) -> None:
    d = demo().start()
    running = d.processes()
    assert any("mosquitto" in p for p in running) and any("simulate" in p for p in running), running
    d.signal_group(sig)
    wait_until(lambda: not d.processes(), 30, what=f"no process of the demo left after {sig.name}: {d.processes()}")
    wait_until(lambda: all(busy("127.0.0.1", p) is None for p in d.ports), 30,
               what=f"every port of the demo free: {[busy('127.0.0.1', p) for p in d.ports]}")


def test_a_busy_port_names_its_holder_and_how_to_stop_it(demo: Any) -> None:
    d = demo()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", d.broker))
        holder.listen()
        r = subprocess.run(["bash", "scripts/demo.sh"], cwd=d.dir, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "EGW_PORT": str(d.console), "EGW_MQTT_PORT": str(d.broker)})
    assert r.returncode == 1
    assert re.search(rf"broker: 127\.0\.0\.1:{d.broker} is in use by python\S* \(pid {os.getpid()}\b", r.stderr), r.stderr
    assert f"kill {os.getpid()}" in r.stderr, r.stderr
    assert not d.processes()


def test_after_a_kill_9_the_next_demo_names_the_leftovers(demo: Any) -> None:
    """SIGKILL cannot be trapped: broker and simulator outlive it. The next start says they are leftovers."""
    d = demo().start()
    d.signal_group(signal.SIGKILL)
    leftovers = d.processes()
    assert any("mosquitto" in p for p in leftovers), leftovers
    r = subprocess.run(["make", "-s", "demo"], cwd=d.dir, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "EGW_PORT": str(d.console), "EGW_MQTT_PORT": str(d.broker)})
    assert r.returncode != 0
    broker_pid = next(p.split(":")[0] for p in leftovers if "mosquitto" in p)
    assert "a leftover of an earlier 'make demo'" in r.stderr and f"kill {broker_pid}" in r.stderr, r.stderr
    assert "an earlier 'make demo' was not stopped completely" in r.stderr, r.stderr
