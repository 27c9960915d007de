"""Card ids, Wiegand/EM4100 decoding and the serial parsers: known vectors, and fuzzing (bad input never raises)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ascii_reader import BadFrame, CardSeen, Em4100Parser, WiegandLineParser, em4100_frame
from drivers.cards import (
    CardFormatError,
    card_id,
    card_id_from_bitstring,
    decode,
    normalize_card_id,
    parse_card_id,
    wiegand_encode,
)
from gateway.access import Door, decide, door_in_scope, door_serves_unit, in_schedule, normalize_scope

# ---------------------------------------------------------------------- canonical ids


def test_contract_example_and_padding() -> None:
    assert card_id(26, bytes.fromhex("0a1b2c40")) == "26:0a1b2c40"
    # padding bits past the count are cleared: one card, one id
    assert card_id(26, bytes.fromhex("0a1b2c7f")) == "26:0a1b2c40"
    assert normalize_card_id("26:0A1B2C40") == "26:0a1b2c40"
    with pytest.raises(CardFormatError):
        parse_card_id("26:0a1b2c41")  # bits set past bit 26
    with pytest.raises(CardFormatError):
        parse_card_id("26:0a1b2c")  # too short
    for bad in ("", "x", "0:00", "26-0a1b2c40", "26:zz1b2c40", "2000:00"):
        with pytest.raises(CardFormatError):
            normalize_card_id(bad)


def test_h10301_known_card() -> None:
    # facility 12, number 3456: the textbook 26-bit layout with both parity bits
    card = wiegand_encode("H10301", 12, 3456)
    bits, value = parse_card_id(card)
    assert bits == 26
    assert value >> 25 == 0  # even parity over 12 leading bits (0b00001100 0000: two ones)
    d = decode(card)
    assert (d.format, d.facility, d.number, d.parity_ok) == ("H10301", 12, 3456, True)
    flipped = card_id_from_bitstring(format(value ^ (1 << 10), "026b"))
    assert decode(flipped).parity_ok is False


@pytest.mark.parametrize("fmt,bits,fac,num", [("H10301", 26, 255, 65535), ("H10306", 34, 65535, 65535),
                                              ("H10304", 37, 65535, 524287), ("H10304", 37, 1, 2)])
def test_wiegand_round_trip(fmt: str, bits: int, fac: int, num: int) -> None:
    d = decode(wiegand_encode(fmt, fac, num))
    assert (d.bits, d.format, d.facility, d.number, d.parity_ok) == (bits, fmt, fac, num, True)


def test_em4100_and_unknown_lengths_stay_raw() -> None:
    d = decode(card_id(40, bytes.fromhex("0f00a1b2c3")))
    assert (d.format, d.facility, d.number) == ("EM4100", 0x0F, 0x00A1B2C3)
    raw = decode("35:0123456780")
    assert raw.format is None and raw.card == "35:0123456780"


@given(st.integers(1, 256).flatmap(lambda n: st.tuples(st.just(n), st.binary(min_size=(n + 7) // 8,
                                                                             max_size=(n + 7) // 8))))
def test_card_id_round_trips(case: tuple[int, bytes]) -> None:
    bits, data = case
    card = card_id(bits, data)
    assert normalize_card_id(card) == card
    b, value = parse_card_id(card)
    assert b == bits and value < (1 << bits)
    decode(card)  # never raises on a valid id


@given(st.text(max_size=40))
def test_parse_card_id_only_raises_its_own_error(text: str) -> None:
    try:
        normalize_card_id(text)
    except CardFormatError:
        pass


# ---------------------------------------------------------------------- EM4100 / RDM6300 frames


def test_em4100_frames_checksums_and_resync() -> None:
    p = Em4100Parser()
    good = em4100_frame(bytes.fromhex("0f00a1b2c3"))
    bad = bytearray(good)
    bad[11:13] = b"00"  # wrong checksum
    out = p.feed(b"\xff\x00junk" + good[:5])
    assert all(isinstance(e, BadFrame) for e in out)
    out = p.feed(good[5:] + bytes(bad) + good)
    cards = [e for e in out if isinstance(e, CardSeen)]
    assert cards == [CardSeen("40:0f00a1b2c3"), CardSeen("40:0f00a1b2c3")]
    assert p.stats.bad_checksum == 1 and p.stats.frames == 2


@settings(max_examples=300)
@given(st.lists(st.one_of(st.binary(max_size=40), st.sampled_from([b"\x02", b"\x03", b"\x020F00A1B2C3"])),
                max_size=20))
def test_em4100_parser_never_raises(chunks: list[bytes]) -> None:
    p = Em4100Parser()
    for chunk in chunks:
        for ev in p.feed(chunk):
            assert isinstance(ev, (CardSeen, BadFrame))
    assert len(p.buf) < 14 + 40 * 20  # bounded


@given(st.binary(min_size=5, max_size=5), st.binary(max_size=20))
def test_em4100_valid_frame_found_after_noise(raw: bytes, noise: bytes) -> None:
    p = Em4100Parser()
    out = p.feed(noise.replace(b"\x02", b"") + em4100_frame(raw))
    assert CardSeen(card_id(40, raw)) in out


# ---------------------------------------------------------------------- Wiegand converter lines


def test_wiegand_lines_with_parity() -> None:
    p = WiegandLineParser()
    card = wiegand_encode("H10301", 12, 3456)
    bits = format(parse_card_id(card)[1], "026b")
    bad_bits = bits[:-1] + ("0" if bits[-1] == "1" else "1")
    out = p.feed(f"{bits}\r\n{card}\n{bad_bits}\nhello\n35:0123456780\n".encode())
    assert out[:2] == [CardSeen(card), CardSeen(card)]
    assert out[2] == BadFrame("parity") and out[3] == BadFrame("garbage")
    assert out[4] == CardSeen("35:0123456780")  # unknown length: kept raw
    assert p.stats.bad_parity == 1


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=80), max_size=20))
def test_wiegand_parser_never_raises(chunks: list[bytes]) -> None:
    p = WiegandLineParser()
    for chunk in chunks:
        for ev in p.feed(chunk):
            assert isinstance(ev, (CardSeen, BadFrame))
    assert len(p.buf) <= 300 + 80


@given(st.sampled_from(["H10301", "H10306", "H10304"]), st.integers(0, 255), st.integers(0, 65535))
def test_wiegand_any_valid_card_accepted(fmt: str, fac: int, num: int) -> None:
    card = wiegand_encode(fmt, fac, num)
    bits, value = parse_card_id(card)
    assert WiegandLineParser().parse_line(format(value, f"0{bits}b").encode()) == CardSeen(card)


# ---------------------------------------------------------------------- rules (pure)

TZ = ZoneInfo("Asia/Shanghai")


def door(id_: str = "b3-u1", building: str = "3", unit: str = "3-1") -> Door:
    return Door(id_, "", building, unit, "r", 0, 0, 5, 60)


def test_scope_forms() -> None:
    assert normalize_scope(["building 3", "Building:4", "all", "b3-u1", "unit 3-1"]) == \
        ["building:3", "building:4", "*", "b3-u1", "unit:3-1"]
    assert door_in_scope(door(), ["building:3"]) and door_in_scope(door(), ["unit:3-1"])
    assert not door_in_scope(door(), ["building:4", "b3-u2"])
    assert door_serves_unit(door(), "3-1-0201") and not door_serves_unit(door(), "3-2-0201")
    assert door_serves_unit(door("b3-main", unit=""), "3-2-0201")


def test_a_window_that_never_opens_is_refused() -> None:
    from pydantic import ValidationError

    from gateway.access import Window

    with pytest.raises(ValidationError, match="never opens"):
        Window.model_validate({"days": [1], "from": "22:00", "to": "06:00"})
    with pytest.raises(ValidationError, match="never opens"):
        Window.model_validate({"days": [1], "from": "08:00", "to": "08:00"})
    assert Window.model_validate({"days": [1], "from": "22:00", "to": "24:00"}).end == "24:00"


def test_schedule_and_holidays() -> None:
    windows = [{"days": [1, 2, 3, 4, 5], "from": "08:00", "to": "18:00"}]
    monday_10 = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)
    assert in_schedule(windows, monday_10, set())
    assert not in_schedule(windows, monday_10, {"2026-11-23"})
    assert not in_schedule(windows, datetime(2026, 11, 23, 18, 0, tzinfo=TZ), set())
    assert not in_schedule(windows, datetime(2026, 11, 22, 10, 0, tzinfo=TZ), set())  # Sunday


def test_decision_order() -> None:
    row = {"status": "revoked", "valid_from": "2030-01-01T00:00:00.000Z", "valid_until": None,
           "schedule": None, "doors": "[]"}
    now, local = "2026-11-23T02:00:00.000Z", datetime(2026, 11, 23, 10, 0, tzinfo=TZ)
    assert decide(None, door(), now, local, set()) == "unknown"
    assert decide(row, door(), now, local, set()) == "revoked"
    row["status"] = "active"
    assert decide(row, door(), now, local, set()) == "not_yet_valid"
    row["valid_from"], row["valid_until"] = None, "2026-01-01T00:00:00.000Z"
    assert decide(row, door(), now, local, set()) == "expired"
    row["valid_until"] = None
    row["schedule"] = '[{"days":[6,7],"from":"08:00","to":"18:00"}]'
    assert decide(row, door(), now, local, set()) == "outside_schedule"
    row["schedule"] = None
    assert decide(row, door(), now, local, set()) == "not_permitted"
    row["doors"] = '["building:3"]'
    assert decide(row, door(), now, local, set()) is None
    row["doors"] = "not json"
    assert decide(row, door(), now, local, set()) == "not_permitted"  # deny on doubt
