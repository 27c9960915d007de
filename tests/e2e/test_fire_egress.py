"""Fail-safe egress end to end: the daemon as a subprocess, a DC-09 panel over TCP, a libosdp reader and pymodbus
as the relay board, the broker down. A fire in a zone nobody mapped releases every egress door of the site (OSDP
output and relay board coils) within a second; a relock is refused while the fire is active and audited when
confirmed; a board that lost power is driven again; restore + acknowledgement relocks."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
from conftest import free_port, wait_until

from drivers.sim.alarm_panel import Dc09Panel
from drivers.sim.osdp_reader import OsdpReaderSim
from drivers.sim.relay_board import RelayBoardSim

pytestmark = pytest.mark.timeout(150)

OUTPUT, OFF, ON = 1, 1, 2   # osdp_OUT and its permanent control codes
B3_SIDE, B5_GATE, B3_STORE = 2, 3, 5   # coils of relay board 3


class Boards:
    """The relay board simulator on its own loop in a thread (the test itself is synchronous)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.sim = RelayBoardSim()
        self.board = self.sim.add(3, coils=8)
        self.port = self.call(self.sim.start())

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def on_at(self, coil: int, after: float) -> float | None:
        """When ``coil`` was last switched on after ``after`` (None: not since)."""
        ons = [t for t, c, on in self.board.writes if c == coil and on and t >= after]
        return ons[0] if ons else None

    def close(self) -> None:
        self.call(self.sim.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def boards() -> Iterator[Boards]:
    b = Boards()
    yield b
    b.close()


def site(osdp: OsdpReaderSim, boards: Boards, panel_port: int) -> str:
    relay = 'output = {{ bus = "relays", device_id = 3, coil = {} }}'
    return f"""
[[readers]]
id = "r-main"
driver = "osdp"
port = "{osdp.url}"

[[readers]]
id = "r-side"
driver = "wiegand-serial"
port = "loop://"

[[doors]]
id = "b3-main"
building = "3"
reader = "r-main"

[[doors]]
id = "b3-side"
building = "3"
reader = "r-side"
{relay.format(B3_SIDE)}

[[doors]]
id = "b5-gate"
building = "5"
reader = "r-side"
{relay.format(B5_GATE)}

[[doors]]
id = "b3-store"
building = "3"
reader = "r-side"
egress = false
{relay.format(B3_STORE)}

[[buses]]
id = "relays"
transport = "tcp"
port = "127.0.0.1:{boards.port}"
timeout_s = 0.2
retries = 0

[[alarm_receivers]]
id = "duty-panel"
protocol = "sia-dc09"
listen = "127.0.0.1:{panel_port}"
accounts = ["1234"]

[[alarm_zones]]
receiver = "duty-panel"
zone = 12
building = "3"
name = "B3 stairwell smoke"
"""


def send(port: int, token: str, payload: str) -> str:
    async def go() -> str:
        panel = Dc09Panel("127.0.0.1", port)
        try:
            return await panel.send(token, payload, max_tries=50)
        finally:
            await panel.close()

    return asyncio.run(go())


def doors(gw: Any) -> dict[str, Any]:
    return {d["id"]: d for d in gw.get("/api/v1/doors", role="operator").json()["items"]}


def test_unplaced_fire_releases_every_egress_door_broker_down(gateway_factory: Any, mosquitto: Any,
                                                               osdp_reader: OsdpReaderSim, boards: Boards) -> None:
    port = free_port()
    gw = gateway_factory(site(osdp_reader, boards, port))
    wait_until(lambda: doors(gw)["b3-main"]["reader_online"] and doors(gw)["b3-side"]["output"]["online"], 30,
               what="reader and relay board online")
    mosquitto.stop()   # release must not depend on the uplink
    n = len(osdp_reader.commands(0))
    t0 = time.monotonic()
    assert send(port, "SIA-DCS", "Nri1/FA099") == "ACK"            # fire in a zone nobody mapped
    relay = wait_until(lambda: [c for c in osdp_reader.commands(0)[n:] if c["command"] == OUTPUT and c["control_code"] == ON],
                       5, what="OSDP output on")
    side = wait_until(lambda: boards.on_at(B3_SIDE, t0), 5, what="coil b3-side on")
    gate = wait_until(lambda: boards.on_at(B5_GATE, t0), 5, what="coil b5-gate on")
    assert max(relay[0]["at"], side, gate) - t0 < 1.0, (relay[0]["at"] - t0, side - t0, gate - t0)
    assert not boards.board.relays[B3_STORE]                       # not an escape route
    aid = gw.events_of_type("alarm.raised")[0]["data"]["alarm"]
    unlocked = sorted(e["data"]["door"] for e in gw.events_of_type("door.unlocked"))
    assert unlocked == ["b3-main", "b3-side", "b5-gate"]
    hold = doors(gw)["b3-side"]["holds"][0]
    assert (hold["alarm"], hold["kind"], hold["active"], hold["placed"]) == (aid, "fire", True, "site")
    assert hold["since"] and doors(gw)["b3-side"]["state"] == "unlocked"

    # a relock while the fire is active: refused, unless confirmed (then audited with its reason)
    r = gw.post("/api/v1/doors/b5-gate/relock", role="operator", json={"reason": "gate must stay shut"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "fire_active", r.text
    assert gw.post("/api/v1/doors/b5-gate/relock", role="technician", json={"reason": "x"}).status_code == 403
    r = gw.post("/api/v1/doors/b5-gate/relock", role="operator",
                json={"reason": "B5 checked on site, no smoke", "confirm": True})
    assert r.status_code == 200 and r.json()["fire_active"] is True, r.text
    wait_until(lambda: not boards.board.relays[B5_GATE], 5, what="b5-gate relocked")
    audit = [a for a in gw.get("/api/v1/audit").json()["items"] if a["action"] == "door.relock"]
    assert audit and audit[-1]["detail"]["reason"] == "B5 checked on site, no smoke"

    # the board loses power and its link: offline, then driven back to the hold when it answers
    boards.call(boards.sim.stop())
    wait_until(lambda: doors(gw)["b3-side"]["state"] == "offline", 10, what="board offline")
    boards.board.power_cycle()
    boards.call(boards.sim.start())
    wait_until(lambda: boards.board.relays[B3_SIDE], 10, what="coil b3-side on again")
    assert not boards.board.relays[B5_GATE]                          # the relocked door stays locked

    assert send(port, "SIA-DCS", "Nri1/FR099") == "ACK"            # restored, not acknowledged: still released
    wait_until(lambda: doors(gw)["b3-side"]["holds"][0]["active"] is False, 5, what="fire restored")
    assert boards.board.relays[B3_SIDE] and [e["data"]["door"] for e in gw.events_of_type("door.relocked")] == [
        "b5-gate"]
    n = len(osdp_reader.commands(0))
    assert gw.post(f"/api/v1/alarms/{aid}/ack", role="operator", json={"note": "checked"}).status_code == 200
    wait_until(lambda: not boards.board.relays[B3_SIDE], 5, what="b3-side relocked")
    wait_until(lambda: [c for c in osdp_reader.commands(0)[n:] if c["command"] == OUTPUT and c["control_code"] == OFF], 5,
               what="OSDP output off")
    assert {d["state"] for d in doors(gw).values()} <= {"closed", "open"}
    mosquitto.start()


def test_fire_while_the_board_is_away_and_a_kill_9(gateway_factory: Any, osdp_reader: OsdpReaderSim,
                                                   boards: Boards) -> None:
    """A system-level fire (Contact ID zone 000) while the relay board does not answer: the panel is ACKed at
    once, the doors show offline, and the coils go on as soon as the board answers; a kill -9 and restart
    keeps the hold (the board, power-cut meanwhile, is driven again)."""
    boards.call(boards.sim.stop())
    port = free_port()
    gw = gateway_factory(site(osdp_reader, boards, port))
    wait_until(lambda: doors(gw)["b3-side"]["state"] == "offline", 30, what="board offline")
    assert any(d["id"] == "relays:3" and d["online"] is False for d in gw.health()["devices"])
    assert send(port, "ADM-CID", "1110 01 000") == "ACK"
    aid = wait_until(lambda: gw.events_of_type("alarm.raised"), 5, what="alarm")[0]["data"]["alarm"]
    assert doors(gw)["b3-side"]["holds"][0]["alarm"] == aid
    boards.call(boards.sim.start())
    wait_until(lambda: boards.board.relays[B3_SIDE] and boards.board.relays[B5_GATE], 10, what="coils on")
    assert not boards.board.relays[B3_STORE]

    gw.kill()
    boards.board.power_cycle()
    gw.start()
    wait_until(lambda: boards.board.relays[B3_SIDE] and boards.board.relays[B5_GATE], 30, what="coils on again")
    assert doors(gw)["b5-gate"]["holds"][0]["alarm"] == aid
    assert send(port, "ADM-CID", "3110 01 000") == "ACK"
    assert gw.post(f"/api/v1/alarms/{aid}/ack", role="operator", json={"note": "checked"}).status_code == 200
    wait_until(lambda: not any(boards.board.relays), 10, what="all coils off")
