"""The CJ/T 188 bus on a real serial device (a pty: pyserial opens /dev/pts/N and sets 2400 8E1 on it) and on
``socket://``: the reply that belongs to the request is taken, whatever else is on the line."""

from __future__ import annotations

import asyncio
import os
import select
import threading
from collections.abc import Callable, Iterator

import pytest

from drivers import cjt188 as c
from drivers.cjt188.link import Cjt188Bus, Cjt188ConnectionError, Cjt188ErrorReply, Cjt188FramingError, Cjt188Timeout
from drivers.sim.cjt188 import Cjt188Simulator

ADDR, OTHER = "00202307160177", "00202307160178"


class PtyLine:
    """The far end of a pty: meters from a simulator answering what the gateway writes to /dev/pts/N.

    ``before`` adds what a real line carries ahead of the reply (the adapter's echo, another meter's late reply).
    """

    def __init__(self, sim: Cjt188Simulator, before: Callable[[bytes], bytes] = lambda req: b"") -> None:
        self.sim, self.before = sim, before
        self.master, self._slave = os.openpty()  # the slave stays open: a pty without one reads as hung up
        self.path = os.ttyname(self._slave)
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                buf += os.read(self.master, 512)
            except OSError:
                return
            try:
                frame, used = c.parse_frame(buf)
            except c.IncompleteFrame:
                continue
            except c.FrameError:
                buf = b""
                continue
            request, buf = buf[:used], buf[used:]
            self.requests.append(request)
            reply = self.sim.answer(frame, c.leading_preamble(request))
            os.write(self.master, self.before(request) + (reply or b""))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)
        os.close(self._slave)


@pytest.fixture
def sim() -> Iterator[Cjt188Simulator]:
    s = Cjt188Simulator()
    s.add(ADDR, meter_type=0x11, total_m3=42.42, wakeup=4)
    s.add(OTHER, meter_type=0x20)
    yield s


def read(bus: Cjt188Bus, address: str = ADDR, mtype: int = 0x11) -> c.CurrentData:
    async def go() -> c.CurrentData:
        try:
            frame = await bus.exchange(c.read_current_request(address, mtype, preamble=0), address, c.DI_CURRENT)
            return c.decode_current(frame)
        finally:
            await bus.close()
    return asyncio.run(go())


def test_a_reading_over_a_real_serial_device_at_2400_8e1(sim: Cjt188Simulator) -> None:
    line = PtyLine(sim)
    try:
        d = read(Cjt188Bus(line.path, baud=2400, parity="E", timeout_s=1.0, retries=0, wakeup=4))
        assert d.address == ADDR and d.total_m3 == pytest.approx(42.42, abs=0.01)
        assert line.requests[0].startswith(b"\xfe\xfe\xfe\xfe\x68\x11")  # the wake-up run went out on the line
    finally:
        line.close()


def test_the_echo_and_another_meters_late_reply_are_skipped(sim: Cjt188Simulator) -> None:
    late = c.current_reply(c.CurrentData(0x20, OTHER, total_m3=999.0, heat_kwh=1.0))
    line = PtyLine(sim, before=lambda req: req + b"\x00\x17" + late)  # echo, noise, the other meter's reply
    try:
        bus = Cjt188Bus(line.path, timeout_s=1.0, retries=0, wakeup=4)
        d = read(bus)
        assert d.address == ADDR and d.total_m3 == pytest.approx(42.42, abs=0.01)
        assert bus.stats.skipped >= 2
    finally:
        line.close()


def test_timeout_framing_error_reply_and_a_port_that_is_not_there(sim: Cjt188Simulator) -> None:
    async def main() -> None:
        port = await sim.start()
        bus = Cjt188Bus(f"socket://127.0.0.1:{port}", timeout_s=0.3, retries=1, wakeup=4)
        try:
            with pytest.raises(Cjt188Timeout):
                await bus.exchange(c.read_current_request("00000000009999", preamble=0), "00000000009999",
                                   c.DI_CURRENT)
            assert bus.stats.requests == 2  # retried once
            sim.meters[ADDR].fault = "checksum"
            with pytest.raises(Cjt188FramingError, match="checksum"):
                await bus.exchange(c.read_current_request(ADDR, 0x11, preamble=0), ADDR, c.DI_CURRENT)
            sim.meters[ADDR].fault = "error"
            with pytest.raises(Cjt188ErrorReply) as exc:
                await bus.exchange(c.read_current_request(ADDR, 0x11, preamble=0), ADDR, c.DI_CURRENT)
            assert exc.value.kind == "exception"
        finally:
            await bus.close()
        await sim.stop()
        nobody = Cjt188Bus(f"socket://127.0.0.1:{port}", timeout_s=0.3, retries=0)
        with pytest.raises(Cjt188ConnectionError):
            await nobody.exchange(c.read_current_request(ADDR, preamble=0), ADDR, c.DI_CURRENT)
        await nobody.close()

    asyncio.run(main())


def test_broadcast_read_address_takes_whoever_answers() -> None:
    async def main() -> None:
        s = Cjt188Simulator()
        s.add(ADDR, meter_type=0x10)
        port = await s.start()
        bus = Cjt188Bus(f"socket://127.0.0.1:{port}", timeout_s=0.5, retries=0)
        try:
            req = c.build_frame(0xAA, c.BROADCAST, c.C_READ_ADDRESS, c.DI_READ_ADDRESS, preamble=0)
            frame = await bus.exchange(req, c.BROADCAST, c.DI_READ_ADDRESS)
            assert frame.address == ADDR and frame.control == 0x83
        finally:
            await bus.close()
            await s.stop()

    asyncio.run(main())
