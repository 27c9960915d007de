"""The SIA code table against DC-03's list and letter structure, pysiaalarm's table and cases, Home Assistant's use.

Every code DC-03 (and pysiaalarm) lists is known and named alike; each code means what its two
letters say in DC-03 -- subject (first letter) and condition (second letter) -- except where
named below with the reason; Home Assistant's triggers, arming states and sensors agree.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from drivers import sia_codes
from gateway.alarms.signals import meaning_signals

pytestmark = pytest.mark.timeout(30)

HERE = Path(__file__).parent
_rows = [r for r in csv.reader(line for line in (HERE / "dc03_codes.csv").read_text(encoding="utf-8").splitlines()
                               if not line.startswith("#"))][1:]
DC03 = {r[0]: r[1] for r in _rows if r[0] != "L_"}          # L_ is "listen in + seconds": a pattern
PYSIA = {}
for _line in (HERE / "pysiaalarm_sia_codes.tsv").read_text(encoding="utf-8").splitlines():
    if not _line.startswith("#"):
        _code, _type, _concerns, _desc = _line.split("\t")
        PYSIA[_code] = (_type, _desc)
EVERY = set(DC03) | set(PYSIA)


def test_the_lists() -> None:
    assert len(DC03) == 279 and len(PYSIA) == 325 and set(DC03) <= set(PYSIA)
    assert set(sia_codes.CODES) == EVERY


@pytest.mark.parametrize("code", sorted(EVERY))
def test_every_code_is_known_and_named_like_the_lists(code: str) -> None:
    row = sia_codes.CODES[code]
    assert sia_codes.describe(code).known
    assert row.source == ("S" if code in DC03 else "P")

    def words(s: str) -> set[str]:
        return {w for w in re.findall(r"[a-z0-9]+", s.lower().replace("trbl", "trouble")) if len(w) > 2}

    names = [DC03.get(code, ""), *PYSIA[code]]
    assert any(words(row.text) & words(n) for n in names), (row.text, names)


# ---------------------------------------------------------------------- DC-03's letters
#: the subjects whose second letter follows the zone-condition pattern, and their alarm kind
SUBJECT = {"F": "fire", "B": "burglary", "P": "panic", "H": "panic", "M": "panic", "Q": "panic", "G": "fire",
           "K": "fire", "S": "fire", "W": "supervisory", "Z": "supervisory", "T": "burglary", "U": "other"}
FIRE_POINTS = {"F", "K", "S"}   # bypassing one is a supervisory condition until unbypassed
#: codes of those subjects whose second letter means something else (DC-03 names in brackets)
OWN_MEANING = {
    "BC": "burglary cancel", "FC": "fire cancel", "BD": "swinger trouble", "BE": "swinger trouble restore",
    "BG": "unverified event", "FG": "unverified event", "UG": "unverified event", "BM": "cross point alarm",
    "FM": "cross point alarm", "BV": "burglary verified", "BZ": "missing supervision", "FZ": "missing supervision",
    "UZ": "untyped missing alarm", "FY": "missing fire trouble", "UY": "untyped missing trouble",
    "FI": "fire test begin", "FK": "fire test end", "FL": "fire alarm silenced", "FQ": "supervisory trouble restore",
    "FV": "supervision restore", "FW": "supervisory trouble", "SC": "change of state", "SM": "malfunction",
    "MI": "message", "PC": "photo on demand", "PD": "photo on demand", "PE": "photo by scenario",
    "PF": "malfunction", "PG": "photo by scenario", "PO": "malfunction restore", "TC": "all points tested",
    "TE": "test end", "TP": "walk test point", "TS": "test start", "TW": "area watch", "TZ": "area watch",
    "TX": "test report", "UX": "undefined alarm", "ZY": "device switched on", "ZZ": "device switched off",
}


def letter_rule(code: str) -> tuple[str, str, tuple[str, ...]]:
    """(action, kind, restores) the two letters mean for a zone subject."""
    kind, cond = SUBJECT[code[0]], code[1]
    if cond == "A":
        return "raise", kind, ()
    if cond == "H":
        return "restore", kind, (kind,)
    if cond == "J":
        return "restore", "fault", ("fault",)
    if cond == "T":
        return "raise", "fault", ()
    if cond == "S":
        return "raise", "supervisory", ()
    if cond == "X":
        return "log", "test", ()
    if cond in "BU" and code[0] in FIRE_POINTS:
        return ("raise", "supervisory", ()) if cond == "B" else ("restore", "supervisory", ("supervisory",))
    if cond in "BU":
        return "log", "other", ()
    raise AssertionError(code)


ZONE_CODES = sorted(c for c in EVERY if c[0] in SUBJECT and c not in OWN_MEANING)


@pytest.mark.parametrize("code", ZONE_CODES)
def test_each_zone_code_means_what_its_letters_say(code: str) -> None:
    m = sia_codes.describe(code)
    if code[1] == "R":   # restoral: "alarm/trouble condition has been eliminated"
        assert m.action == "restore" and m.restores[0] == SUBJECT[code[0]] and "fault" in m.restores
        return
    action, kind, restores = letter_rule(code)
    assert (m.action, m.kind) == (action, kind)
    if restores:
        assert m.restores == restores


@pytest.mark.parametrize(("prefix", "action", "kind", "except_"), [
    ("O", "log", "other", {"OU": ("raise", "fault"), "OV": ("restore", "fault")}),       # openings
    ("C", "log", "other", {"CM": ("raise", "burglary")}),                                 # closings
    ("J", "log", "other", {"JA": ("raise", "burglary"), "JC": ("restore", "burglary")}),   # users, schedules
    ("L", "log", "other", {"LT": ("raise", "fault"), "LR": ("restore", "fault")}),         # local programming
    ("Y", "raise", "fault", {"YB": ("log", "other"), "YG": ("log", "other"), "YN": ("log", "other"),
                             "YO": ("log", "other"), "YW": ("log", "other"), "YY": ("log", "other"),
                             **{c: ("restore", "fault") for c in ("YE", "YH", "YJ", "YK", "YQ", "YR", "YZ")}}),
    ("V", "raise", "fault", {"VX": ("log", "test"), **{c: ("restore", "fault") for c in ("VI", "VR", "VY")}}),
])
def test_the_other_subjects(prefix: str, action: str, kind: str, except_: dict[str, tuple[str, str]]) -> None:
    for code in sorted(c for c in EVERY if c.startswith(prefix)):
        m = sia_codes.describe(code)
        assert (m.action, m.kind) == except_.get(code, (action, kind)), code


def test_tests_and_liveness() -> None:
    assert {c for c in EVERY if sia_codes.describe(c).liveness} == {"RP", "TX", "RY"}
    assert sia_codes.describe("RX").action == "raise" and sia_codes.describe("RX").kind == "test"


def test_unknown_codes_are_visible_not_guessed() -> None:
    for code in ("AZ", "QQ", "XY", "za"):
        m = sia_codes.describe(code)
        assert (m.kind, m.action, m.known, m.text) == ("other", "raise", False, f"unknown code {code}")


def test_a_restoral_ends_alarm_and_trouble_alike() -> None:
    sigs = meaning_signals("r", "1234", "FR", 12, sia_codes.describe("FR"), "Nri1/FR12")
    assert [(s.kind, s.restore) for s in sigs] == [("fire", True), ("fault", True), ("supervisory", True)]
    assert all(s.code == "FR" and s.zone == 12 for s in sigs)


# ---------------------------------------------------------------------- Home Assistant, pysiaalarm's cases
HA = dict(line.split("\t") for line in (HERE / "home_assistant_sia.tsv").read_text().splitlines()
          if not line.startswith("#"))
HA_DISAGREES = {"NC": "Home Assistant reads NC as armed night; DC-03's NC is 'network condition'"}


@pytest.mark.parametrize("code", sorted(HA))
def test_home_assistant_uses_each_code_the_same_way(code: str) -> None:
    if code in HA_DISAGREES:
        pytest.skip(HA_DISAGREES[code])
    m, ha = sia_codes.describe(code), HA[code]
    if ha.endswith("triggered"):
        assert m.action == "raise" and m.kind in ("burglary", "panic")
    elif "armed" in ha or "disarmed" in ha:
        assert m.action == "log"
    elif ha.endswith("previous_state"):
        assert m.action in ("restore", "log")
    elif " smoke " in ha:
        assert (m.kind, m.action) == ("fire", "raise" if ha.endswith("on") else "restore")
    elif " moisture " in ha:
        assert (m.kind, m.action) == ("supervisory", "raise" if ha.endswith("on") else "restore")
    elif " power " in ha:   # power off is a trouble, power on its restore
        assert (m.kind, m.action) == ("fault", "raise" if ha.endswith("off") else "restore")
    else:
        assert ha.endswith("connectivity on") and m.liveness


CASES = [line.split("\t") for line in (HERE / "pysiaalarm_cases.tsv").read_text().splitlines()
         if not line.startswith("#")]


@pytest.mark.parametrize("case", CASES, ids=[c[3].split(":")[0] for c in CASES])
def test_pysiaalarm_cases(case: list[str]) -> None:
    code, _zone, name, _line, kind, action = case
    m = sia_codes.describe(code)
    assert m.text.lower().replace("cancelled", "canceled") == name.lower()
    assert (m.kind, {"raise": "raise", "restore": "restore", "log": "log"}[m.action]) == (kind, action)
