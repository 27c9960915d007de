"""Reader variants: serial ASCII (EM4100/RDM6300) and Wiegand converters over a pyserial URL, OSDP secure
channel with SCBK files, several PDs on one bus, and install mode (in process)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import LineServer, make_config, until

from drivers.ascii_reader import em4100_frame
from drivers.cards import card_id, parse_card_id, wiegand_encode
from drivers.sim.osdp_reader import OsdpReaderSim
from gateway.access import AccessComponent, CardIn
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(120)




def issue_body(card: str) -> CardIn:
    return CardIn.model_validate({"card": card, "unit": "3-1-0201", "holder_kind": "resident", "doors": ["*"]})


def test_serial_ascii_and_wiegand_readers(tmp_path: Path) -> None:
    em, wg = LineServer(), LineServer()
    toml = f"""
[[readers]]
id = "r-em"
driver = "serial-ascii"
port = "socket://127.0.0.1:{em.port}"

[[readers]]
id = "r-wg"
driver = "wiegand-serial"
port = "socket://127.0.0.1:{wg.port}"

[[doors]]
id = "d-em"
reader = "r-em"

[[doors]]
id = "d-wg"
reader = "r-wg"
"""

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, toml), components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        try:
            tag = bytes.fromhex("0f00a1b2c3")
            await access.cards.issue_card(issue_body(card_id(40, tag)), "t", "technician")
            frame = em4100_frame(tag)
            broken = frame[:11] + b"00" + frame[13:]
            # the tag repeats its frame while held: one decision; a bad checksum is counted, not fatal
            await asyncio.to_thread(em.send, b"noise" + broken + frame + frame + frame)
            await until(lambda: ctx.events.query(0, 100, ["access.granted"]))
            wiegand = wiegand_encode("H10301", 5, 77)
            bits = format(parse_card_id(wiegand)[1], "026b")
            flipped = bits[:5] + ("1" if bits[5] == "0" else "0") + bits[6:]
            await asyncio.to_thread(wg.send, f"{flipped}\r\n{bits}\r\n".encode())
            denied = await until(lambda: ctx.events.query(0, 100, ["access.denied"]))
            assert [(e.data["door"], e.data["card"], e.data["reason"]) for e in denied] == [("d-wg", wiegand, "unknown")]
            await asyncio.sleep(0.3)
            granted = ctx.events.query(0, 100, ["access.granted"])
            assert [e.data["door"] for e in granted] == ["d-em"]
            assert ctx.devices.devices["r-em"].errors >= 2 and ctx.devices.devices["r-wg"].errors == 1
            assert 'error="checksum"' in ctx.metrics.render()
        finally:
            await stop_context(ctx)
            em.close()
            wg.close()

    asyncio.run(main())


def test_secure_channel_and_two_pds_on_one_bus(tmp_path: Path) -> None:
    key = bytes(range(16))
    (tmp_path / "r0.scbk").write_text(key.hex())
    (tmp_path / "r1.scbk").write_text(key[::-1].hex())
    sim = OsdpReaderSim([0, 1], scbk={0: key, 1: key[::-1]}).start()
    toml = f"""
[[readers]]
id = "r0"
driver = "osdp"
port = "{sim.url}"
address = 0
scbk_file = "r0.scbk"

[[readers]]
id = "r1"
driver = "osdp"
port = "{sim.url}"
address = 1
scbk_file = "r1.scbk"

[[doors]]
id = "d0"
reader = "r0"

[[doors]]
id = "d1"
reader = "r1"
output = 2
"""

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, toml), components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        try:
            await until(lambda: all(ctx.devices.devices[r].extra.get("secure_channel") for r in ("r0", "r1")), 30)
            assert sim.secure(0) and sim.secure(1)
            card = wiegand_encode("H10301", 1, 2)
            await access.cards.issue_card(issue_body(card), "t", "technician")
            sim.swipe(card, 1)
            cmd = await asyncio.to_thread(sim.wait_command, lambda c: c["command"] == 1, 10, 1)
            assert cmd["output_no"] == 2
            assert ctx.events.query(0, 100, ["access.granted"])[0].data["door"] == "d1"
            assert not [c for c in sim.commands(0) if c["command"] == 1]
        finally:
            await stop_context(ctx)
            sim.stop()

    asyncio.run(main())


def test_install_mode_gives_a_fresh_reader_its_key(tmp_path: Path) -> None:
    key = bytes(range(16, 32))
    (tmp_path / "new.scbk").write_text(key.hex() + "\n")
    sim = OsdpReaderSim([0]).start()  # factory-fresh: no key, in install mode
    toml = f"""
[[readers]]
id = "r-new"
driver = "osdp"
port = "{sim.url}"
scbk_file = "new.scbk"
install_mode = true

[[doors]]
id = "d-new"
reader = "r-new"
"""

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, toml), components=[AccessComponent()])
        try:
            await until(lambda: ctx.devices.devices["r-new"].extra.get("secure_channel"), 30)
            keyset = [c for c in sim.commands() if c.get("data") == key]
            assert keyset, "the reader received its new SCBK (osdp_KEYSET)"
            assert sim.secure()
        finally:
            await stop_context(ctx)
            sim.stop()

    asyncio.run(main())
