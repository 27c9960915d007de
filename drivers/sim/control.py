"""The demo control: a Unix socket ``estate-gateway simulate`` opens beside the demo's data, through
which ``estate-gateway demo`` presents a card, opens a door, raises and restores an alarm.

It exists for the demo and the tests only: the socket sits in the simulator's data folder (owner-only,
like the folder) and nothing of it is in a site's config. One request line, one reply line, so any
Unix-socket client works too (``socat - UNIX-CONNECT:var/demo/simulate.sock``)::

    card READER CARD                  -> ok granted: 26:0600ac80 at r-b3u1 (green LED, ...) | ok refused: ...
    door READER open|closed           -> ok door of r-b3u1 open
    alarm KIND [ZONE] [RECEIVER]      -> ok fire raised at duty-panel zone 12 (...): ACK
    restore KIND [ZONE] [RECEIVER]    -> ok fire restored at ...
    status                            -> ok {"readers": [...], "panels": {...}}

Replies start with ``ok`` or ``error``. What the simulators serve registers itself in the
:class:`SimHub` (readers by their config id, panels by receiver id); the hub also carries the
simulators' :class:`~drivers.sim.state.SimState`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.cards import CardFormatError, normalize_card_id, wiegand_encode
from drivers.sim.state import SimState

log = logging.getLogger(__name__)

SOCKET_NAME = "simulate.sock"
STATE_NAME = "simulate-state.json"
#: how long ``card`` watches the reader for the gateway's answer (LED, relay)
ANSWER_S = 3.0
#: how long ``alarm``/``restore`` wait for the receiver to take the event before saying it is still queued
TAKEN_S = 5.0
#: the Wiegand formats ``BITS:FACILITY:NUMBER`` means
SHORTHAND = {26: "H10301", 34: "H10306", 37: "H10304"}
LED_GREEN, LED_RED, CMD_OUTPUT, CMD_LED = 2, 1, 1, 2   # libosdp's CommandLEDColor / Command values


def card_from_text(text: str) -> str:
    """A card id from what a person types: the canonical ``26:0a1b2c40``, or a known format's
    ``26:12:345`` / ``H10301:12:345`` (facility 12, number 345). Raises ValueError with the forms."""
    parts = text.strip().split(":")
    try:
        if len(parts) == 2:
            return normalize_card_id(text.strip().lower())
        if len(parts) == 3:
            fmt = SHORTHAND.get(int(parts[0]), "") if parts[0].isdigit() else parts[0].upper()
            if fmt in SHORTHAND.values():
                return wiegand_encode(fmt, int(parts[1]), int(parts[2]))
    except (CardFormatError, ValueError) as exc:
        raise ValueError(f"card {text!r}: {exc}") from None
    raise ValueError(f"card {text!r}: give BITS:HEX (26:0a1b2c40) or BITS:FACILITY:NUMBER for 26, 34 or 37 bits "
                     f"(26:12:345)")


@dataclass
class SimHub:
    """What the running simulators offer the demo control."""

    state: SimState = field(default_factory=lambda: SimState(None))
    #: reader id -> (the OsdpReaderSim serving it, its PD address)
    readers: dict[str, tuple[Any, int]] = field(default_factory=dict)
    #: receiver id -> its DemoPanel
    panels: dict[str, Any] = field(default_factory=dict)

    def add_reader(self, reader_id: str, sim: Any, address: int) -> None:
        self.readers[reader_id] = (sim, address)

    async def handle(self, line: str) -> str:
        """One request line -> one reply line (never raises)."""
        parts = line.split()
        if not parts:
            return "error empty request; try: status"
        cmd, args = parts[0].lower(), parts[1:]
        try:
            if cmd == "card" and len(args) == 2:
                return await self._card(args[0], card_from_text(args[1]))
            if cmd == "door" and len(args) == 2 and args[1] in ("open", "closed"):
                return self._door(args[0], args[1] == "open")
            if cmd in ("alarm", "restore") and 1 <= len(args) <= 3:
                return await self._alarm(args[0], args[1:], cmd == "restore")
            if cmd == "status":
                return "ok " + json.dumps(self.status(), ensure_ascii=False)
        except ValueError as exc:
            return f"error {exc}"
        return ("error usage: card READER CARD | door READER open|closed | alarm KIND [ZONE] [RECEIVER] | "
                "restore KIND [ZONE] [RECEIVER] | status")

    def status(self) -> dict[str, Any]:
        return {"readers": sorted(self.readers),
                "panels": {rid: {"kinds": list(p.kinds), "zones": {str(z): n for z, n in p.zones.items()}}
                           for rid, p in self.panels.items()}}

    # ------------------------------------------------------------------ readers
    def _reader(self, reader_id: str) -> tuple[Any, int]:
        if reader_id not in self.readers:
            known = ", ".join(sorted(self.readers)) or "none (no OSDP reader on socket://127.0.0.1 in the config)"
            raise ValueError(f"no simulated reader {reader_id!r}; readers: {known}")
        return self.readers[reader_id]

    async def _card(self, reader_id: str, card: str) -> str:
        sim, address = self._reader(reader_id)
        before = len(sim.commands(address))
        sim.swipe(card, address)
        answer = await asyncio.to_thread(_watch_answer, sim, address, before)
        if answer is None:
            return (f"ok no answer: {card} presented at {reader_id}, but the gateway did not answer within "
                    f"{ANSWER_S:g} s (is `estate-gateway run` up and the reader online?)")
        verdict, _, detail = answer.partition(" ")
        return f"ok {verdict}: {card} at {reader_id} {detail}"

    def _door(self, reader_id: str, is_open: bool) -> str:
        sim, address = self._reader(reader_id)
        sim.door(is_open, address)
        return f"ok door of {reader_id} {'open' if is_open else 'closed'}"

    # ------------------------------------------------------------------ panels
    async def _alarm(self, kind: str, rest: list[str], restore: bool) -> str:
        zone_text = next((a for a in rest if a.isdigit()), None)
        receiver = next((a for a in rest if not a.isdigit()), None)
        panel = self._panel(receiver)
        kind = kind.lower()
        if kind not in panel.kinds:
            raise ValueError(f"{panel.receiver} cannot report {kind!r}: one of {', '.join(panel.kinds)}")
        if restore and kind == "test":
            raise ValueError("a test report has no restore (acknowledge it in the console)")
        zone = int(zone_text) if zone_text is not None else panel.zone_for(kind)
        ev = panel.send(kind, zone, restore)
        where = f"{panel.receiver} zone {zone}" + (f" ({panel.zones[zone]})" if zone in panel.zones else "")
        what = f"{kind} {'restored' if restore else 'raised'} at {where}"
        try:
            answer = await asyncio.wait_for(asyncio.shield(ev.done), TAKEN_S)
        except TimeoutError:
            return (f"ok {what}: queued; the panel keeps sending it until the gateway's receiver takes it "
                    f"(is `estate-gateway run` up?)")
        return f"ok {what}: the gateway answered {answer}"

    def _panel(self, receiver: str | None) -> Any:
        if not self.panels:
            raise ValueError("no simulated alarm panel (no [[alarm_receivers]] listening on TCP in the config)")
        if receiver is None:
            return next(iter(self.panels.values()))
        if receiver not in self.panels:
            raise ValueError(f"no simulated panel for receiver {receiver!r}; receivers: {', '.join(self.panels)}")
        return self.panels[receiver]


def _watch_answer(sim: Any, address: int, before: int) -> str | None:
    """What the gateway told the reader after a swipe: its LED colour (and relay), or None within ANSWER_S."""
    try:
        led = sim.wait_command(lambda c: c.get("command") == CMD_LED, ANSWER_S, address, before)
    except TimeoutError:
        return None
    relays = [c for c in sim.commands(address)[before:] if c.get("command") == CMD_OUTPUT]
    if led.get("on_color") == LED_GREEN:
        opened = f", relay {relays[0].get('output_no', 0)} pulsed: the door unlocks" if relays else ""
        return f"granted (green LED{opened})"
    return "refused (red LED; why is in the console's events and on MQTT: access.denied)"


# ---------------------------------------------------------------------- the socket
async def serve_control(hub: SimHub, path: Path) -> None:
    """Answer requests on the Unix socket ``path`` until cancelled (the socket file is removed then)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()   # a stale socket from a simulator that was killed

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                reply = await hub.handle(line.decode("utf-8", "replace"))
                writer.write(reply.encode() + b"\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    old_umask = os.umask(0o077)   # owner only, whatever the folder allows
    try:
        server = await asyncio.start_unix_server(client, str(path))
    except OSError as exc:   # e.g. a path longer than a Unix socket allows: the simulators run on without it
        os.umask(old_umask)
        log.error("no demo control on %s: %s (give simulate --control SHORTER_PATH)", path, exc)
        await asyncio.Event().wait()
        raise
    os.umask(old_umask)
    log.info("demo control on %s (estate-gateway demo ...)", path)
    try:
        await asyncio.Event().wait()
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def ask(path: Path, line: str, timeout: float = TAKEN_S + ANSWER_S + 5.0) -> str:
    """Send one request to a running simulator's control socket; its reply line. Raises OSError when no
    simulator listens there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        with s.makefile("rwb") as f:
            f.write(line.encode() + b"\n")
            f.flush()
            return f.readline().decode("utf-8", "replace").strip()


__all__ = ["SOCKET_NAME", "STATE_NAME", "SimHub", "ask", "card_from_text", "serve_control"]
