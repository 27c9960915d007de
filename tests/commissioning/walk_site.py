"""A small real site for the walk's tests: libosdp readers, pymodbus meters, a DC-09 receiver.

Building 3: the unit 1 entrance (OSDP address 0, held-open alarm after 1 s) and the main gate
(address 1, on the OSDP secure channel with the key in ``scbk_file``), the side door behind a Wiegand-serial reader (a TCP line) with its lock on a pymodbus relay
board (coil 2); meter hw-3-1-0101 with a valve (pymodbus, restrict profile) and hw-3-1-0102 that never
answers; alarm zones 5 (a real signal and its restore) and 6 (a walk test) on the DC-09 receiver. Building 5: one meter. The meters run on their own loop
in a thread with the relay board (the daemon is a subprocess; a browser test keeps Playwright's loop on the
main thread).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from conftest import ROOT, free_port

from drivers.cards import wiegand_encode

TEST_CARD = wiegand_encode("H10301", 21, 1)
SIDE_COIL = 2
UNKNOWN_CARD = wiegand_encode("H10301", 21, 999)
#: the main gate's reader (OSDP address 1) talks on the secure channel with this key
MAIN_SCBK = bytes(range(16))


class MeterSim:
    def __init__(self) -> None:
        from drivers.modbus import load_profile
        from drivers.sim.meters import MeterSimulator
        from drivers.sim.relay_board import RelayBoardSim

        generic = load_profile(ROOT / "config" / "meters" / "generic-hot-water.toml")
        restrict = load_profile(ROOT / "config" / "meters" / "generic-hot-water-restrict.toml")
        self.loop = asyncio.new_event_loop()
        self.sim = MeterSimulator(framing="tcp")
        self.sim.add(1, restrict, total_m3=321.5, flow_m3h=4.0)
        self.sim.add(2, generic, fault="silent")
        self.sim.add(3, generic, total_m3=88.0, flow_m3h=1.0)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)
        self.relays = RelayBoardSim()
        self.board = self.relays.add(3, coils=8)
        self.relay_port = asyncio.run_coroutine_threadsafe(self.relays.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.relays.stop(), self.loop).result(10)
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def site_toml(osdp_url: str, meter_port: int, panel_port: int, line_port: int, relay_port: int, scbk_file: str) -> str:
    """The site; ``scbk_file``: where MAIN_SCBK is written (hex), for the main gate's reader."""
    meters = ""
    for mid, dev, profile in (("hw-3-1-0101", 1, "generic-hot-water-restrict"), ("hw-3-1-0102", 2, "generic-hot-water"),
                              ("hw-5-1-0101", 3, "generic-hot-water")):
        meters += (f'[[meters]]\nid = "{mid}"\nbus = "tcp-1"\ndevice_id = {dev}\nprofile = "{profile}"\n'
                   f'unit = "{mid[3:]}"\npoll_s = 0.5\n\n')
    return f"""
[[readers]]
id = "r-b3u1"
driver = "osdp"
port = "{osdp_url}"
address = 0

[[readers]]
id = "r-b3main"
driver = "osdp"
port = "{osdp_url}"
address = 1
scbk_file = "{scbk_file}"

[[doors]]
id = "b3-u1"
name = "Building 3 unit 1 entrance"
building = "3"
unit = "3-1"
reader = "r-b3u1"
unlock_s = 3
held_open_s = 1

[[doors]]
id = "b3-main"
name = "Building 3 main gate"
building = "3"
reader = "r-b3main"

[[readers]]
id = "r-b3side"
driver = "wiegand-serial"
port = "socket://127.0.0.1:{line_port}"

[[doors]]
id = "b3-side"
name = "Building 3 side door"
building = "3"
reader = "r-b3side"
unlock_s = 0.5
output = {{ bus = "relays", device_id = 3, coil = {SIDE_COIL} }}

[[buses]]
id = "relays"
transport = "tcp"
port = "127.0.0.1:{relay_port}"
timeout_s = 0.2
retries = 0

[metering]
offline_after = 2

[[buses]]
id = "tcp-1"
transport = "tcp"
port = "127.0.0.1:{meter_port}"
timeout_s = 0.2
retries = 0

{meters}
[[alarm_receivers]]
id = "duty-panel"
protocol = "sia-dc09"
listen = "127.0.0.1:{panel_port}"
accounts = ["1234"]

[[alarm_zones]]
receiver = "duty-panel"
zone = 5
building = "3"
name = "B3 shop back door"

[[alarm_zones]]
receiver = "duty-panel"
zone = 6
building = "3"
name = "B3 bike store PIR"
"""


def wiegand_line(card: str) -> bytes:
    """What a Wiegand-to-serial converter prints for ``card``: its bits as 0/1 characters."""
    from drivers.cards import parse_card_id

    return f"{format(parse_card_id(card)[1], '026b')}\r\n".encode()


def new_panel_port() -> int:
    return free_port()


def step_of(run: dict[str, Any], device: str, step: str) -> dict[str, Any]:
    for b in run["buildings"]:
        for d in b["devices"]:
            if d["device"] == device:
                for s in d["steps"]:
                    if s["step"] == step:
                        return dict(s)
    raise AssertionError(f"no step {device} {step}")
