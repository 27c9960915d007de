"""The serial reader parsers (EM4100/RDM6300 and ID-xxLA frames, Wiegand converter lines, text lines, auto):
known vectors, resync, refusal reasons, and fuzzing (bad input never raises, buffers stay bounded, counters add up).
Frames from public sources: tests/conformance/readers/."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ascii_reader import BadFrame, CardSeen, Em4100Parser, WiegandLineParser, em4100_frame, parser_for
from drivers.cards import (
    WIEGAND_FORMATS,
    ascii_card_id,
    card_id,
    decode,
    normalize_card_id,
    parse_card_id,
    wiegand_encode,
    wiegand_wrap,
)
from drivers.serial_frames import id12la_frame

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


# ---------------------------------------------------------------------- framings (drivers.serial_frames)
FRAMINGS_UNDER_TEST = ["auto", "rdm6300", "id12la", "wiegand", "wiegand-hex", "wiegand-decimal", "line"]


def test_default_framing_is_what_each_driver_always_read() -> None:
    assert type(parser_for("serial-ascii")) is Em4100Parser and parser_for("serial-ascii").framing == "rdm6300"
    assert type(parser_for("wiegand-serial")) is WiegandLineParser
    assert parser_for("serial-ascii", "id12la").feed(id12la_frame(bytes.fromhex("7c0055f8c4"))) == \
        [CardSeen("40:7c0055f8c4")]
    with pytest.raises(ValueError, match="unknown reader framing"):
        parser_for("serial-ascii", "em-marine")


def test_refusals_say_why() -> None:
    p = parser_for("serial-ascii", "rdm6300")
    (bad,) = p.feed(b"\x0268003B51C6CB\x03")
    assert bad == BadFrame("checksum") and "checksum CB, the data's XOR is C4" in bad.detail
    (cut,) = p.feed(b"\x020114AE3BBC<\x03")
    assert cut == BadFrame("framing") and "cut short" in cut.detail
    (crlf,) = p.feed(id12la_frame(bytes.fromhex("7c0055f8c4")))
    assert crlf == BadFrame("framing") and "no \\x03 after 12 characters (rdm6300)" in crlf.detail
    assert p.feed(b"\x027C0055F8C415\x03") == [CardSeen("40:7c0055f8c4")]  # the CR LF ETX rest was that frame's
    assert (p.stats.frames, p.stats.bad_checksum, p.stats.garbage) == (1, 1, 2)


def test_auto_takes_frames_and_lines_in_any_order() -> None:
    tag = bytes.fromhex("0500207b32")
    bits = format(parse_card_id(wiegand_encode("H10301", 99, 999))[1], "026b")
    stream = id12la_frame(tag) + em4100_frame(tag) + f"{bits}\r\n0001217496\r\n".encode() + b"\x01\x7f\r\n"
    out = parser_for("serial-ascii", "auto").feed(stream)
    assert out == [CardSeen("40:0500207b32"), CardSeen("40:0500207b32"), CardSeen(wiegand_encode("H10301", 99, 999)),
                   CardSeen(ascii_card_id(b"0001217496")), BadFrame("garbage")]


def test_converter_lines_rebuild_the_wiegand_frame() -> None:
    card26, card34 = wiegand_encode("H10301", 12, 3456), wiegand_encode("H10306", 1000, 60000)
    hexp = parser_for("wiegand-serial", "wiegand-hex")
    assert hexp.feed(b"0C0D80\r" + f"{(1000 << 16) | 60000:08X}\r\n".encode()) == [CardSeen(card26), CardSeen(card34)]
    assert hexp.feed(b"0C0D8\r\nXYZ\r\n") == [BadFrame("framing"), BadFrame("garbage")]  # 5 digits; not hex
    dec = parser_for("wiegand-serial", "wiegand-decimal")
    assert dec.feed(b"%010d\r\n" % ((12 << 16) | 3456)) == [CardSeen(card26)]
    assert dec.feed(b"99999999\r\n") == [BadFrame("framing")]  # more than 24 data bits
    assert parser_for("wiegand-serial", "wiegand-decimal", 34).feed(b"%d\n" % ((1000 << 16) | 60000)) == \
        [CardSeen(card34)]


def test_text_lines_are_characters() -> None:
    p = parser_for("serial-ascii", "line")
    assert p.feed(b"\x020001217496\x03\r\n 12AB \n\xff\xfe\n") == [
        CardSeen(ascii_card_id(b"0001217496")), CardSeen(ascii_card_id(b"12AB")), BadFrame("garbage")]
    assert p.feed(b"9" * 400) == [BadFrame("overlong")] and not p.buf


def stream_of(framing: str) -> st.SearchStrategy[list[bytes]]:
    """Chunks of a port's bytes: noise, valid frames of every kind, and pieces of them."""
    frames = st.one_of(st.binary(min_size=5, max_size=5).map(em4100_frame),
                       st.binary(min_size=5, max_size=5).map(id12la_frame),
                       st.sampled_from([b"\r", b"\n", b"\x02", b"\x03", b"0C0D80\r", b"0001217496\r\n",
                                        b"00110001100000011111001111\n", b"26:0a1b2c40\n"]),
                       st.binary(max_size=40))
    return st.lists(frames, max_size=25).map(lambda parts: [p for part in parts for p in (part[:3], part[3:])])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FRAMINGS_UNDER_TEST).flatmap(lambda f: st.tuples(st.just(f), stream_of(f))),
       st.sampled_from([0, 26, 34, 37]))
