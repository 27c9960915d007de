"""Is a TCP port free, and if not, who holds it: the message a busy port deserves.

A console port already taken used to end ``make demo`` with uvicorn's ``Errno 98`` and make's
``Error 3`` after the demo had printed "console on :8080" -- someone else's console. Before
anything starts, ``estate-gateway run`` checks its ``[api] listen`` and ``scripts/demo.sh``
checks every port of the demo (``python -m gateway.ports -c FILE broker=127.0.0.1:18830``),
and each busy one is named with the process listening there when this user may see it
(``/proc/net/tcp*`` and ``/proc/<pid>/fd``; no root needed for one's own processes), with its
command line and ``kill PID`` -- and when it is the broker or simulator of an earlier demo that was
not stopped, it says so (moving the console and broker ports would not free the simulator's).
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from pathlib import Path
from typing import Any

_LISTEN = "0A"
#: in the command line of the demo's broker and simulator (scripts/demo.sh): a leftover demo, not a stranger
_DEMO_MARKS = (".demo-run.toml", "var/demo/mosquitto.conf")


def holder_process(port: int) -> tuple[int, str, str] | None:
    """(pid, name, command line) of the process listening on ``port``, when /proc lets us see it."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == _LISTEN and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    wanted = {f"socket:[{i}]" for i in inodes if i != "0"}
    if not wanted:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in wanted for fd in fds):
                name = Path(f"/proc/{pid}/comm").read_text().strip()
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                return int(pid), name, cmd.strip()[:200]
        except OSError:
            continue
    return None


def holder(port: int) -> str | None:
    """``"python3 (pid 1234)"`` for the process listening on ``port``, when /proc lets us see it."""
    found = holder_process(port)
    return f"{found[1]} (pid {found[0]})" if found else None


def how_to_stop(port: int) -> str | None:
    """What to do about the holder of ``port``: ``kill PID``, and whether it is a leftover demo."""
    found = holder_process(port)
    if found is None:
        return None
    pid, _name, cmd = found
    if any(mark in cmd for mark in _DEMO_MARKS):
        return f"a leftover of an earlier 'make demo' ({cmd}): stop it with: kill {pid}"
    return f"held by: {cmd}; stop it with: kill {pid} (if it is yours)"


def busy(host: str, port: int) -> str | None:
    """None when ``host:port`` can be listened on now; else why not, in words (and by whom)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as the servers do: TIME_WAIT is no owner
        try:
            s.bind((host.strip("[]") or "0.0.0.0", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return f"{host}:{port} cannot be used: {exc.strerror}"
            who = holder(port)
            return f"{host}:{port} is in use" + (f" by {who}" if who else " by another program")
    return None


def config_ports(path: str) -> list[tuple[str, str, int]]:
    """(what, host, port) of everything a config makes listen on this machine: the console, and what
    ``simulate`` serves (OSDP buses and their control ports, meter buses, alarm receivers)."""
    import tomllib

    with open(path, "rb") as f:
        raw: dict[str, Any] = tomllib.load(f)
    host, _, port = str(raw.get("api", {}).get("listen", "127.0.0.1:8080")).rpartition(":")
    out = [("console", host, int(port))]
    for r in raw.get("readers", []):
        p = _local(str(r.get("port", "")))
        if p is not None:
            out += [(f"reader {r.get('id')}", "127.0.0.1", p), (f"reader {r.get('id')} control", "127.0.0.1", p + 1000)]
    for b in raw.get("buses", []):
        p = _local(str(b.get("port", "")))
        if p is not None:
            out.append((f"meter bus {b.get('id')}", "127.0.0.1", p))
    for rc in raw.get("alarm_receivers", []):
        if rc.get("listen"):
            h, _, p2 = str(rc["listen"]).rpartition(":")
            out.append((f"alarm receiver {rc.get('id')}", h or "0.0.0.0", int(p2)))
    unique: dict[int, tuple[str, str, int]] = {}
    for item in out:
        unique.setdefault(item[2], item)
    return list(unique.values())


def _local(url: str) -> int | None:
    address = url.removeprefix("socket://").partition("?")[0]
    host, _, port = address.rpartition(":")
    return int(port) if host in ("127.0.0.1", "localhost") and port.isdigit() else None


def main(argv: list[str] | None = None) -> int:
    """``python -m gateway.ports [-c FILE] [what=HOST:PORT ...]``: exit 1 with a line per busy port."""
    ap = argparse.ArgumentParser(prog="python -m gateway.ports", description=__doc__)
    ap.add_argument("-c", "--config")
    ap.add_argument("extra", nargs="*", help="what=HOST:PORT")
    args = ap.parse_args(argv)
    todo = config_ports(args.config) if args.config else []
    for item in args.extra:
        what, _, where = item.partition("=")
        h, _, p = where.rpartition(":")
        todo.append((what, h, int(p)))
    problems = 0
    for what, h, p in todo:
        why = busy(h, p)
        if why:
            problems += 1
            print(f"{what}: {why}", file=sys.stderr)
            if (hint := how_to_stop(p)) is not None:
                print(f"    {hint}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
