"""A crashing reader driver thread (OSDP bus, serial readers) is logged, reported offline and restarted with
backoff: the doors come back by themselves. Faults are injected into the real drivers, in process."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, until, wait_until

from drivers import ascii_reader
from drivers.ascii_reader import em4100_frame
from drivers.cards import card_id, parse_card_id, wiegand_encode
from drivers.osdp import OsdpBus
from drivers.sim.osdp_reader import OsdpReaderSim
from gateway.access import AccessComponent, CardIn
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(120)

CARD = wiegand_encode("H10301", 12, 3456)


def events_of(ctx: Any, *types: str) -> list[Any]:
    return ctx.events.query(0, 1000, list(types))


def issue_body(card: str) -> CardIn:
    return CardIn.model_validate({"card": card, "unit": "3-1-0201", "holder_kind": "resident", "doors": ["*"]})


def fail_once(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> tuple[threading.Event, threading.Event]:
    """Patch ``cls.name`` to raise RuntimeError once after ``arm`` is set; ``fired`` tells it did."""
    orig = getattr(cls, name)
    arm, fired = threading.Event(), threading.Event()

    def flaky(self: Any, *args: Any, **kw: Any) -> Any:
        if arm.is_set() and not fired.is_set():
            fired.set()
            raise RuntimeError("injected fault")
        return orig(self, *args, **kw)

    monkeypatch.setattr(cls, name, flaky)
    return arm, fired


def crash_logged(caplog: pytest.LogCaptureFixture, logger: str) -> bool:
    return any(r.name == logger and r.exc_info and "driver crashed: RuntimeError: injected fault" in r.getMessage()
               for r in caplog.records)


# ---------------------------------------------------------------------- OSDP
def test_osdp_bus_thread_crash_goes_offline_restarts_and_grants(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    arm, fired = fail_once(monkeypatch, OsdpBus, "_check_status")  # runs every 100 ms in the bus thread
    toml = """
[[readers]]
id = "r-b3u1"
driver = "osdp"
port = "{url}"
address = 0

[[doors]]
id = "b3-u1"
unit = "3-1"
reader = "r-b3u1"
"""

    async def main() -> None:
        sim = OsdpReaderSim([0]).start()
        ctx = await build_context(make_config(tmp_path, toml.format(url=sim.url)), components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        try:
            await until(lambda: access.readers.online.get("r-b3u1") is True, 20, "reader online")
            await access.cards.issue_card(issue_body(CARD), "t", "technician")
            arm.set()
            offline = await until(lambda: events_of(ctx, "device.offline"), 10, "device.offline")
            assert fired.is_set()
            reason = offline[0].data["reason"]
            assert offline[0].data["device"] == "r-b3u1"
            assert reason.startswith("driver crashed: RuntimeError: injected fault; restarting in 1 s"), reason
            assert {d["id"]: d["state"] for d in access.door_states()}["b3-u1"] == "offline"
            bus = access.readers.driver_of["r-b3u1"]
            assert bus.stats["crashes"] == 1
            assert crash_logged(caplog, "drivers.osdp")
            # no one restarts it but the driver itself
            await until(lambda: events_of(ctx, "device.online"), 20, "device.online after the restart")
            assert access.readers.online["r-b3u1"] is True and bus._thread.is_alive()
            n = len(events_of(ctx, "access.granted"))
            sim.swipe(CARD)
            granted = await until(lambda: events_of(ctx, "access.granted")[n:], 10, "access.granted")
            assert granted[0].data["card"] == CARD
            out = await asyncio.to_thread(sim.wait_command, lambda c: c["command"] == 1, 10)  # the relay
            assert out["output_no"] == 0
            assert "estate_gateway_reader_driver_crashes 1" in ctx.metrics.render()
        finally:
            await stop_context(ctx)
            sim.stop()

    asyncio.run(main())


# ---------------------------------------------------------------------- serial readers
class ReconnectingLineServer:
    """A TCP 'serial port' that accepts the reader again after it closed the port."""

    def __init__(self) -> None:
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(conn)

    def send(self, data: bytes, connection: int) -> None:
        wait_until(lambda: len(self.conns) >= connection, 10, what=f"reader connection #{connection}")
        self.conns[connection - 1].sendall(data)

    def close(self) -> None:
        for s in [*self.conns, self.srv]:
            s.close()


def _em_card() -> tuple[str, bytes]:
    tag = bytes.fromhex("0f00a1b2c3")
    return card_id(40, tag), em4100_frame(tag)


def _wiegand_card() -> tuple[str, bytes]:
    card = wiegand_encode("H10301", 5, 77)
    return card, (format(parse_card_id(card)[1], "026b") + "\r\n").encode()


@pytest.mark.parametrize("driver, parser, make_card", [
    ("serial-ascii", ascii_reader.Em4100Parser, _em_card),
    ("wiegand-serial", ascii_reader.WiegandLineParser, _wiegand_card),
])
def test_serial_reader_thread_crash_goes_offline_restarts_and_grants(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        driver: str, parser: type, make_card: Any) -> None:
    caplog.set_level(logging.INFO)
    arm, fired = fail_once(monkeypatch, parser, "feed")
    line = ReconnectingLineServer()
    toml = f"""
[[readers]]
id = "r-1"
driver = "{driver}"
port = "socket://127.0.0.1:{line.port}"

[[doors]]
id = "d-1"
reader = "r-1"
"""
    card, frame = make_card()

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, toml), components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        try:
            await until(lambda: access.readers.online.get("r-1") is True, 10, "reader online")
            await access.cards.issue_card(issue_body(card), "t", "technician")
            arm.set()
            await asyncio.to_thread(line.send, frame, 1)  # the parser blows up on this read
            offline = await until(lambda: events_of(ctx, "device.offline"), 10, "device.offline")
            assert fired.is_set()
            assert offline[0].data["device"] == "r-1"
            assert offline[0].data["reason"] == "driver crashed: RuntimeError: injected fault; restarting in 1 s"
            assert not events_of(ctx, "access.granted", "access.denied")
            reader = access.readers.drivers[0]
            assert reader.stats["crashes"] == 1
            assert crash_logged(caplog, "drivers.ascii_reader")
            await until(lambda: events_of(ctx, "device.online"), 10, "device.online after the restart")
            await asyncio.to_thread(line.send, frame, 2)  # the port was reopened: a new connection
            granted = await until(lambda: events_of(ctx, "access.granted"), 10, "access.granted")
            assert [(e.data["door"], e.data["card"]) for e in granted] == [("d-1", card)]
            assert "estate_gateway_reader_driver_crashes 1" in ctx.metrics.render()
        finally:
            await stop_context(ctx)
            line.close()

    asyncio.run(main())
