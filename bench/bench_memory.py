"""Idle memory benchmark: the real daemon's resident memory with every area loaded, and where it goes.

Issue 20 asks for idle RSS at or under 60 MB "with the console and every area loaded" and for what the rest
is. This runs ``estate-gateway run`` (the installed entry point, as systemd does) against a real mosquitto with
a config that starts every area and every driver: OSDP, serial-ASCII and Wiegand readers with doors, a Modbus
relay board, Modbus TCP and CJ/T 188 meters, DC-09, Contact ID and GB/T 26875 alarm receivers, the console and
the commissioning walk, the API. The console is signed in to and its duty page, the commissioning page and
then the daemon is left idle; last the OpenAPI schema is fetched once (FastAPI keeps it) and RSS read again.

Reported (MB = 10^6 bytes, as psutil and the other benches report it):
  * idle RSS (median of SAMPLES, one a second after IDLE_S of quiet) at ready, after the console visit (the
    figure), after /openapi.json; /proc/PID/smaps_rollup;
  * the resident memory by mapping: Python's heap (anonymous and [heap]), each shared library, stacks;
  * threads (by name) and SQLite connections (open gateway.db descriptors);
  * the import breakdown (bench/memory_imports.py): a fresh interpreter importing what the daemon imports, group by group, in the
    daemon's order, RSS after each -- the interpreter, OpenSSL (asyncio imports ssl), pydantic, FastAPI,
    uvicorn, paho, the gateway's core and each area, the API, the uplink, each driver's library -- and
    the runtime rest (daemon RSS minus that total: threads, SQLite connections, the app's objects);
  * what the stand-ins and lazy imports save: RSS of loading each skipped module on top (pydantic.v1,
    uvicorn's command line, difflib, ctypes).

Sizes by env var: IDLE_S (default 5), SAMPLES (default 5), RUNS (default 3 daemon starts). Writes
bench/results/memory.json. Not part of `make test`; tests/e2e/test_benches.py runs it tiny.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from benchkit import write_results  # noqa: E402

from conftest import GatewayProc, Mosquitto, free_port, wait_until  # noqa: E402

IDLE_S = float(os.environ.get("IDLE_S", "5"))
SAMPLES = int(os.environ.get("SAMPLES", "5"))
RUNS = int(os.environ.get("RUNS", "3"))
MB = 1e6


def every_area() -> str:
    """A site with every area and every driver configured (ports that nothing answers on: idle hardware)."""
    return f'''
[[readers]]
id = "r-osdp"
driver = "osdp"
port = "socket://127.0.0.1:{free_port()}"
[[readers]]
id = "r-ascii"
driver = "serial-ascii"
port = "loop://"
[[readers]]
id = "r-wiegand"
driver = "wiegand-serial"
port = "loop://"
[[doors]]
id = "d-osdp"
reader = "r-osdp"
building = "1"
[[doors]]
id = "d-ascii"
reader = "r-ascii"
building = "1"
[[doors]]
id = "d-bikes"
reader = "r-wiegand"
building = "1"
egress = false
output = {{ bus = "relays", device_id = 1, coil = 0 }}
[[buses]]
id = "relays"
transport = "tcp"
port = "127.0.0.1:{free_port()}"
[[buses]]
id = "mb"
transport = "tcp"
port = "127.0.0.1:{free_port()}"
[[buses]]
id = "cj"
transport = "serial"
port = "loop://"
[[meters]]
id = "m-modbus"
bus = "mb"
device_id = 1
profile = "generic-hot-water"
unit = "1-101"
[[meters]]
id = "m-cjt188"
bus = "cj"
protocol = "cjt188"
address = "78330011223344"
unit = "1-102"
[[alarm_receivers]]
id = "dc09"
protocol = "sia-dc09"
listen = "127.0.0.1:{free_port()}"
accounts = ["1234"]
[[alarm_receivers]]
id = "cid"
protocol = "contact-id-serial"
port = "loop://"
[[alarm_receivers]]
id = "gb"
protocol = "gb26875"
listen = "127.0.0.1:{free_port()}"
'''


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def smaps_rollup(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        if rest.strip().endswith("kB") and int(rest.split()[0]):
            out[key] = round(int(rest.split()[0]) * 1024 / MB, 2)
    return out


def by_mapping(pid: int) -> dict[str, Any]:
    """Resident MB by what is mapped: anonymous memory (Python's small-object arenas, thread arenas and
    stacks), [heap], [stack], and each file (shared libraries, the locale)."""
    rss: dict[str, int] = {}
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            name = head[5].rsplit("/", 1)[-1] if len(head) > 5 else "anonymous"
        elif line.startswith("Rss:"):
            rss[name] = rss.get(name, 0) + int(head[1])
    ranked = sorted(rss.items(), key=lambda kv: -kv[1])
    top = {k: round(v * 1024 / MB, 2) for k, v in ranked[:12]}
    top["(other mappings)"] = round(sum(v for _, v in ranked[12:]) * 1024 / MB, 2)
    return top


def sqlite_connections(pid: int) -> int:
    """Open descriptors on the database file itself: one per SQLite connection (writer and readers)."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").endswith("/gateway.db")
        except OSError:
            pass
    return n


