"""Card ids and Wiegand/EM4100 decoding: known vectors, and fuzzing (bad input never raises)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.cards import (
    CardFormatError,
    card_id,
    card_id_from_bitstring,
    decode,
    normalize_card_id,
    parse_card_id,
    wiegand_encode,
)

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
