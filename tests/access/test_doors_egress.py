"""Doors with outputs of both kinds, holds and relocks, in process against real parts: a libosdp reader (the
simulator over TCP), a Wiegand converter on a TCP "serial port", and pymodbus as the relay board."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import LineServer, make_config, until

from drivers.cards import parse_card_id, wiegand_encode
from drivers.sim.osdp_reader import OsdpReaderSim
from drivers.sim.relay_board import RelayBoardSim, SimBoard
from gateway.access import AccessComponent, CardIn, register
from gateway.access.errors import FireActive, NotReleased, OutputOffline
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(120)

OUTPUT = 1              # osdp_OUT
OFF, ON = 1, 2          # its permanent control codes
CARD = wiegand_encode("H10301", 12, 3456)
SIDE_COIL = 2




def site_toml(osdp: OsdpReaderSim, line: LineServer, relays: RelayBoardSim) -> str:
    return f"""
[[readers]]
id = "r-main"
driver = "osdp"
port = "{osdp.url}"

[[readers]]
id = "r-side"
driver = "wiegand-serial"
port = "socket://127.0.0.1:{line.port}"

[[doors]]
id = "b3-main"
building = "3"
reader = "r-main"

[[doors]]
id = "b3-side"
building = "3"
reader = "r-side"
unlock_s = 0.5
output = {{ bus = "relays", device_id = 3, coil = {SIDE_COIL} }}

[[doors]]
id = "b3-store"
building = "3"
reader = "r-side"
egress = false
output = {{ bus = "relays", device_id = 3, coil = 5 }}

