"""The OSDP driver on its own: packet parsing and CRC, the secure-channel handshake diagnosis, the bus
thread's crash loop (against the simulated reader, no gateway), and card data formats: osdp_RAW bits,
osdp_FMT characters read off the wire, the simulator's osdp_FMT, fuzzing. Reads from public sources:
tests/conformance/readers/."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.cards import CardFormatError, ascii_card_id
from drivers.osdp import OsdpBus, PdSpec
from drivers.osdp.cardread import (
    REPLY_FMT,
    FmtRead,
    FmtTap,
    decode_fmt_reply,
    decode_raw_reply,
    event_card,
    raw_card,
)
from drivers.osdp.events import fmt_read
from drivers.osdp.frames import FrameTap, crc16, parse_frames
from drivers.osdp.pd import PdState
from drivers.reader import CardRead, ReaderError, ReaderStatus
from drivers.sim.osdp_fmt import FmtInjector, reply_packet
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
            while len(reasons) < 4:
                ev = await asyncio.wait_for(queue.get(), 10)
                assert isinstance(ev, ReaderStatus) and not ev.online
                reasons.append((ev.reader, ev.reason))
            # every PD on the bus is reported, and the second crash waits longer than the first
            assert sorted(r for r, _ in reasons) == ["r0", "r0", "r1", "r1"]
            assert [why.rsplit("restarting in ", 1)[1] for _, why in reasons] == ["1 s", "1 s", "2 s", "2 s"]
            assert bus.stats["crashes"] == 2 and bus.cp is None
            assert not bus.output("r0", 0, pulse_s=1)  # no control panel while waiting: refused, no exception
        finally:
            thread = bus._thread
            await asyncio.to_thread(bus.stop)
            sim.stop()
        # stopped in its backoff wait: the thread is gone, no restart was tried (that stop interrupts a wait at
        # once is tests/drivers/test_restart.py's, with a wait of an hour)
        assert thread is not None and not thread.is_alive() and bus.stats["crashes"] == 2

    asyncio.run(main())


# ---------------------------------------------------------------------- card formats (drivers.osdp.cardread)
def secure_reply(addr: int, code: int, data: bytes, sec_type: int = 0x18) -> bytes:
    """A reply with a security block (SCS_18: MAC and encrypted data); the MAC is not checked by the tap."""
    body = bytes([0x53, 0x80 | addr, 0, 0, 0x0C | 1, 0x02, sec_type, code]) + data + bytes(4)
    body = body[:2] + (len(body) + 2).to_bytes(2, "little") + body[4:]
    crc = crc16(body)
    return body + bytes([crc & 0xFF, crc >> 8])


def fmt_reply(addr: int, data: bytes, *, ctrl: int = 0x04 | 1) -> bytes:
    return reply_packet(addr, ctrl, REPLY_FMT, data)


def test_card_data_formats() -> None:
    assert raw_card(26, bytes.fromhex("0a1b2c7f")) == "26:0a1b2c40"
    assert decode_raw_reply(bytes.fromhex("0001 1a00 0a1b2c40")) == (0, "26:0a1b2c40")
    assert decode_raw_reply(bytes.fromhex("0000 1a00 0a1b2c40")) == (0, "26:0a1b2c40")  # format 0 or 1: same bits
    assert decode_fmt_reply(b"\x01\x00\x04" + b"1234") == (1, ascii_card_id(b"1234"))
    assert decode_fmt_reply(b"\x01\x01\x04" + b"4321") == (1, ascii_card_id(b"1234"))  # read backwards
    for decoder, bad, why in ((decode_raw_reply, b"\x00\x01\x1a", "header alone"),
                              (decode_raw_reply, bytes.fromhex("00011a000a1b2c"), "26 bits need 4 bytes"),
                              (decode_fmt_reply, b"\x00\x00", "header alone"),
                              (decode_fmt_reply, b"\x00\x00\x04123", "count 4 but 3"),
                              (decode_fmt_reply, b"\x00\x02\x031234", "direction 2"),
                              (decode_fmt_reply, b"\x00\x00\x00", "1..255 characters")):
        with pytest.raises(CardFormatError, match=why):
            decoder(bad)
    assert event_card({"format": 1, "length": 26, "data": bytes.fromhex("0a1b2c40")}) == ("26:0a1b2c40", 26)
    assert event_card({"format": 2, "data": b"1234"}) == (ascii_card_id(b"1234"), 0)
    with pytest.raises(CardFormatError, match="format 7"):
        event_card({"format": 7, "data": b"12"})


def test_fmt_tap_reads_osdp_fmt_once() -> None:
    tap = FmtTap()
    read = b"\x00\x00\x0a0001217496"
    tap.read(b"\xff" + packet(0x00, 0x60))  # the CP's poll: a command, not a reply
    first = fmt_reply(0, read)
    tap.read(first[:4])
    tap.read(first[4:] + first)  # the same reply again (a repeated poll): one swipe
    assert tap.take() == [FmtRead(0, read)] and tap.take() == []
    tap.read(reply_packet(0, 0x04 | 2, 0x40, b"") + fmt_reply(0, read, ctrl=0x04 | 3))  # an ACK between: a new swipe
    tap.read(fmt_reply(0x7F & 0x05, read, ctrl=1))  # checksum mode, another PD
    tap.read(secure_reply(5, REPLY_FMT, bytes(16)))  # secure channel (SCS_18): data encrypted
    assert [(r.address, r.sec_type) for r in tap.take()] == [(0, 0), (5, 0), (5, 0x18)]


def pd(scbk: bytes | None = None) -> PdState:
    return PdState(PdSpec("r0", 0, scbk), 0)


def test_fmt_reads_trusted_only_from_plain_readers() -> None:
    stats = {"card_reads": 0, "bad_card_reads": 0, "plain_dropped": 0}
    ok = fmt_read(pd(), FmtRead(0, b"\x00\x00\x041234"), stats)
    assert isinstance(ok, CardRead) and ok.card == ascii_card_id(b"1234") and ok.bits == 0
    assert fmt_read(pd(bytes(16)), FmtRead(0, b"\x00\x00\x041234"), stats) is None  # keyed reader, plain text
    refused = fmt_read(pd(bytes(16)), FmtRead(0, bytes(20), 0x18), stats)
    assert isinstance(refused, ReaderError) and "cannot be decoded" in refused.what and refused.kind == "format"
    broken = fmt_read(pd(), FmtRead(0, b"\x00\x00\x09123"), stats)
    assert isinstance(broken, ReaderError) and "count 9 but 3" in broken.what
    assert stats == {"card_reads": 1, "bad_card_reads": 2, "plain_dropped": 1}


def test_sim_swaps_an_ack_to_a_poll_for_osdp_fmt() -> None:
    inj = FmtInjector()
    ack = b"\xff" + reply_packet(0, 0x04 | 2, 0x40, b"")
    inj.queue(0, b"\x00\x00\x0212")
    inj.commands(packet(0x00, 0x69, bytes(14)))  # osdp_LED: its ACK stays an ACK
    assert inj.outgoing(ack) == ack
    inj.commands(packet(0x00, 0x60))  # osdp_POLL
    swapped = inj.outgoing(ack)
    assert swapped[:1] == b"\xff" and parse_frames(bytearray(swapped)) == [(0x80, REPLY_FMT, b"\x00\x00\x0212")]
    assert inj.outgoing(ack) == ack  # nothing queued any more
    inj.queue(0, b"\x00\x00\x0212")
    secure_ack = packet(0x80, 0x40).replace(b"\x05\x40", b"\x0d\x40")  # security block flag: left alone
    assert inj.outgoing(secure_ack) == secure_ack


def test_sim_refuses_osdp_fmt_on_a_keyed_reader() -> None:
    sim = OsdpReaderSim([0], scbk=bytes(16))
    try:
        with pytest.raises(ValueError, match="plain-text reader only"):
            sim.swipe(ascii_card_id(b"1234"))
    finally:
        sim.stop()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=40), st.sampled_from([b"\x53", fmt_reply(0, b"\x00\x00\x0212"),
                                                                  fmt_reply(3, b"\x00\x01\x00"), packet(0x80, 0x50)])),
                max_size=30))
def test_osdp_card_decoding_never_raises_anything_else(chunks: list[bytes]) -> None:
    tap = FmtTap()
    stats = {"card_reads": 0, "bad_card_reads": 0, "plain_dropped": 0}
    for chunk in chunks:
        tap.read(chunk)
        for read in tap.take():
            ev = fmt_read(pd(), read, stats)
            assert isinstance(ev, CardRead | ReaderError)
        for decoder in (decode_raw_reply, decode_fmt_reply):
            try:
                decoder(chunk)
            except CardFormatError:
                pass
        try:
            event_card({"format": chunk[0] % 4 if chunk else 0, "length": len(chunk) * 3, "data": chunk})
        except CardFormatError:
            pass
    assert len(tap.found) <= 64
