"""Loading the reader corpus (``serial_frames.json``, ``osdp_reads.json``) and what each case expects.

The expectations are written as the sources give them (a frame's bits, a facility/number pair, a
printed number); :func:`expected_card` turns them into the card id the gateway must produce.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drivers.cards import card_id_from_bitstring, decode, wiegand_wrap

HERE = Path(__file__).resolve().parent


def load(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((HERE / name).read_text())["cases"]
    for case in cases:
        src = case["source"]
        assert ("repo" in src and "path" in src) or "url" in src, f"{case['id']}: no provenance"
    return cases


def wire(case: dict[str, Any], key: str = "wire") -> bytes:
    return bytes.fromhex(case[key].replace(" ", ""))


def expected_card(exp: dict[str, Any]) -> str:
    """The card id an expectation stands for (a card id, a Wiegand frame's bits, or data bits to wrap)."""
    if "card" in exp:
        return str(exp["card"])
    if "bits" in exp and isinstance(exp["bits"], str):
        return card_id_from_bitstring(exp["bits"])
    return wiegand_wrap(exp["format"], int(exp["data"], 16))


def check_decoded(card: str, exp: dict[str, Any]) -> None:
    """Facility / number the source states for the card, as the gateway shows them to people."""
    d = decode(card)
    if "facility" in exp:
        assert d.facility == exp["facility"], (card, d)
    if "number" in exp:
        # EM4100: the number printed on a fob is the low 32 bits; a character id of digits is that number
        assert d.number == exp["number"], (card, d)
    assert d.parity_ok == exp.get("parity_ok", True), (card, d)