[[buses]]
id = "relays"
transport = "tcp"
port = "127.0.0.1:{relays.port}"
timeout_s = 0.2
retries = 0
"""


class Site:
    def __init__(self, ctx: Any, osdp: OsdpReaderSim, line: LineServer, board: SimBoard) -> None:
        self.ctx, self.osdp, self.line, self.board = ctx, osdp, line, board
        self.access: AccessComponent = ctx.components["access"]

    async def ready(self) -> None:
        await until(lambda: self.access.readers.online.get("r-main") is True, 20, "reader online")
        await until(lambda: self.access.doors.outputs.of("b3-side").online() is True, 10, "relay board online")

    def events(self, type_: str) -> list[dict[str, Any]]:
        return [e.data for e in self.ctx.events.query(0, 1000, [type_])]

    def state(self, door: str) -> dict[str, Any]:
        return {d["id"]: d for d in self.access.door_states()}[door]

    async def osdp_output(self, code: int, after: int) -> None:
        await asyncio.to_thread(self.osdp.wait_command,
                                lambda c: c["command"] == OUTPUT and c["control_code"] == code, 10, after=after)


Body = Callable[[Site], Awaitable[None]]


def with_site(tmp_path: Path, *bodies: Body) -> None:
    """Each body runs against a fresh start of the same gateway (data kept): a restart between them."""

    async def main() -> None:
        osdp, line, relays = OsdpReaderSim([0]).start(), LineServer(), RelayBoardSim()
        board = relays.add(3, coils=8)
        await relays.start()
        try:
            cfg = make_config(tmp_path, site_toml(osdp, line, relays))
            for body in bodies:
                ctx = await build_context(cfg, components=[AccessComponent()])
                try:
                    site = Site(ctx, osdp, line, board)
                    await site.ready()
                    await body(site)
                finally:
                    await stop_context(ctx)
        finally:
            osdp.stop()
            line.close()
            await relays.stop()

    asyncio.run(main())


def test_relay_board_door_grant_unlock_and_offline(tmp_path: Path) -> None:
    async def body(site: Site) -> None:
        spec = {"card": CARD, "unit": "3-1", "holder_kind": "resident", "doors": ["b3-side"]}
        await site.access.cards.issue_card(CardIn.model_validate(spec), "t", "technician")
        bits = format(parse_card_id(CARD)[1], "026b")
        await until(lambda: site.line.conn is not None, 10, "converter connected")
        assert site.line.conn is not None
        n = len(site.board.writes)
        site.line.conn.sendall(f"{bits}\r\n".encode())           # a card at the Wiegand reader
        await until(lambda: site.events("access.granted"), 10, "granted")
        await until(lambda: [w for w in site.board.writes[n:] if w[1] == SIDE_COIL and not w[2]], 10, "pulse end")
        assert [on for _t, c, on in site.board.writes[n:] if c == SIDE_COIL] == [True, False]   # a pulse

        answer = await site.access.doors.unlock("b3-side", 0.3, "op", "operator")
        assert answer["relay_command_sent"] is True
        out = site.state("b3-side")["output"]
        assert out == {"kind": "relay", "bus": "relays", "device_id": 3, "coil": SIDE_COIL, "device": "relays:3",
                       "online": True}
        assert site.state("b3-main")["output"]["kind"] == "osdp"
        await until(lambda: site.events("door.relocked"), 5, "relocked")

        site.board.silent = True                                   # unplugged from the bus
        await until(lambda: site.events("device.offline"), 10, "device.offline")
        offline = site.events("device.offline")[0]
        assert offline == {"device": "relays:3", "kind": "relay_board", "reason": offline["reason"],
                           "reason_code": "bus_error", "reason_args": offline["reason_args"]}
        assert offline["reason_args"]["kind"] == "timeout"   # the words of the code, with the Modbus error kept
        assert site.state("b3-side")["state"] == "offline" and site.state("b3-store")["state"] == "offline"
        with pytest.raises(OutputOffline):
            await site.access.doors.unlock("b3-side", 1, "op", "operator")
        site.board.silent = False
        await until(lambda: site.events("device.online"), 10, "device.online")
        assert site.state("b3-side")["state"] == "closed"

    with_site(tmp_path, body)


def test_holds_relock_and_reapply(tmp_path: Path) -> None:
    async def body(site: Site) -> None:
        doors, board = site.access.doors, site.board
        n = len(site.osdp.commands(0))
        await site.access.hold_unlocked(["b3-main", "b3-side"], "fire", "alarm-1")
        await site.osdp_output(ON, n)
        await until(lambda: board.relays[SIDE_COIL], 5, "coil on")
        assert not board.relays[5]
        held = site.state("b3-side")
        assert held["state"] == "unlocked" and held["holds"] == [{"token": "alarm-1", "reason": "fire"}]
        assert held["egress"] is True and site.state("b3-store")["egress"] is False

        # no area can say whether alarm-1 is over (no alarms component here): treated as active
        with pytest.raises(FireActive) as refused:
            await doors.relock("b3-side", "checked", False, "op", "operator")
        assert refused.value.code == "fire_active"
        answer = await doors.relock("b3-side", "checked on site, smoke from cooking", True, "op", "operator")
        assert answer == {"door": "b3-side", "relocked": True, "holds": ["alarm-1"], "fire_active": True,
                          "relay_command_sent": True}
        await until(lambda: not board.relays[SIDE_COIL], 5, "coil off")
        assert site.events("door.relocked") == [{"door": "b3-side", "reason": "operator", "alarms": [],
                                                 "fire_active": True}]
        audit = [a for a in site.ctx.audit.query(0, 100) if a["action"] == "door.relock"]
        assert audit[0]["target"] == "b3-side" and audit[0]["detail"]["reason"].startswith("checked on site")
        assert register.holds(site.ctx.store) == {"alarm-1": (["b3-main"], "fire")}
        assert site.state("b3-main")["state"] == "unlocked"

        # the same hold re-applied (a reconcile) leaves the relocked door locked; a new fire releases it
        await site.access.hold_unlocked(["b3-main", "b3-side"], "fire", "alarm-1")
        assert not board.relays[SIDE_COIL] and len(site.events("door.unlocked")) == 2
        await site.access.hold_unlocked(["b3-side"], "fire", "alarm-2")
        await until(lambda: board.relays[SIDE_COIL], 5, "coil on again")
        n = len(site.osdp.commands(0))
        await site.access.release_hold("alarm-1")
        await site.osdp_output(OFF, n)                               # b3-main relocked
        assert site.state("b3-side")["state"] == "unlocked"          # alarm-2 still holds it
        with pytest.raises(NotReleased):
            await doors.relock("b3-main", "x", False, "op", "operator")

    async def after_restart(site: Site) -> None:
        # alarm-2 was still in force: a restart (the board power-cut meanwhile) drives the coil on again
        await until(lambda: site.board.relays[SIDE_COIL], 10, "coil on after restart")
        assert site.state("b3-side")["holds"] == [{"token": "alarm-2", "reason": "fire"}]
        await site.access.release_hold("alarm-2")
        await until(lambda: not site.board.relays[SIDE_COIL], 5, "coil off")

    async def power_cut(site: Site) -> None:
        await body(site)
        site.board.power_cycle()

    with_site(tmp_path, power_cut, after_restart)
