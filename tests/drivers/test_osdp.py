"""The OSDP driver on its own: packet parsing and CRC, the secure-channel handshake diagnosis, and the bus
thread's crash loop (against the simulated reader, no gateway)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from drivers.osdp import OsdpBus, PdSpec
from drivers.osdp.frames import FrameTap, crc16, parse_frames
from drivers.reader import ReaderStatus
from drivers.sim.osdp_reader import OsdpReaderSim

pytestmark = pytest.mark.timeout(60)


def test_frame_parser_and_crc() -> None:
    # an osdp_ID to address 0 as libosdp writes it (mark byte 0xFF first), then half of the next packet
    buf = bytearray(bytes.fromhex("ff53000900046100c066") + bytes.fromhex("538014"))
    assert crc16(bytes.fromhex("53000900046100")) == 0x66C0
    assert parse_frames(buf) == [(0x00, 0x61, b"\x00")]
    assert buf == bytearray(bytes.fromhex("538014"))
    broken = bytearray(bytes.fromhex("53000900046100c067"))
    assert parse_frames(broken) == []


def packet(addr: int, code: int, data: bytes = b"") -> bytes:
    body = bytes([0x53, addr, 0, 0, 0x04 | 1, code]) + data
    body = body[:2] + (len(body) + 2).to_bytes(2, "little") + body[4:]
    crc = crc16(body)
    return body + bytes([crc & 0xFF, crc >> 8])


def test_frame_tap_names_the_handshake_failure() -> None:
    tap = FrameTap()
    tap.wrote(b"\xff" + packet(0x01, 0x61, b"\x00"))  # osdp_ID to address 1
    assert tap.why(1, True) == ""  # nothing answered: no reply
    tap.read(packet(0x81, 0x45, bytes(12)))
    tap.wrote(packet(0x01, 0x62, b"\x00"))
    pdcap = packet(0x81, 0x46, bytes([1, 1, 1, 9, 1, 0]))
    tap.read(pdcap[:5])
    tap.read(pdcap[5:])  # split across reads, as a serial port delivers it
    tap.wrote(packet(0x01, 0x76, bytes(8)))  # osdp_CHLNG
    tap.read(packet(0x81, 0x76, bytes(32)))  # osdp_CCRYPT that libosdp then rejects
    assert tap.why(1, True).startswith("key mismatch: the reader's cryptogram")
    tap.wrote(packet(0x01, 0x61, b"\x00"))  # the next attempt starts afresh
    tap.read(packet(0x81, 0x45, bytes(12)))
    tap.wrote(packet(0x01, 0x62, b"\x00"))
    tap.read(packet(0x81, 0x46, bytes([9, 1, 0])))
    tap.wrote(packet(0x01, 0x76, bytes(8)))
    tap.read(packet(0x81, 0x76, bytes(32)))
    tap.wrote(packet(0x01, 0x77, bytes(16)))  # osdp_SCRYPT
    tap.read(packet(0x01, 0x77, bytes(16)))  # a half-duplex converter's echo of it: ignored
    tap.read(packet(0x81, 0x41, b"\x05"))
    assert tap.why(1, True).startswith("key mismatch: the reader could not verify our cryptogram (NAK 5")
    tap.wrote(packet(0x02, 0x61, b"\x00"))
    tap.read(packet(0x82, 0x45, bytes(12)))
    tap.wrote(packet(0x02, 0x62, b"\x00"))
    tap.read(packet(0x82, 0x46, bytes([1, 1, 1, 9, 0, 0])))  # no AES-128 secure channel
    assert tap.why(2, True).startswith("reader does not support the secure channel")
    assert tap.why(2, False) == ""  # fine for a plain reader


def test_osdp_crash_loop_backs_off_and_stops_promptly(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, ctx: Any, now: float) -> None:
        raise RuntimeError("still broken")

    monkeypatch.setattr(OsdpBus, "_check_status", broken)

    async def main() -> None:
        sim = OsdpReaderSim([0, 1]).start()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        bus = OsdpBus(sim.url, 115200, [PdSpec("r0", 0), PdSpec("r1", 1)], asyncio.get_running_loop(), queue)
        bus.start()
        try:
            reasons: list[tuple[str, str]] = []
            t0 = time.monotonic()
            while len(reasons) < 4:
                ev = await asyncio.wait_for(queue.get(), 10)
                assert isinstance(ev, ReaderStatus) and not ev.online
                reasons.append((ev.reader, ev.reason))
            took = time.monotonic() - t0
            # every PD on the bus is reported, and the second crash waited longer than the first
            assert sorted(r for r, _ in reasons) == ["r0", "r0", "r1", "r1"]
            assert [why.rsplit("restarting in ", 1)[1] for _, why in reasons] == ["1 s", "1 s", "2 s", "2 s"]
            assert 0.9 < took < 5, took
            assert bus.stats["crashes"] == 2 and bus.cp is None
            assert not bus.output("r0", 0, pulse_s=1)  # no control panel while waiting: refused, no exception
        finally:
            t1 = time.monotonic()
            await asyncio.to_thread(bus.stop)
            sim.stop()
        assert time.monotonic() - t1 < 1.0  # the 2 s backoff wait is interrupted by stop()

    asyncio.run(main())
