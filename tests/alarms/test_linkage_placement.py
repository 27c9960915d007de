"""Placing a fire: a mapped zone releases its doors and its building's egress doors; a fire the gateway cannot
place (unmapped zone, system level, the transmitter's own status) releases every egress door of the site, or
of the panel's building (``unplaced_fire = "building"``). Pure rule first, then panels over TCP (DC-09 with
SIA-DCS and ADM-CID payloads, GB/T 26875.3) against the alarms component with a recording access area."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alarms.harness import FakeAccess, events
from conftest import free_port, make_config

from drivers import gb26875 as gb
from drivers.sim.alarm_panel import Dc09Panel, GbSender
from gateway.alarms import AlarmsComponent
from gateway.alarms.linkage import place_fire
from gateway.config import AlarmReceiverConfig, AlarmZoneConfig, DoorConfig
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(60)

DOORS = [DoorConfig(id="b3-main", building="3", reader="r"), DoorConfig(id="b3-store", building="3", reader="r",
                                                                         egress=False),
         DoorConfig(id="b5-main", building="5", reader="r"), DoorConfig(id="gate", building="", reader="r")]


def receiver(**kw: Any) -> AlarmReceiverConfig:
    return AlarmReceiverConfig(id="p", protocol="sia-dc09", listen="127.0.0.1:1", **kw)


@pytest.mark.parametrize(("zone", "rc", "doors", "scope"), [
    # mapped with a building: its unlock_doors, then every egress door of the building (not the store room)
    (AlarmZoneConfig(receiver="p", zone=1, building="3", unlock_doors=["gate"]), receiver(),
     ["gate", "b3-main"], "zone"),
    # mapped with doors only: just those
    (AlarmZoneConfig(receiver="p", zone=1, unlock_doors=["b3-store"]), receiver(), ["b3-store"], "zone"),
    # unmapped, or mapped with a name alone: every egress door of the site
    (None, receiver(), ["b3-main", "b5-main", "gate"], "site"),
    (AlarmZoneConfig(receiver="p", zone=1, name="somewhere"), receiver(), ["b3-main", "b5-main", "gate"], "site"),
    # the receiver confines unplaced fires to its building
    (None, receiver(unplaced_fire="building", building="5"), ["b5-main"], "building"),
    # ... unless that building has no egress door (config changed under us): the site, never nobody
    (None, receiver(unplaced_fire="building", building="9"), ["b3-main", "b5-main", "gate"], "site"),
    (None, None, ["b3-main", "b5-main", "gate"], "site"),
])
def test_place_fire(zone: AlarmZoneConfig | None, rc: AlarmReceiverConfig | None, doors: list[str],
                    scope: str) -> None:
    p = place_fire(zone, rc, DOORS)
    assert (p.doors, p.scope) == (doors, scope)


def test_receiver_building_required_for_building_scope() -> None:
    with pytest.raises(ValueError, match="needs building"):
        receiver(unplaced_fire="building")


def site(dc: int, gbp: int, dc_extra: str = "") -> str:
    return f"""
[[readers]]
id = "r1"
driver = "serial-ascii"
port = "loop://"

[[doors]]
id = "b3-main"
building = "3"
reader = "r1"

[[doors]]
id = "b3-store"
building = "3"
reader = "r1"
egress = false

[[doors]]
id = "b5-main"
building = "5"
reader = "r1"

[[alarm_receivers]]
id = "duty-panel"
protocol = "sia-dc09"
listen = "127.0.0.1:{dc}"
accounts = ["1234"]
{dc_extra}

[[alarm_receivers]]
id = "fire-panel"
protocol = "gb26875"
listen = "127.0.0.1:{gbp}"

