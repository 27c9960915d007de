"""OSDP card reads from public sources (osdp_reads.json): decoded from packets, reply data and libosdp events,
then sent by libosdp's own PD (the simulated reader) over TCP to the driver, and through the gateway to recorded
access events: raw bits (format 0 and 1) and characters (osdp_FMT) get ids that never collide."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, until

from drivers.cards import CardFormatError, ascii_card_id
from drivers.osdp import OsdpBus, PdSpec
from drivers.osdp.cardread import REPLY_FMT, REPLY_RAW, decode_fmt_reply, decode_raw_reply, event_card
from drivers.osdp.frames import packets
from drivers.reader import CardRead, ReaderError, ReaderStatus
from drivers.sim.osdp_reader import OsdpReaderSim
from gateway.access import AccessComponent, CardIn
from gateway.daemon import build_context, stop_context
from tests.conformance.readers.corpus import check_decoded, load, wire

pytestmark = pytest.mark.timeout(120)

CASES = load("osdp_reads.json")
CODES = {"osdp_RAW": REPLY_RAW, "osdp_FMT": REPLY_FMT}


def reply_of(case: dict[str, Any]) -> tuple[int, bytes]:
    """(reply code, reply data) of a packet or data case."""
    if "packet" in case:
        (pkt,) = packets(bytearray(wire(case, "packet")))
        return pkt.code, pkt.data
    return CODES[case["reply"]], wire(case, "data")


def event_of(case: dict[str, Any]) -> dict[str, Any]:
    ev = dict(case["event"])
    ev["data"] = bytes.fromhex(ev["data"].replace(" ", ""))
    return ev


def decode_case(case: dict[str, Any]) -> tuple[int | None, str, int]:
    """(reader number, card id, bits) as the gateway decodes the case."""
    if case["reply"] == "libosdp":
        card, bits = event_card(event_of(case))
        return None, card, bits
    code, data = reply_of(case)
    assert code == CODES[case["reply"]]
    reader, card = decode_raw_reply(data) if code == REPLY_RAW else decode_fmt_reply(data)
    return reader, card, data[2] | (data[3] << 8) if code == REPLY_RAW else 0


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_read_decodes_as_its_source_says(case: dict[str, Any]) -> None:
    exp = case["expect"]
    if "refused" in exp:
        with pytest.raises(CardFormatError, match=exp["refused"]):
            decode_case(case)
        return
    reader, card, bits = decode_case(case)
    assert card == exp["card"]
    if "reader" in exp:
        assert reader == exp["reader"]
    if "bits" in exp:
        assert bits == exp["bits"]
    if "text" in exp:
        assert card == ascii_card_id(exp["text"].encode())
    check_decoded(card, exp)


def test_characters_and_bits_never_share_an_id() -> None:
    """The old translation read osdp_FMT's count as bits: ten characters became '10:...' or 80 raw bits."""
    chars = b"0001217496"
    ascii_id = event_card({"format": 2, "data": chars})[0]
    raw_80 = event_card({"format": 1, "length": 80, "data": chars})[0]
    raw_10 = event_card({"format": 0, "length": 10, "data": chars[:2]})[0]
    assert len({ascii_id, raw_80, raw_10}) == 3
    assert ascii_id == "ascii:30303031323137343936" and raw_80 == "80:30303031323137343936"


# ---------------------------------------------------------------------- libosdp's PD on the wire
def send(sim: OsdpReaderSim, case: dict[str, Any]) -> None:
    """Make the simulated reader (libosdp's PD) send the case's read."""
    if case["reply"] == "libosdp":
        ev = event_of(case)
        sim.raw_read(ev["length"], ev["data"], raw=ev["format"] == 0)
        return
    code, data = reply_of(case)
    if code == REPLY_FMT:
        sim.send_fmt(data)
    else:
        sim.raw_read(data[2] | (data[3] << 8), data[4:], raw=data[1] == 0)


