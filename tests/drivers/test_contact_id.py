"""Contact ID lines (spaced and DTMF with checksum), the event-code -> kind table, SIA-DCS payloads, the line decoder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import cid_codes, sia_codes
from drivers import contact_id as cid
from drivers.alarm_codes import KINDS
from drivers.alarm_stream import LineDecoder

pytestmark = pytest.mark.timeout(60)


# ---------------------------------------------------------------------- Contact ID
def test_spaced_lines() -> None:
    ev = cid.parse_line("1234 18 1110 01 012")
    assert (ev.account, ev.qualifier, ev.code, ev.group, ev.zone, ev.kind, ev.restore) == ("1234", 1, 110, 1, 12, "fire", False)
    ev = cid.parse_line("  1234 18 3111 02 004 7 ")
    assert ev.kind == "smoke" and ev.restore and ev.zone == 4
    assert cid.parse_line("1234 18 1602 00 000").liveness_only


def dtmf_line(acct: str, q: int, code: int, group: int, zone: int) -> str:
    """Reference: 0 sent as A; checksum digit makes the digit sum (0 counting 10) a multiple of 15."""
    digits = f"{acct}18{q}{code:03d}{group:02d}{zone:03d}".replace("0", "A")
    total = sum(10 if c == "A" else int(c, 16) for c in digits)
    s = (15 - total % 15) % 15
    return digits + ("F" if s == 0 else format(s, "X"))


def test_dtmf_lines_with_checksum() -> None:
    line = dtmf_line("1234", 1, 131, 1, 15)
    ev = cid.parse_line(line)
    assert (ev.code, ev.zone, ev.kind) == (131, 15, "burglary")
    assert cid.format_line("1234", 1, 131, 1, 15, dtmf=True) == line
    bad = line[:-1] + ("1" if line[-1] != "1" else "2")
    with pytest.raises(cid.ContactIdError):
        cid.parse_line(bad)


@pytest.mark.parametrize("code,kind", [(110, "fire"), (111, "smoke"), (120, "panic"), (130, "burglary"),
                                       (301, "fault"), (302, "fault"), (373, "fault"), (602, "test"),
                                       (200, "supervisory"), (143, "fault"), (147, "fault"), (102, "supervisory"),
                                       (119, "other"), (999, "other")])
def test_kind_table(code: int, kind: str) -> None:
    """The full table is checked in tests/conformance/contact_id; 119 is no code at all (unknown)."""
    assert cid_codes.describe(code).kind == kind


def test_unknown_code_is_an_event_that_says_so() -> None:
    ev = cid.parse_line("1234 18 1119 01 004")
    assert (ev.kind, ev.text, ev.restore, ev.informational) == ("other", "unknown code 119", False, False)
    assert cid.parse_line("1234 18 3119 01 004").restore


def test_qualifiers() -> None:
    closing = cid.parse_line("1234 18 3401 01 002")
    assert closing.informational and not closing.restore and closing.text.endswith("closing")
    still = cid.parse_line("1234 18 6130 01 002")
    assert not still.restore and not still.informational and still.text.endswith("(still present)")


@settings(max_examples=500, deadline=None)
@given(st.integers(-5, 2000), st.integers(-2, 10), st.text(max_size=4))
def test_code_tables_answer_anything(code: int, qualifier: int, sia: str) -> None:
    for m in (cid_codes.describe(code, qualifier), sia_codes.describe(sia)):
        assert m.kind in KINDS
        assert m.action in ("raise", "restore", "log")
        assert bool(m.restores) == (m.action == "restore")


def test_sia_payloads() -> None:
    evs = cid.parse_sia("Nri1/FA012/BR3")
    assert [(e.code, e.zone, e.kind, e.restore) for e in evs] == [("FA", 12, "fire", False), ("BR", 3, "burglary", True)]
    assert cid.parse_sia("Nri1/OP001")[0].informational
    assert cid.parse_sia("NRP")[0].liveness_only
    with pytest.raises(cid.ContactIdError):
        cid.parse_sia("garbage")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_contact_id_parsers_only_raise_their_error(text: str) -> None:
    for fn in (cid.parse_line, lambda t: cid.parse_payload("1234", t), cid.parse_sia):
        try:
            fn(text)
        except cid.ContactIdError:
            pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 40))
def test_line_decoder_is_bounded(data: bytes, chunk: int) -> None:
    dec = LineDecoder(max_line=64)
    for i in range(0, len(data), chunk):
        for line in dec.feed(data[i:i + chunk]):
            assert "\n" not in line and "\r" not in line
        assert len(dec.buf) <= 64 + chunk