[[alarm_zones]]
receiver = "duty-panel"
zone = 12
building = "3"
name = "B3 stairwell smoke"
"""


async def started(tmp_path: Path, dc_extra: str = "") -> tuple[Any, AlarmsComponent, FakeAccess]:
    cfg = make_config(tmp_path, site(free_port(), free_port(), dc_extra))
    fake, alarms = FakeAccess(), AlarmsComponent()
    ctx = await build_context(cfg, components=[fake, alarms])
    return ctx, alarms, fake


def holds(fake: FakeAccess) -> list[tuple[str, ...]]:
    return [c[1] for c in fake.calls if c[0] == "hold"]


def test_unplaced_fires_release_every_egress_door_of_the_site(tmp_path: Path) -> None:
    async def main() -> None:
        ctx, alarms, fake = await started(tmp_path)
        panel = Dc09Panel("127.0.0.1", alarms.ports["duty-panel"])
        gbs = GbSender("127.0.0.1", alarms.ports["fire-panel"])
        try:
            assert await panel.send("SIA-DCS", "Nri1/FA099") == "ACK"          # fire, zone nobody mapped
            assert await panel.send("ADM-CID", "1110 01 000") == "ACK"         # fire, system level (zone 0)
            assert await panel.send("ADM-CID", "1130 01 077") == "ACK"         # burglary: no doors
            # the fire panel's own status (system status object, fire bit set)
            await gbs.send(gb.system_unit([gb.SystemStatus(1, 1, 0b0000_0011, datetime.now())]))
            assert holds(fake) == [("b3-main", "b5-main")] * 3
            raised = events(ctx, "alarm.raised")
            fires = [a["alarm"] for a in raised if a["kind"] == "fire"]
            assert len(fires) == 3
            cause = alarms.linkage.hold_cause(f"alarm-{fires[0]}")
            assert cause is not None
            assert (cause["kind"], cause["active"], cause["placed"], cause["zone"]) == ("fire", True, "site", 99)
            assert alarms.get_alarm(fires[0])["unlock_doors"] == ["b3-main", "b5-main"]
            assert await panel.send("SIA-DCS", "Nri1/FR099") == "ACK"          # restored: not active, still held
            cause = alarms.linkage.hold_cause(f"alarm-{fires[0]}")
            assert cause is not None and (cause["active"], cause["state"]) == (False, "restored")
            assert f"alarm-{fires[0]}" in fake.held
            await alarms.acknowledge(fires[0], "op", "operator", "false alarm, checked on site")
            assert f"alarm-{fires[0]}" not in fake.held
            assert alarms.linkage.hold_cause("alarm-999999") is None and alarms.linkage.hold_cause("x") is None
        finally:
            await panel.close()
            await gbs.close()
            await stop_context(ctx)

    asyncio.run(main())


def test_mapped_zone_releases_its_buildings_egress_doors(tmp_path: Path) -> None:
    async def main() -> None:
        ctx, alarms, fake = await started(tmp_path)
        panel = Dc09Panel("127.0.0.1", alarms.ports["duty-panel"])
        try:
            assert await panel.send("SIA-DCS", "Nri1/FA012") == "ACK"          # B3 stairwell
            assert holds(fake) == [("b3-main",)]                                # not the store room, not B5
            aid = events(ctx, "alarm.raised")[0]["alarm"]
            cause = alarms.linkage.hold_cause(f"alarm-{aid}")
            assert cause is not None and (cause["placed"], cause["building"]) == ("zone", "3")
        finally:
            await panel.close()
            await stop_context(ctx)

    asyncio.run(main())


def test_receiver_confines_unplaced_fires_to_its_building(tmp_path: Path) -> None:
    async def main() -> None:
        ctx, alarms, fake = await started(tmp_path, 'unplaced_fire = "building"\nbuilding = "5"')
        panel = Dc09Panel("127.0.0.1", alarms.ports["duty-panel"])
        gbs = GbSender("127.0.0.1", alarms.ports["fire-panel"])
        try:
            assert await panel.send("SIA-DCS", "Nri1/FA099") == "ACK"
            assert holds(fake) == [("b5-main",)]
            await gbs.send_component(301, 0b0000_0011, "smoke detector")      # the other panel: site-wide
            assert holds(fake)[-1] == ("b3-main", "b5-main")
        finally:
            await panel.close()
            await gbs.close()
            await stop_context(ctx)

    asyncio.run(main())