async def next_read(queue: asyncio.Queue[Any], what: str) -> CardRead | ReaderError:
    """The next card read (or refused read) off the driver's queue; the reader must stay online meanwhile."""
    while True:
        ev = await asyncio.wait_for(queue.get(), 5)
        if isinstance(ev, CardRead | ReaderError):
            return ev
        assert not isinstance(ev, ReaderStatus) or ev.online, f"{what}: reader went offline"


def test_corpus_from_libosdp_pd_over_tcp_to_the_driver() -> None:
    on_wire = [c for c in CASES if c.get("wire", True)]

    async def main() -> None:
        sim = OsdpReaderSim([0]).start()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        bus = OsdpBus(sim.url, 115200, [PdSpec("r0", 0)], asyncio.get_running_loop(), queue)
        bus.start()
        try:
            while not isinstance(ev := await asyncio.wait_for(queue.get(), 10), ReaderStatus) or not ev.online:
                pass
            for case in on_wire:
                send(sim, case)
                ev = await next_read(queue, case["id"])
                if "refused" in case["expect"]:
                    assert isinstance(ev, ReaderError) and case["expect"]["refused"] in ev.what, (case["id"], ev)
                else:
                    assert isinstance(ev, CardRead) and ev.card == case["expect"]["card"], (case["id"], ev)
            assert sim.online(), "osdp_FMT replies do not take the reader offline"
            assert bus.stats["card_reads"] == sum(1 for c in on_wire if "card" in c["expect"])
            # libosdp's PD itself drops a CardRead in CardFormat.ASCII (deprecated): nothing, or the right id, arrives
            # before the next raw read - never a misread
            from osdp import CardFormat, Event

            with sim._lock:
                sim.pds[0].pd.ctx.submit_event({"event": Event.CardRead, "reader_no": 0, "direction": 0,
                                                "format": CardFormat.ASCII, "data": b"0001217496"})
            sim.raw_read(16, b"\x12\xab")
            ev = await next_read(queue, "ascii event")
            if isinstance(ev, CardRead) and ev.card.startswith("ascii:"):  # a libosdp that sends osdp_FMT again
                assert ev.card == ascii_card_id(b"0001217496")
                ev = await next_read(queue, "raw after ascii")
            assert isinstance(ev, CardRead) and ev.card == "16:12ab"
        finally:
            await asyncio.to_thread(bus.stop)
            sim.stop()

    asyncio.run(main())


def test_osdp_ascii_and_raw_reads_recorded_as_access_events(tmp_path: Path) -> None:
    """Through the gateway: a card delivered as characters and one delivered as the same bytes in bits are two
    cards; the character card, once issued, opens the door."""
    text = b"0001217496"

    async def main() -> None:
        sim = OsdpReaderSim([0]).start()
        toml = f'[[readers]]\nid = "r0"\ndriver = "osdp"\nport = "{sim.url}"\n\n[[doors]]\nid = "d0"\nreader = "r0"\n'
        ctx = await build_context(make_config(tmp_path, toml), components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]

        def events(kind: str) -> list[Any]:
            return ctx.events.query(0, 1000, [kind])

        try:
            await until(lambda: access.readers.online.get("r0"), 20, "reader online")
            sim.swipe(ascii_card_id(text))
            await until(lambda: len(events("access.denied")) == 1, 10, "ascii read recorded")
            sim.swipe("80:" + text.hex(), fmt="raw")
            await until(lambda: len(events("access.denied")) == 2, 10, "raw read recorded")
            assert [e.data["card"] for e in events("access.denied")] == [ascii_card_id(text), "80:" + text.hex()]
            body = {"card": ascii_card_id(text), "unit": "3-1-0201", "holder_kind": "resident", "doors": ["d0"]}
            issued = await access.cards.issue_card(CardIn.model_validate(body), "tech", "technician")
            assert issued["format"] == "ASCII" and issued["number"] == 1217496
            sim.swipe(ascii_card_id(text))
            granted = await until(lambda: events("access.granted"), 10, "ascii card granted")
            assert granted[0].data["card"] == ascii_card_id(text)
        finally:
            await stop_context(ctx)
            sim.stop()

    asyncio.run(main())
