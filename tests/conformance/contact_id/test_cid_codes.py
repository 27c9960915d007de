"""The Contact ID table against the public DC-05 lists, group by group, and against pysiaalarm's CID->SIA mapping.

Every code of SIA DC-05 Appendix C (two independent transcriptions) and of the later Ademco list
must be known; each DC-05 group must mean what the group says, with every exception named here;
the SIA code pysiaalarm converts a code to must mean the same kind (:mod:`drivers.sia_codes`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drivers import cid_codes, sia_codes

pytestmark = pytest.mark.timeout(30)

HERE = Path(__file__).parent


def load(name: str, base: int = 10) -> dict[int, str]:
    """code -> name; alarmdecoder writes its codes as hex literals (0x110), so they read as base 16."""
    out = {}
    for line in (HERE / name).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            code, text, *_ = line.split("\t")
            out[int(code, 16) if base == 16 else int(code)] = text
    return out


DC05_AD2USB = load("dc05_ad2usb.tsv")
DC05_SPANDSP = load("dc05_spandsp.tsv")
ALARMDECODER = {int(format(c, "x")): t for c, t in load("ademco_alarmdecoder.tsv", 16).items()}
#: alarmdecoder's own non-standard codes (see PROVENANCE.md): unknown on purpose
NOT_STANDARD = {109, 470, 480}
EVERY = set(DC05_AD2USB) | set(DC05_SPANDSP) | (set(ALARMDECODER) - NOT_STANDARD)


def test_the_references_agree_on_dc05() -> None:
    assert len(DC05_AD2USB) == 243 and len(DC05_SPANDSP) == 231
    # spandsp leaves out the group headings and adds the 9xx remote-access codes
    assert set(DC05_AD2USB) - set(DC05_SPANDSP) == {160, 210, 340, 360, 410, 420, 440, 500, 510, 530, 540, 550,
                                                     560, 600, 610, 620, 640, 650}
    assert set(DC05_SPANDSP) - set(DC05_AD2USB) == {900, 901, 902, 910, 911, 999}


@pytest.mark.parametrize("code", sorted(EVERY))
def test_every_code_is_known_and_named_like_the_references(code: int) -> None:
    row = cid_codes.CODES[code]
    for q in (1, 3, 6):
        assert cid_codes.describe(code, q).known

    def words(s: str) -> set[str]:
        s = s.lower().replace("exp.", "expansion").replace("ckt", "circuit")
        return {w for w in re.findall(r"[a-z0-9]+", s) if len(w) > 2 or w.isdigit()}

    names = [ref[code] for ref in (DC05_AD2USB, DC05_SPANDSP, ALARMDECODER) if code in ref]
    assert any(words(row.text) & words(n) for n in names), (row.text, names)
    assert row.source == ("D" if code in DC05_AD2USB else "A")   # D: in DC-05 Appendix C; A: later lists


def test_nothing_outside_the_references() -> None:
    assert set(cid_codes.CODES) == EVERY


# ---------------------------------------------------------------------- the DC-05 groups and their exceptions
#: (first, last, kind, action on qualifier 1) for each DC-05 group; exceptions below
GROUPS = [
    (100, 109, "panic", "raise"), (110, 119, "fire", "raise"), (120, 129, "panic", "raise"),
    (130, 149, "burglary", "raise"), (150, 169, "supervisory", "raise"), (200, 299, "supervisory", "raise"),
    (300, 399, "fault", "raise"), (400, 499, "other", "log"), (500, 599, "other", "log"), (600, 699, "test", "log"),
    (700, 799, "fault", "raise"), (900, 999, "other", "log"),
]
EXCEPTIONS: dict[int, tuple[str, str, str]] = {
    102: ("supervisory", "raise", "fail to report in: a check-in was missed, not a panic button"),
    111: ("smoke", "raise", "the fire group's smoke detector has its own kind"),
    141: ("fault", "raise", "polling loop open: wiring, not an intruder"),
    142: ("fault", "raise", "polling loop short: wiring"),
    143: ("fault", "raise", "expansion module failure: equipment, not burglary (issue 13)"),
    147: ("fault", "raise", "sensor supervision failure: a sensor stopped reporting (issue 13)"),
    150: ("other", "raise", "24 h non-burglary: the panel does not say what"),
    160: ("other", "raise", "24 h non-burglary heading"),
    151: ("fire", "raise", "gas: evacuate, fastest escalation, egress doors"),
    162: ("fire", "raise", "carbon monoxide: evacuate"),
    155: ("fault", "raise", "foil break: the sensor is broken (a trouble per the Ademco list)"),
    156: ("fault", "raise", "day trouble"),
    305: ("other", "log", "system reset: status, restore not applicable"),
    306: ("other", "log", "programming changed: status"),
    313: ("other", "log", "engineer reset: status"),
    374: ("burglary", "raise", "exit error alarm (zone): an intrusion alarm"),
    423: ("burglary", "raise", "forced access"),
    426: ("supervisory", "raise", "door propped open: until closed"),
    427: ("fault", "raise", "door status monitor trouble"),
    428: ("fault", "raise", "request-to-exit trouble"),
    432: ("fault", "raise", "access relay failure"),
    571: ("supervisory", "raise", "fire bypass: the fire system is not running normally until unbypassed"),
    601: ("test", "raise", "manual test: seen by a person, closes on acknowledgement"),
    607: ("test", "raise", "walk test mode: start raises, end restores"),
    616: ("fault", "raise", "service request"),
    626: ("fault", "raise", "time/date inaccurate"),
    641: ("supervisory", "raise", "senior watch: a person did not move"),
    654: ("supervisory", "raise", "system inactivity"),
    606: ("other", "log", "listen-in"), 609: ("other", "log", "video transmitter"),
    620: ("other", "log", "event log"), 621: ("other", "log", "event log"), 622: ("other", "log", "event log"),
    623: ("other", "log", "event log"), 624: ("other", "log", "event log"), 625: ("other", "log", "clock"),
    627: ("other", "log", "program mode"), 628: ("other", "log", "program mode"), 629: ("other", "log", "event log"),
    630: ("other", "log", "schedule"), 631: ("other", "log", "schedule"), 632: ("other", "log", "schedule"),
    640: ("other", "log", "heading"), 642: ("other", "log", "latch-key status"), 650: ("other", "log", "heading"),
    651: ("other", "log", "reserved"), 652: ("other", "log", "reserved"), 653: ("other", "log", "reserved"),
    913: ("test", "log", "test start/end"), 914: ("test", "log", "test start/end"), 915: ("test", "log", "test"),
    916: ("test", "log", "test"), 917: ("test", "log", "diagnostics"), 918: ("test", "log", "diagnostics"),
    919: ("test", "log", "diagnostics"),
    922: ("supervisory", "raise", "supervisory point alarm"),
    924: ("fault", "raise", "supervisory point trouble"), 926: ("fault", "raise", "AC failure for 4 hours"),
    927: ("fault", "raise", "output trouble"), 954: ("fault", "raise", "central station connection failure"),
    961: ("fault", "raise", "receiver database connection failure"),
}


def expected(code: int) -> tuple[str, str]:
    if code in EXCEPTIONS:
        kind, action, _why = EXCEPTIONS[code]
        return kind, action
    for lo, hi, kind, action in GROUPS:
        if lo <= code <= hi:
            return kind, action
    raise AssertionError(code)


@pytest.mark.parametrize("code", sorted(EVERY))
def test_each_code_means_what_its_group_says(code: int) -> None:
    kind, action = expected(code)
    new, restore, still = (cid_codes.describe(code, q) for q in (1, 3, 6))
    assert (new.kind, new.action) == (kind, action)
    if action == "raise":
        assert restore.action == "restore" and restore.restores == (kind,)
        assert still.action == "raise" and still.kind == kind
    else:
        assert restore.action == still.action == "log"


def test_the_issue_13_codes() -> None:
    assert cid_codes.describe(143).kind == "fault" and cid_codes.describe(147).kind == "fault"
    assert cid_codes.describe(102).kind != "panic"
    raised_other = [c for c in EVERY if c >= 900 and cid_codes.describe(c).kind == "other"
                    and cid_codes.describe(c).action == "raise"]
    assert raised_other == []
    assert {c for c in range(150, 170) if c in EVERY and cid_codes.describe(c).kind == "other"} == {150, 160}


def test_periodic_tests_prove_liveness_only() -> None:
    assert {c for c in EVERY if cid_codes.describe(c).liveness} == {602, 603, 608}


def test_unknown_codes_are_visible_not_guessed() -> None:
    for code in (103, 119, 170, 299, 399, 750, 789, 799, 905, 998, 109, 470):
        m = cid_codes.describe(code)
        assert (m.kind, m.action, m.known, m.text) == ("other", "raise", False, f"unknown code {code:03d}")
        r = cid_codes.describe(code, 3)
        assert r.action == "restore" and r.restores == ("other",) and not r.known


def test_openings_and_closings_say_which() -> None:
    assert cid_codes.describe(401, 1).text == "Open/close by user: opening"
    assert cid_codes.describe(401, 3).text == "Open/close by user: closing"
    assert cid_codes.describe(570, 1).text.endswith(": bypass") and cid_codes.describe(570, 3).text.endswith("unbypass")
    assert cid_codes.describe(571, 3).action == "restore"


# ---------------------------------------------------------------------- pysiaalarm's CID -> SIA mapping
ADM: dict[int, tuple[str, str]] = {}
for _line in (HERE / "adm_to_sia.tsv").read_text().splitlines():
    if _line and not _line.startswith("#"):
        _c, _q1, _q3 = _line.split("\t")
        ADM[int(_c)] = (_q1, _q3)

#: where pysiaalarm's conversion and the DC-05 group disagree, and why the group wins
ADM_DISAGREES = {
    111: "FA for smoke: both are fire kinds (smoke is the fire group's own)",
    113: "WA (water alarm) for water flow: DC-05 puts 113 in the fire group (sprinkler flow)",
    146: "HA (hold-up) for silent burglary: DC-05 calls it burglary",
    158: "KA (heat alarm) for high temperature: DC-05's 24 h non-burglary group, an environment point",
    306: "YX (service required) for programming changed: DC-03's own YG (parameter changed) is news",
    320: "RC relay close for sounder/relay trouble", 323: "RC for alarm relay trouble",
    324: "RC for trouble relay trouble", 325: "RC for reversing relay trouble",
    414: "YT (battery trouble) for a remote system shutdown command",
    626: "JD (date changed) for time/date inaccurate",
    359: "not in DC-05 nor the Ademco lists", 470: "not a DC-05 code", 471: "not a DC-05 code", 473: "not a DC-05 code",
}


@pytest.mark.parametrize("code", sorted(ADM))
def test_pysiaalarm_converts_to_a_sia_code_of_the_same_kind(code: int) -> None:
    if code in ADM_DISAGREES:
        pytest.skip(ADM_DISAGREES[code])
    q1, q3 = ADM[code]
    cid, sia = cid_codes.describe(code, 1), sia_codes.describe(q1)
    assert cid.known and sia.known
    assert cid.kind == sia.kind, (code, q1)
    assert cid.informational == sia.informational or cid.kind == "test"
    restore = cid_codes.describe(code, 3)
    if restore.restore and q3 != q1:
        assert restore.kind in sia_codes.describe(q3).restores, (code, q3)
