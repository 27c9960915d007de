"""Card ids (bit ids and character ids) and Wiegand/EM4100 decoding: known vectors, and fuzzing (bad input
never raises; characters never share an id with bits)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.cards import (
    WIEGAND_FORMATS,
    CardFormatError,
    ascii_card_id,
    ascii_chars,
    card_id,
    card_id_from_bitstring,
    decode,
    normalize_card_id,
    parse_card_id,
    wiegand_encode,
    wiegand_wrap,
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


# ---------------------------------------------------------------------- character ids (osdp_FMT, text lines)


def test_character_ids() -> None:
    card = ascii_card_id(b"0001217496")
    assert card == "ascii:30303031323137343936"
    assert normalize_card_id("ASCII:3030303132313734393 6".replace(" ", "")) == card
    assert ascii_chars(card) == b"0001217496"
    d = decode(card)
    assert (d.card, d.bits, d.format, d.facility, d.number) == (card, 0, "ASCII", None, 1217496)
    assert decode(ascii_card_id(b"12AB")).number is None  # not a decimal number: nothing to show
    with pytest.raises(CardFormatError, match="character id, not a bit id"):
        parse_card_id(card)
    for bad in ("ascii:", "ascii:3", "ascii:zz", "ascii:" + "30" * 256, "ascii 3031"):
        with pytest.raises(CardFormatError):
            normalize_card_id(bad)
    with pytest.raises(CardFormatError):
        ascii_card_id(b"")


@given(st.binary(min_size=1, max_size=64))
def test_characters_never_read_as_bits(chars: bytes) -> None:
    """The same bytes as characters, as 8 bits each, or with the character count taken for bits: three cards."""
    as_chars = ascii_card_id(chars)
    as_bits = card_id(8 * len(chars), chars)
    count_as_bits = card_id(len(chars), chars)
    assert len({as_chars, as_bits, count_as_bits}) == 3
    assert normalize_card_id(as_chars) == as_chars and ascii_chars(as_chars) == chars


@given(st.sampled_from(["H10301", "H10306", "H10304"]).flatmap(
    lambda f: st.tuples(st.just(f), st.integers(0, (1 << WIEGAND_FORMATS[f][3][1]) - 1),
                        st.integers(0, (1 << WIEGAND_FORMATS[f][4][1]) - 1))))
def test_wiegand_wrap_is_encode_without_the_split(case: tuple[str, int, int]) -> None:
    fmt, fac, num = case
    bits, _e, _o, (_ff, fw), (_nf, nw) = WIEGAND_FORMATS[fmt]
    assert wiegand_wrap(fmt, (fac << nw) | num) == wiegand_encode(fmt, fac, num)
    with pytest.raises(CardFormatError):
        wiegand_wrap(fmt, 1 << (bits - 2))


@given(st.one_of(st.text(max_size=40), st.from_regex(r"ascii:[0-9a-fA-F ]{0,20}", fullmatch=True),
                 st.from_regex(r"[0-9]{1,5}:[0-9a-f]{0,12}", fullmatch=True)))
def test_any_text_is_a_card_id_or_a_card_format_error(text: str) -> None:
    try:
        card = normalize_card_id(text)
    except CardFormatError:
        return
    assert normalize_card_id(card) == card
    decode(card)