def test_every_framing_survives_any_bytes(case: tuple[str, list[bytes]], wiegand_bits: int) -> None:
    framing, chunks = case
    p = parser_for("serial-ascii", framing, wiegand_bits)
    cards = refused = 0
    for chunk in chunks:
        for ev in p.feed(chunk):
            assert isinstance(ev, CardSeen | BadFrame)
            if isinstance(ev, CardSeen):
                normalize_card_id(ev.card)  # every id it makes is a valid canonical id
                cards += 1
            else:
                assert ev.what in ("checksum", "parity", "framing", "garbage", "overlong")
                refused += 1
        assert len(p.buf) <= 300 + 60  # bounded whatever arrives
    assert p.stats.frames == cards
    assert p.stats.bad_checksum + p.stats.bad_parity + p.stats.garbage == refused


@given(st.sampled_from(["rdm6300", "id12la", "auto"]), st.binary(min_size=5, max_size=5), st.binary(max_size=30))
def test_a_valid_frame_after_noise_is_found(framing: str, raw: bytes, noise: bytes) -> None:
    frame = id12la_frame(raw) if framing == "id12la" else em4100_frame(raw)
    p = parser_for("serial-ascii", framing)
    out = p.feed(noise.replace(b"\x02", b"") + b"\r\n" + frame)
    assert CardSeen(card_id(40, raw)) in out


@given(st.sampled_from(["H10301", "H10306", "H10304"]).flatmap(
    lambda f: st.tuples(st.just(f), st.integers(0, (1 << (WIEGAND_FORMATS[f][0] - 2)) - 1))))
def test_wiegand_data_in_hex_or_decimal_is_the_frame_in_bits(case: tuple[str, int]) -> None:
    fmt, data = case
    bits = WIEGAND_FORMATS[fmt][0]
    card = wiegand_wrap(fmt, data)
    assert decode(card).parity_ok and parse_card_id(card)[0] == bits
    frame_bits = format(parse_card_id(card)[1], f"0{bits}b")
    assert WiegandLineParser().feed(frame_bits.encode() + b"\n") == [CardSeen(card)]
    assert parser_for("wiegand-serial", "wiegand-decimal", bits).feed(b"%d\n" % data) == [CardSeen(card)]
    assert parser_for("wiegand-serial", "wiegand-hex", bits).feed(b"%X\r" % data) == [CardSeen(card)]
