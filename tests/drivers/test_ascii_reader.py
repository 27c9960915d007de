"""The serial reader parsers (EM4100/RDM6300 frames, Wiegand converter lines): known vectors, resync, and
fuzzing (bad input never raises)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ascii_reader import BadFrame, CardSeen, Em4100Parser, WiegandLineParser, em4100_frame
from drivers.cards import card_id, parse_card_id, wiegand_encode

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
