"""The relay board driver over a real wire: published frames byte for byte, then a pymodbus server as the board.

Frames (Modbus RTU, device 1), from makers' public manuals:

* Write Single Coil, relays 0-3 on/off, request = reply (the board echoes):
  IndSense IND-RLY-DO4-M "Operation Protocol", section "Control Single Relay" / "Commands for every relay"
  (https://docs.indsense.in/IND-RLY-DO4-M/operation); relay 0 on ``01 05 00 00 FF 00 8C 3A`` is also Waveshare's
  example (https://docs.waveshare.com/RS232-RS485-CAN-DALI2/Modbus_POE_ETH_IO_8CH/Development-Protocol,
  "Control a Single Relay").
* Read Coils of one coil at 0x0510 and its reply (``0x48``: lowest bit 0 = off): Matrix PEL-8000 series manual
  p. 29, "read load input state ISTATE" (https://www.easymanua.ls/matrix/pel-8000-series/manual?p=29).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.modbus.errors import ModbusError
from drivers.modbus.relays import RelayBoard, RelayBus
from drivers.sim.relay_board import RelayBoardSim

pytestmark = pytest.mark.timeout(60)

WRITE_FRAMES = [  # (coil, on, frame)
    (0, True, "01 05 00 00 FF 00 8C 3A"), (0, False, "01 05 00 00 00 00 CD CA"),
    (1, True, "01 05 00 01 FF 00 DD FA"), (1, False, "01 05 00 01 00 00 9C 0A"),
    (2, True, "01 05 00 02 FF 00 2D FA"), (2, False, "01 05 00 02 00 00 6C 0A"),
    (3, True, "01 05 00 03 FF 00 7C 3A"), (3, False, "01 05 00 03 00 00 3D CA"),
]
READ_REQUEST, READ_REPLY = "01 01 05 10 00 01 FC C3", "01 01 01 48 51 BE"


class WireBoard:
    """A TCP serial server with one board behind it that answers the published frames (RTU framing)."""

    def __init__(self, replies: dict[bytes, bytes]) -> None:
        self.replies = replies
        self.received: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                frame = await reader.readexactly(8)   # every request here is 8 bytes
                self.received.append(frame)
                writer.write(self.replies.get(frame, b""))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


def test_published_write_and_read_frames_over_tcp() -> None:
    async def main() -> None:
        frames = {bytes.fromhex(f): bytes.fromhex(f) for _c, _on, f in WRITE_FRAMES}
        frames[bytes.fromhex(READ_REQUEST)] = bytes.fromhex(READ_REPLY)
        wire = WireBoard(frames)
        port = await wire.start()
        bus = RelayBus("rtu-over-tcp", f"127.0.0.1:{port}", timeout_s=1.0, retries=0)
        try:
            for coil, on, frame in WRITE_FRAMES:
                await bus.write_coil(coil, on, device_id=1)
                assert wire.received[-1] == bytes.fromhex(frame), (coil, on)
            assert await bus.read_coils(0x0510, 1, device_id=1) == [False]
            assert wire.received[-1] == bytes.fromhex(READ_REQUEST)
        finally:
            await bus.close()
            await wire.stop()

    asyncio.run(main())


def test_a_board_that_answers_garbage_or_nothing_is_a_modbus_error() -> None:
    async def main() -> None:
        wire = WireBoard({bytes.fromhex(WRITE_FRAMES[0][2]): bytes.fromhex("01 05 00 00 FF 00 00 00")})  # bad CRC
        port = await wire.start()
        bus = RelayBus("rtu-over-tcp", f"127.0.0.1:{port}", timeout_s=0.2, retries=0)
        try:
            with pytest.raises(ModbusError):
                await bus.write_coil(0, True, device_id=1)
            with pytest.raises(ModbusError):
                await bus.read_coils(0, 8, device_id=1)   # no reply at all
        finally:
            await bus.close()
            await wire.stop()

    asyncio.run(main())


class Statuses:
    def __init__(self) -> None:
        self.seen: list[tuple[bool, str]] = []

    async def __call__(self, online: bool, reason: str) -> None:
        self.seen.append((online, reason))


async def until(pred: Any, timeout: float = 5.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def test_board_pulses_holds_and_redrives_a_board_that_forgot() -> None:
    """Against pymodbus as the board: pulse = on, then off after its time; a power cut is noticed by the
    read-back and the held coil is written again; a silent board is offline, then online and re-driven."""

    async def main() -> None:
        sim = RelayBoardSim()
        sb = sim.add(3, coils=8)
        port = await sim.start()
        bus = RelayBus("tcp", f"127.0.0.1:{port}", timeout_s=0.2, retries=0)
        status = Statuses()
        board = RelayBoard(bus, 3, [0, 2], verify_s=0.2, on_status=status)
        task = asyncio.create_task(board.run())
        try:
            await until(lambda: status.seen == [(True, "")])
            assert [(c, on) for _t, c, on in sb.writes] == [(0, False), (2, False)]   # start: locked
            t0 = time.monotonic()
            board.set(2, pulse_s=0.3)
            await until(lambda: sb.relays[2])
            await until(lambda: not sb.relays[2])
            (on_at, _c, on), (off_at, _c2, off) = [w for w in sb.writes if w[1] == 2][-2:]
            assert on and not off and on_at >= t0 and off_at - on_at >= 0.25   # never shorter than asked

            board.set(0, on=True)                  # a hold
            await until(lambda: sb.relays[0])
            sb.power_cycle()                       # the board forgot
            await until(lambda: sb.relays[0])      # read back, written again

            sb.silent = True
            await until(lambda: status.seen[-1][0] is False)
            assert "timeout" in status.seen[-1][1]
            board.set(2, on=True)                  # wanted while away
            sb.power_cycle()
            sb.silent = False
            await until(lambda: status.seen[-1] == (True, ""))
            await until(lambda: sb.relays[0] and sb.relays[2])

            await sim.stop()                       # the link to it down
            await until(lambda: status.seen[-1][0] is False)
            sb.power_cycle()
            await sim.start()
            await until(lambda: status.seen[-1] == (True, ""), 10)
            await until(lambda: sb.relays[0] and sb.relays[2])
            board.set(0, on=False)
            board.set(2, on=False)
            await until(lambda: not any(sb.relays))
        finally:
            task.cancel()
            await bus.close()
            await sim.stop()

    asyncio.run(main())


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(reply=st.one_of(st.binary(max_size=16),
                       st.sampled_from([bytes.fromhex(f) for _c, _o, f in WRITE_FRAMES] + [bytes.fromhex(READ_REPLY)])
                       .map(lambda b: b[:-3] + bytes([b[-3] ^ 0x5A]) + b[-2:])))   # a flipped data byte: bad CRC
def test_any_reply_is_a_result_or_a_modbus_error(reply: bytes) -> None:
    """Whatever a board answers (noise, truncated or corrupted frames), the driver raises only ModbusError."""

    async def main() -> None:
        wire = WireBoard({bytes.fromhex(WRITE_FRAMES[0][2]): reply, bytes.fromhex(READ_REQUEST): reply})
        port = await wire.start()
        bus = RelayBus("rtu-over-tcp", f"127.0.0.1:{port}", timeout_s=0.05, retries=0)
        try:
            for call in (bus.write_coil(0, True, device_id=1), bus.read_coils(0x0510, 1, device_id=1)):
                try:
                    await call
                except ModbusError:
                    pass
        finally:
            await bus.close()
            await wire.stop()

    asyncio.run(main())
