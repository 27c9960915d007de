"""Shared fixtures: a real mosquitto, the daemon as a subprocess, MQTT subscribers.

Everything binds free ports so tests can run side by side.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import resource
import shutil
import signal
import ssl
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import paho.mqtt.client as mqtt
import pytest
from hypothesis import settings as hypothesis_settings
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent

# Property tests are repeatable in `make test` (CI must not turn red on a new random draw): the same
# examples every run. `HYPOTHESIS_PROFILE=explore` draws fresh ones, for looking for new bugs on purpose.
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None, deadline=None)
hypothesis_settings.register_profile("explore", max_examples=1000, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
BIN = Path(sys.executable).parent / "estate-gateway"
ROLES = ("operator", "technician", "central", "admin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_pair() -> int:
    """A free port whose +1000 neighbour (the OSDP simulator's own control port) is free too."""
    for _ in range(50):
        port = free_port()
        if port + 1000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


class LineServer:
    """A serial reader's line as a TCP "serial port" the gateway opens (``socket://``); the test writes into it."""

    def __init__(self) -> None:
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.conn: socket.socket | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.conn, _ = self.srv.accept()

    def send(self, data: bytes) -> None:
        wait_until(lambda: self.conn is not None, 10, what="reader connected")
        assert self.conn is not None
        self.conn.sendall(data)

    def close(self) -> None:
        for s in (self.conn, self.srv):
            if s is not None:
                s.close()


def wait_until(pred: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def until(pred: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """``wait_until`` for in-process tests: polls ``pred`` on the event loop, so the gateway keeps running."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def two_osdp_readers_site(sim_url: str, output: int = 0) -> str:
    """Building 3: unit 1 entrance on OSDP address 0 and the main gate on address 1 of one simulated bus."""
    return f"""
[[readers]]
id = "r-b3u1"
driver = "osdp"
port = "{sim_url}"
address = 0

[[readers]]
id = "r-b3main"
driver = "osdp"
port = "{sim_url}"
address = 1

[[doors]]
id = "b3-u1"
name = "Building 3 unit 1 entrance"
building = "3"
unit = "3-1"
reader = "r-b3u1"
output = {output}
unlock_s = 2

[[doors]]
id = "b3-main"
name = "Building 3 main gate"
building = "3"
reader = "r-b3main"
output = {output}
"""


def token_for(role: str) -> str:
    return f"test-token-{role}"


def tokens_toml() -> str:
    import hashlib

    out = []
    for role in ROLES:
        digest = hashlib.sha256(token_for(role).encode()).hexdigest()
        out.append(f'[[api.tokens]]\nname = "test-{role}"\nrole = "{role}"\nsha256 = "{digest}"\n')
    return "\n".join(out)


# ---------------------------------------------------------------------- mosquitto
def mosquitto_user_line() -> str:
    """``user <whoever runs this>``: started as root, mosquitto drops to user "mosquitto", who can neither read
    nor write our 0700 temp dirs (certificates, password files, its own saved sessions)."""
    return f"user {getpass.getuser()}\n"


class Mosquitto:
    """A real broker on a free port; stop()/start() keep the port (outage tests)."""

    def __init__(self, workdir: Path, port: int | None = None, extra_conf: str = "") -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.conf = workdir / f"mosquitto-{self.port}.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             f"max_queued_messages 0\nmax_inflight_messages 0\n"
                             # sessions survive a broker restart (outage tests): subscribers miss nothing
                             f"persistence true\npersistence_location {workdir}/\n"
                             f"persistence_file mosquitto-{self.port}.db\n"
                             f"{mosquitto_user_line()}{extra_conf}")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"mosquitto-{self.port}.log"

    @staticmethod
    def binary() -> str:
        path = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(path).exists():
            pytest.skip("mosquitto is not installed (make test installs it)")
        return path

    def start(self) -> "Mosquitto":
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([self.binary(), "-c", str(self.conf)], stdout=logf, stderr=subprocess.STDOUT)
        wait_until(self._listening, 10, what=f"mosquitto on {self.port}")
        return self

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path).start()
    yield broker
    broker.stop()


# ---------------------------------------------------------------------- MQTT helpers
class Subscriber:
    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        # a persistent session: messages published while this subscriber reconnects are kept for it
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-sub-{time.monotonic_ns()}",
                                  clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("test subscriber could not subscribe")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            payload: Any = json.loads(msg.payload)
        except ValueError:
            payload = msg.payload
        with self._lock:
            self.messages.append((msg.topic, payload))

    def snapshot(self) -> list[tuple[str, Any]]:
        with self._lock:
            return list(self.messages)

    def wait_for(self, pred: Callable[[str, Any], bool], timeout: float = 10.0) -> tuple[str, Any]:
        def find() -> Any:
            for topic, payload in self.snapshot():
                if pred(topic, payload):
                    return (topic, payload)
            return None

        return wait_until(find, timeout, what="an MQTT message")

    def close(self) -> None:
        # disconnect first: it wakes the network thread, which then ends at once; loop_stop() first would wait
        # out the thread's 1 s select timeout
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def osdp_reader() -> Iterator[Any]:
    """A libosdp reader (PD at address 0) on a socket: the door's reader for tests that need one."""
    from drivers.sim.osdp_reader import OsdpReaderSim

    s = OsdpReaderSim([0]).start()
    yield s
    s.stop()


@pytest.fixture
def mqtt_sub() -> Iterator[Callable[[int, str], Subscriber]]:
    subs: list[Subscriber] = []

    def make(port: int, topic: str) -> Subscriber:
        s = Subscriber(port, topic)
        subs.append(s)
        return s

    yield make
    for s in subs:
        s.close()


def mqtt_pub(port: int, topic: str, payload: Any, qos: int = 1) -> None:
    """Publish one message and wait for the broker's ack."""
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{time.monotonic_ns()}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, body, qos=qos).wait_for_publish(10)
    finally:
        client.disconnect()  # before loop_stop(), which would otherwise wait out the thread's 1 s select timeout
        client.loop_stop()


@pytest.fixture(name="mqtt_pub")
def mqtt_pub_fixture() -> Callable[..., None]:
    return mqtt_pub


# ---------------------------------------------------------------------- the daemon
def config_text(data_dir: Path, mqtt_port: int, http_port: int, extra: str = "", *, gateway_id: str = "gw-test",
                mqtt_extra: str = "", api_extra: str = "") -> str:
    return (f'[gateway]\nid = "{gateway_id}"\nsite = "test-site"\ndata_dir = "{data_dir}"\n\n'
            f'[mqtt]\nurl = "mqtt://127.0.0.1:{mqtt_port}"\n{mqtt_extra}\n'
            f'[api]\nlisten = "127.0.0.1:{http_port}"\n{api_extra}\n{tokens_toml()}\n{extra}\n')


def own_fd_room(need: int) -> str | None:
    """Raise this process's soft fd limit to ``need`` (None), or say why it cannot. As root the hard limit
    is raised too: a flood test must not skip for want of a limit root can lift."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return None
    if hard != resource.RLIM_INFINITY and hard < need:
        if os.geteuid() != 0:
            return f"this process may open {hard} files, the test needs {need}"
        hard = need
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    except (ValueError, OSError) as exc:
        return f"cannot raise the fd limit to {need}: {exc}"
    return None


def need_fd_room(need: int) -> None:
    """:func:`own_fd_room`, or skip -- but fail under CI (``CI`` set), where a skipped flood test would hide."""
    reason = own_fd_room(need)
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: not skipping)")
    pytest.skip(reason)


#: a door with a loop-back serial reader: the site the MQTT and access tests act on
DOOR_SITE = """
[[readers]]
id = "r1"
driver = "serial-ascii"
port = "loop://"

[[doors]]
id = "d1"
building = "3"
reader = "r1"
"""


class GatewayProc:
    """The daemon as a subprocess: ``extra`` is appended to the config, ``api_extra`` goes into ``[api]``,
    ``nofile`` = (soft, hard) fd limit (or one number for both) it is started under."""

    def __init__(self, workdir: Path, mqtt_port: int, extra: str = "", *, mqtt_extra: str = "",
                 env: dict[str, str] | None = None, api_extra: str = "",
                 nofile: int | tuple[int, int] | None = None) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "var"
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        #: what httpx checks the server certificate against (the site CA's file when testing HTTPS)
        self.verify: ssl.SSLContext | bool = True
        self.config_path = workdir / "gateway.toml"
        self.config_path.write_text(config_text(self.data_dir, mqtt_port, self.http_port, extra, mqtt_extra=mqtt_extra,
                                                api_extra=api_extra))
        self.nofile = (nofile, nofile) if isinstance(nofile, int) else nofile
        self.topic_root = "estate/test-site/gw-test"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "gateway.log"

    def token(self, role: str) -> str:
        return token_for(role)

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(role)}"}

    def start(self, wait: bool = True) -> "GatewayProc":
        logf = open(self.log, "ab")
        nofile = self.nofile

        def fd_limited() -> None:   # preexec_fn: the fd limit of a unit without LimitNOFILE
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

        self.proc = subprocess.Popen([str(BIN), "run", "-c", str(self.config_path)], stdout=logf,
                                     stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir,
                                     preexec_fn=fd_limited if nofile is not None else None)
        if wait:
            wait_until(self._healthy, 30, what=f"gateway health (log: {self.log})")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"gateway exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/api/v1/health", timeout=1, verify=self.verify).status_code == 200
        except httpx.HTTPError:
            return False

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/api/v1/health", timeout=5, verify=self.verify).json()

    def get(self, path: str, role: str = "admin", **kw: Any) -> httpx.Response:
        headers = {**self.headers(role), **kw.pop("headers", {})}
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=10, verify=self.verify, **kw)

    def events_of_type(self, type_: str) -> list[dict[str, Any]]:
        """The local event log's events of one type (the newest 1,000 looked at), as an operator reads it."""
        r = self.get("/api/v1/events?limit=1000", role="operator")
        assert r.status_code == 200, r.text
        return [e for e in r.json()["items"] if e["type"] == type_]

    def post(self, path: str, role: str = "admin", **kw: Any) -> httpx.Response:
        headers = {**self.headers(role), **kw.pop("headers", {})}
        return httpx.post(f"{self.url}{path}", headers=headers, timeout=10, verify=self.verify, **kw)

    def stop(self, timeout: float = 20) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("gateway did not stop on SIGTERM")
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@pytest.fixture
def gateway_factory(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Callable[..., GatewayProc]]:
    procs: list[GatewayProc] = []

    def make(extra: str = "", *, start: bool = True, **kw: Any) -> GatewayProc:
        workdir = tmp_path / f"gw{len(procs)}"
        workdir.mkdir()
        gw = GatewayProc(workdir, mosquitto.port, extra, **kw)
        procs.append(gw)
        if start:
            gw.start()
        return gw

    yield make
    for gw in procs:
        try:
            gw.stop()
        except AssertionError:
            pass


# ---------------------------------------------------------------------- in-process
def make_config(tmp_path: Path, extra_toml: str = "", *, mqtt_port: int = 1883) -> Any:
    """A validated GatewayConfig for in-process tests (data in tmp_path/var)."""
    from gateway.config import load_config

    path = tmp_path / "gateway.toml"
    path.write_text(config_text(tmp_path / "var", mqtt_port, free_port(), extra_toml))
    return load_config(path)
