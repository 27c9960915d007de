"""A simulated OSDP reader (or a bus of them) on a TCP port: real libosdp PeripheralDevices.

The gateway connects with ``port = "socket://127.0.0.1:PORT"``, exactly as it would
to an RS-485-to-TCP converter. Every PD on the simulated bus sees every byte the CP
sends (as on RS-485) and answers only to its own address.

Each reader has a door contact (input 0: 1 = open), records the commands it
received (output/relay, LED, buzzer) with a timestamp, and can be "swiped":
``swipe(card_id)`` makes it report a card read: a bit id as osdp_RAW (``fmt="wiegand"``, format
P/data/P, or ``fmt="raw"``, format not specified), an ``ascii:`` id as osdp_FMT characters (a
plain-text reader only: :mod:`drivers.sim.osdp_fmt`). ``unplug()``/``plug()`` drop and
refuse the TCP connection (a cut cable). ``no_sc=[address]`` makes a reader without
a secure channel (its osdp_PDCAP says so; libosdp's PD always offers one otherwise);
``permissive=[address]`` a reader with a key that still answers plain text (no EnforceSecure).

A tiny line-based control port lets other processes drive it (demo, browser tests)::

    swipe 26:0a1b2c40 [address]   -> ok
    door open|closed [address]    -> ok
    unplug | plug                 -> ok
    commands [address]            -> JSON list of received commands
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.cards import ascii_chars, is_ascii_id, parse_card_id
from drivers.sim.osdp_channel import PdChannel
from drivers.sim.osdp_fmt import FmtInjector, fmt_payload

log = logging.getLogger(__name__)

TICK_S = 0.002


@dataclass
class SimPd:
    """One simulated reader on the bus."""

    address: int
    scbk: bytes | None = None
    inputs: int = 1
    pd: Any = None
    rx: bytearray = field(default_factory=bytearray)
    commands: list[dict[str, Any]] = field(default_factory=list)
    door_open: bool = False
    was_online: bool = False
    sc_capable: bool = True
    permissive: bool = False


class OsdpReaderSim:
    """Simulated PDs behind one TCP port (``port=0`` picks a free one)."""

    def __init__(self, addresses: tuple[int, ...] | list[int] = (0,), *, host: str = "127.0.0.1", port: int = 0,
                 scbk: bytes | dict[int, bytes | None] | None = None, control_port: int | None = None,
                 no_sc: tuple[int, ...] | list[int] = (), permissive: tuple[int, ...] | list[int] = ()) -> None:
        self.host = host
        self.pds: dict[int, SimPd] = {}
        for a in addresses:
            key = scbk.get(a) if isinstance(scbk, dict) else scbk
            self.pds[a] = SimPd(a, key, sc_capable=a not in no_sc, permissive=a in permissive)
        self._srv = socket.socket()
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind((host, port))
        self._srv.listen(4)
        self._srv.setblocking(False)
        self.port = self._srv.getsockname()[1]
        self._conn: socket.socket | None = None
        self._plugged = True
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._control_port_wanted = control_port
        self.control_port: int | None = None
        self._control_srv: socket.socket | None = None
        self._listeners: list[Callable[[int, dict[str, Any]], None]] = []
        self.fmt = FmtInjector()

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> OsdpReaderSim:
        from osdp import Capability, LibFlag, LogLevel, PDCapabilities, PDInfo, PeripheralDevice

        for simpd in self.pds.values():
            cap = PDCapabilities([
                (Capability.OutputControl, 1, 4),
                (Capability.ContactStatusMonitoring, 1, simpd.inputs),
                (Capability.LEDControl, 1, 1),
                (Capability.AudibleControl, 1, 1),
                (Capability.CardDataFormat, 1, 1),
            ])
            flags = [LibFlag.EnforceSecure] if simpd.scbk and not simpd.permissive else []
            info = PDInfo(simpd.address, PdChannel(self, simpd), scbk=simpd.scbk, flags=flags)
            simpd.pd = PeripheralDevice(info, cap, log_level=LogLevel.Error,
                                        command_handler=self._handler(simpd))
        self._thread = threading.Thread(target=self._run, name=f"osdp-sim-{self.port}", daemon=True)
        self._thread.start()
        if self._control_port_wanted is not None:
            self._start_control(self._control_port_wanted)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for s in (self._conn, self._srv, self._control_srv):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass

    def __enter__(self) -> OsdpReaderSim:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ the bus thread
    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._accept()
                self._receive()
                for simpd in self.pds.values():
                    simpd.pd.ctx.refresh()
                    self._watch_online(simpd)
            time.sleep(TICK_S)

    def _accept(self) -> None:
        try:
            conn, _ = self._srv.accept()
        except (BlockingIOError, OSError):
            return
        if not self._plugged:
            conn.close()
            return
        if self._conn is not None:
            self._conn.close()
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conn = conn
        for simpd in self.pds.values():
            simpd.rx.clear()

    def _receive(self) -> None:
        if self._conn is None:
            return
        try:
            data = self._conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._conn.close()
            self._conn = None
            return
        for simpd in self.pds.values():
            simpd.rx += data
        self.fmt.commands(data)

    def _send(self, data: bytes) -> int:
        conn = self._conn
        if conn is not None:
            try:
                conn.sendall(self.fmt.outgoing(data))
            except OSError:
                pass
        return len(data)

    def _watch_online(self, simpd: SimPd) -> None:
        online = bool(simpd.pd.ctx.is_online())
        if online and not simpd.was_online:
            self._report_inputs(simpd)  # a CP (re)connected: tell it where the door is
        simpd.was_online = online

    def _handler(self, simpd: SimPd) -> Callable[[dict[str, Any]], tuple[int, Any]]:
        def handle(cmd: dict[str, Any]) -> tuple[int, Any]:
            entry = {**cmd, "at": time.monotonic()}
            simpd.commands.append(entry)
            for fn in list(self._listeners):
                try:
                    fn(simpd.address, entry)
                except Exception:
                    log.exception("sim listener failed")
            return 0, None

        return handle

    # ------------------------------------------------------------------ what a person does
    def swipe(self, card: str, address: int | None = None, fmt: str = "wiegand") -> None:
        """Present a card: a bit id as osdp_RAW (format ``wiegand`` or ``raw``), an ``ascii:`` id as osdp_FMT."""
        if is_ascii_id(card):
            self.send_fmt(fmt_payload(ascii_chars(card)), address)
            return
        bits, value = parse_card_id(card)
        nbytes = (bits + 7) // 8
        self.raw_read(bits, (value << (nbytes * 8 - bits)).to_bytes(nbytes, "big"), address, raw=fmt == "raw")

    def raw_read(self, bits: int, data: bytes, address: int | None = None, *, raw: bool = False) -> None:
        """libosdp's PD reports ``bits`` of ``data`` (osdp_RAW, format 0 if ``raw`` else 1: P/data/P)."""
        from osdp import CardFormat, Event

        simpd = self._pd(address)
        with self._lock:
            simpd.pd.ctx.submit_event({"event": Event.CardRead, "reader_no": 0, "direction": 0, "length": bits,
                                       "format": CardFormat.Unspecified if raw else CardFormat.Wiegand,
                                       "data": data})

    def send_fmt(self, payload: bytes, address: int | None = None) -> None:
        """Answer the PD's next poll with osdp_FMT ``payload`` (reader, direction, count, characters)."""
        simpd = self._pd(address)
        if simpd.scbk is not None:
            raise ValueError("osdp_FMT is simulated on a plain-text reader only (a secure reply is libosdp's)")
        with self._lock:
            self.fmt.queue(simpd.address, payload)

    def door(self, is_open: bool, address: int | None = None) -> None:
        """Open or close the door: the contact input changes and the PD reports it."""
        simpd = self._pd(address)
        with self._lock:
            simpd.door_open = is_open
            self._report_inputs(simpd)

    def _report_inputs(self, simpd: SimPd) -> None:
        from osdp import Event, StatusReportType

        report = bytes([1 if simpd.door_open else 0] + [0] * (simpd.inputs - 1))
        simpd.pd.ctx.submit_event({"event": Event.Status, "type": StatusReportType.Input, "report": report})

    def unplug(self) -> None:
        """Cut the line: drop the connection and refuse new ones until :meth:`plug`."""
        with self._lock:
            self._plugged = False
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def plug(self) -> None:
        with self._lock:
            self._plugged = True

    def commands(self, address: int | None = None) -> list[dict[str, Any]]:
        return list(self._pd(address).commands)

    def on_command(self, fn: Callable[[int, dict[str, Any]], None]) -> None:
        """``fn(address, command)`` in the sim thread for every command received (benchmarks)."""
        self._listeners.append(fn)

    def wait_command(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 10.0,
                     address: int | None = None, after: int = 0) -> dict[str, Any]:
        """Block until a received command (index >= ``after``) matches ``pred``."""
        deadline = time.monotonic() + timeout
        simpd = self._pd(address)
        while time.monotonic() < deadline:
            for cmd in simpd.commands[after:]:
                if pred(cmd):
                    return cmd
            time.sleep(0.01)
        raise TimeoutError(f"no matching command at PD {simpd.address} within {timeout}s")

    def online(self, address: int | None = None) -> bool:
        return bool(self._pd(address).pd.ctx.is_online())

    def secure(self, address: int | None = None) -> bool:
        return bool(self._pd(address).pd.ctx.is_sc_active())

    def _pd(self, address: int | None) -> SimPd:
        if address is None:
            return next(iter(self.pds.values()))
        return self.pds[address]

    # ------------------------------------------------------------------ control port
    def _start_control(self, port: int) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((self.host, port))
        srv.listen(4)
        self._control_srv = srv
        self.control_port = srv.getsockname()[1]
        threading.Thread(target=self._control_loop, name=f"osdp-sim-ctl-{self.control_port}", daemon=True).start()

    def _control_loop(self) -> None:
        assert self._control_srv is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._control_srv.accept()
            except OSError:
                return
            threading.Thread(target=self._control_client, args=(conn,), daemon=True).start()

    def _control_client(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            for raw in f:
                reply = self.control(raw.decode("utf-8", "replace"))
                f.write((reply + "\n").encode())
                f.flush()

    def control(self, line: str) -> str:
        """Run one control-port command line; returns the reply line (never raises)."""
        parts = line.split()
        try:
            if not parts:
                return "error empty command"
            cmd, args = parts[0].lower(), parts[1:]
            addr = int(args[-1]) if cmd in ("swipe", "door", "commands") and len(args) >= (2 if cmd != "commands" else 1) else None
            if cmd == "swipe" and args:
                self.swipe(args[0], addr)
            elif cmd == "door" and args and args[0] in ("open", "closed", "close"):
                self.door(args[0] == "open", addr)
            elif cmd == "unplug":
                self.unplug()
            elif cmd == "plug":
                self.plug()
            elif cmd == "commands":
                return json.dumps([{k: v for k, v in c.items()} for c in self.commands(addr)])
            else:
                return "error usage: swipe CARD [ADDR] | door open|closed [ADDR] | unplug | plug | commands [ADDR]"
            return "ok"
        except (ValueError, KeyError, IndexError) as exc:
            return f"error {exc}"


# ---------------------------------------------------------------------- estate-gateway simulate
def _control_port_for(port: int) -> int:
    """The control port of a simulated bus: its OSDP port + 1000 (documented in docs/access.md)."""
    return port + 1000 if port + 1000 <= 65535 else 0


async def serve_for_config(cfg: Any, hub: Any = None) -> None:
    """Simulate every ``[[readers]]`` OSDP bus at ``socket://127.0.0.1:PORT`` until cancelled; each reader is
    put in ``hub`` (``add_reader(id, sim, address)``) for the demo control when one is given."""
    from drivers.osdp.pd import load_scbk

    buses: dict[int, dict[int, bytes | None]] = {}
    ids: dict[int, list[tuple[str, int]]] = {}
    for r in cfg.readers:
        if r.driver != "osdp" or not r.port.startswith("socket://127.0.0.1:"):
            continue
        port = int(r.port.rsplit(":", 1)[1])
        key = load_scbk(cfg.resolve(r.scbk_file)) if r.scbk_file and not getattr(r, "install_mode", False) else None
        buses.setdefault(port, {})[r.address] = key
        ids.setdefault(port, []).append((r.id, r.address))
    sims = []
    try:
        for port, pds in buses.items():
            sim = OsdpReaderSim(list(pds), port=port, scbk=pds, control_port=_control_port_for(port)).start()
            sims.append(sim)
            for reader_id, address in ids[port] if hub is not None else ():
                hub.add_reader(reader_id, sim, address)
            log.info("simulated OSDP bus on %s (PD addresses %s), control port %s", sim.url,
                     ",".join(str(a) for a in pds), sim.control_port)
        await asyncio.Event().wait()
    finally:
        for sim in sims:
            sim.stop()


def main() -> None:  # pragma: no cover - manual use
    import argparse

    ap = argparse.ArgumentParser(description="simulated OSDP reader(s) on a TCP port")
    ap.add_argument("--port", type=int, default=7001)
    ap.add_argument("--address", type=int, action="append")
    ap.add_argument("--control-port", type=int, default=8001)
    ap.add_argument("--scbk-file")
    a = ap.parse_args()
    from drivers.osdp.pd import load_scbk

    key = load_scbk(Path(a.scbk_file)) if a.scbk_file else None
    sim = OsdpReaderSim(a.address or [0], port=a.port, scbk=key, control_port=a.control_port).start()
    print(f"OSDP sim on {sim.url}, control port {sim.control_port}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sim.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
