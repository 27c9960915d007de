"""DC-09 parsers under hypothesis: nothing a panel (or an attacker) sends makes them raise or hang.

Random bytes, well-framed blocks with random content (both CRC forms, encrypted with random
pads of any byte value), random SIA-DCS data, random streams cut at random places: every
input ends in a message or a refusal with a verdict, and valid content always comes back out.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.sia_dc09 import (
    BlockError,
    Dc09Message,
    Framer,
    SiaDcsError,
    aes_decrypt,
    aes_encrypt,
    crc16_arc,
    frame,
    parse_block,
    parse_sia_dcs,
    split_plain,
    to_binary_crc,
)
from drivers.sia_dc09.blocks import format_timestamp

KEY = bytes(range(16))
NOW = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SIA_ALPHABET = string.ascii_letters + string.digits + "/^|*'\" :-.#"


@FAST
@given(st.text(SIA_ALPHABET, max_size=80))
def test_sia_dcs_parser_never_raises_anything_but_its_error(data: str) -> None:
    try:
        out = parse_sia_dcs(data)
    except SiaDcsError:
        return
    assert out.events or out.text
    for e in out.events:
        assert len(e.code) == 2 and e.code.isupper() and (e.address == "" or e.address.isdigit())


@FAST
@given(st.lists(st.tuples(st.sampled_from(["", "ri", "id", "pi", "ti"]), st.integers(0, 99),
                          st.sampled_from(["BA", "FA", "CL", "RP", "YT", "JC"]), st.integers(0, 9999),
                          st.sampled_from(["", "^zone name^", "*'name'NM"]), st.sampled_from(["/", ""])),
                min_size=1, max_size=5))
def test_sia_dcs_events_come_back_with_or_without_separators(items: list[tuple[str, int, str, int, str, str]]) -> None:
    data = "N" + "".join(f"{m}{v if m else ''}{sep}{code}{addr}{text}{sep}" for m, v, code, addr, text, sep in items)
    out = parse_sia_dcs(data)
    assert [(e.code, e.zone) for e in out.events] == [(code, addr) for _m, _v, code, addr, _t, _s in items]


@FAST
@given(st.binary(max_size=300), st.booleans())
def test_parse_block_never_raises(data: bytes, window: bool) -> None:
    res = parse_block(data, keys=lambda a: KEY, now=NOW, accounts={"1234"}, plain_window=window)
    assert isinstance(res, (Dc09Message, BlockError))


@FAST
@given(st.sampled_from(["SIA-DCS", "ADM-CID", "NULL", "XYZ"]), st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60),
       st.booleans(), st.booleans())
def test_well_framed_random_content_gets_a_verdict(token: str, payload: str, binary: bool, star: bool) -> None:
    content = f'"{"*" if star else ""}{token}"0001L0#1234[{payload}]{format_timestamp(NOW)}'.encode("latin-1")
    block = frame(content)
    block = to_binary_crc(block) if binary else block
    [body] = Framer().feed(block)
    res = parse_block(body, keys=lambda a: KEY, now=NOW)
    assert isinstance(res, (Dc09Message, BlockError))
    if isinstance(res, BlockError) and res.header_read:
        assert res.seq == "0001" and res.account == "1234" and res.binary_crc is binary


@FAST
@given(st.binary(min_size=0, max_size=16), st.text("0123456789 N/ABCDri", max_size=30))
def test_any_pad_bytes_are_found_and_dropped(pad: bytes, payload: str) -> None:
    """The pad may hold any byte -- '|', '[' and ']' included -- and the data still comes out."""
    tail = f"|#1234|{payload}]{format_timestamp(NOW)}".encode()
    pad = (pad + bytes(16))[: (-len(tail)) % 16]
    plain = pad + tail
    got = split_plain(aes_decrypt(KEY, aes_encrypt(KEY, plain)), "1234")
    assert got is not None and got[1] == tail[1:]


@FAST
@given(st.lists(st.binary(max_size=40), max_size=8), st.integers(1, 40), st.booleans())
def test_framer_finds_both_crc_forms_among_noise(noise: list[bytes], chunk: int, binary: bool) -> None:
    good = frame('"NULL"0001L0#1234[]')
    good = to_binary_crc(good) if binary else good
    stream = b"".join(n.replace(b"\n", b"") + good for n in noise) or good
    f = Framer()
    out: list[bytes] = []
    for i in range(0, len(stream), chunk):
        out += f.feed(stream[i:i + chunk])
    assert out.count(good[1:-1]) == max(1, len(noise))


def test_binary_crc_bytes_that_are_lf_or_cr_do_not_cut_the_block() -> None:
    found = {}
    for seq in range(1, 3000):
        content = f'"NULL"{seq:04d}L0#1234[]'.encode()
        hi, lo = divmod(crc16_arc(content), 256)
        for b in (0x0A, 0x0D):
            if b in (hi, lo):
                found.setdefault((b, hi == b), content)
    assert len(found) >= 3
    for content in found.values():
        block = to_binary_crc(frame(content))
        assert Framer().feed(b"\x00noise" + block + b"\x00") == [block[1:-1]]
        assert isinstance(parse_block(block[1:-1]), Dc09Message)