def console_visit(gw: GatewayProc) -> dict[str, int]:
    """Sign in to the console and fetch what a duty-room screen and a commissioning tablet fetch first."""
    statuses = {}
    with httpx.Client(base_url=gw.url, timeout=30, follow_redirects=False) as client:
        statuses["login"] = client.post("/login", data={"token": gw.token("operator")}).status_code
        for path in ("/", "/api/v1/console/events", "/commissioning", "/api/v1/health"):
            statuses[path] = client.get(path, headers=gw.headers("operator") if "/api/" in path else None
                                        ).status_code
    return statuses


def idle_rss_mb(pid: int) -> float:
    """The median of SAMPLES readings a second apart, after IDLE_S of quiet."""
    time.sleep(IDLE_S)
    samples = []
    for _ in range(SAMPLES):
        samples.append(status_kb(pid, "VmRSS") * 1024 / MB)
        time.sleep(1)
    return round(statistics.median(samples), 1)


def one_daemon(work: Path, broker: Mosquitto) -> dict[str, Any]:
    gw = GatewayProc(work, broker.port, every_area())
    gw.start()
    try:
        assert gw.proc is not None
        pid = gw.proc.pid
        wait_until(lambda: gw.health()["uplink"]["connected"], 30, what="uplink connected")
        out: dict[str, Any] = {"rss_ready_mb": idle_rss_mb(pid)}
        out["console_visit_status"] = console_visit(gw)
        out["rss_idle_mb"] = idle_rss_mb(pid)
        out.update({"smaps_rollup_mb": smaps_rollup(pid), "by_mapping_mb": by_mapping(pid),
                    "threads": len(os.listdir(f"/proc/{pid}/task")), "sqlite_connections": sqlite_connections(pid),
                    "devices": len(gw.health()["devices"])})
        # the OpenAPI schema: built when first asked (never at start), then kept by FastAPI
        out["openapi_status"] = gw.get("/api/v1/openapi.json").status_code
        out["rss_after_openapi_mb"] = idle_rss_mb(pid)
        return out
    finally:
        gw.stop()


def import_breakdown(work: Path) -> dict[str, Any]:
    """The import steps in a fresh interpreter, with compiled modules as a site has them (pip compiles them at
    install; here PYTHONDONTWRITEBYTECODE may be set, and compiling from source would add the compiler's
    memory to whichever step compiles first): one warm-up run writes them under ``work``, then RUNS runs."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    runs = []
    for i in range(1 + max(1, min(RUNS, 3))):
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "memory_imports.py")], capture_output=True,
                             text=True, timeout=300, check=True, cwd=ROOT, env=env)
        if i:
            runs.append(json.loads(out.stdout))
    return min(runs, key=lambda r: r["all_imports_mb"])  # the least disturbed run (other processes, page cache)


def main() -> dict[str, Any]:
    res: dict[str, Any] = {"load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()], "unit": "MB = 10^6 bytes"}
    work = Path(tempfile.mkdtemp(prefix="egw-bench-mem-"))
    broker = Mosquitto(work).start()
    try:
        daemons = []
        for i in range(max(1, RUNS)):
            run_dir = work / f"run{i}"
            run_dir.mkdir()
            daemons.append(one_daemon(run_dir, broker))
        imports = import_breakdown(work)
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    best = min(daemons, key=lambda d: d["rss_idle_mb"])
    res["daemon"] = best
    res["rss_idle_mb_runs"] = [d["rss_idle_mb"] for d in daemons]
    res["rss_idle_mb"] = statistics.median(res["rss_idle_mb_runs"])
    res["imports"] = imports
    res["runtime_rest_mb"] = round(res["rss_idle_mb"] - imports["all_imports_mb"], 2)
    res["target_mb"] = 60
    res["meaning"] = ("rss_idle_mb: the daemon with every area and driver configured, idle after a first console "
                      "visit; imports.steps_mb: RSS added by each group of imports in a fresh interpreter; "
                      "runtime_rest_mb: the rest (threads, SQLite connections, the app's objects)")
    return res


def report(res: dict[str, Any]) -> None:
    print(f"idle RSS, every area loaded: {res['rss_idle_mb']} MB (runs {res['rss_idle_mb_runs']}, target "
          f"<= {res['target_mb']}); at ready {res['daemon']['rss_ready_mb']}, after /openapi.json "
          f"{res['daemon']['rss_after_openapi_mb']}; threads {res['daemon']['threads']}, SQLite connections "
          f"{res['daemon']['sqlite_connections']}; load {res['load_avg_1_5_15']}")
    imp = res["imports"]
    print(f"  {imp['interpreter_mb']:6.2f}  interpreter (python + site)")
    for label, mb in imp["steps_mb"].items():
        print(f"  {mb:+6.2f}  {label}")
    print(f"  {res['runtime_rest_mb']:+6.2f}  runtime (threads, SQLite connections, the app's objects)")
    for label, mb in imp["skipped_mb"].items():
        print(f"  not loaded: {mb:5.2f}  {label}")


if __name__ == "__main__":
    result = main()
    print(f"results: {write_results('memory', result)}")
    report(result)
