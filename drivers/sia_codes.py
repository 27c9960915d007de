"""SIA two-letter event codes (SIA DC-03) -> what each means for the duty room.

The table itself is data, in :mod:`drivers.sia_code_table` (with its sources); this module loads
it once, at the first code asked about (an idle gateway, or one with no SIA panel, does not hold its ~0.2 MB
of rows: docs/hardening.md, "Idle memory"), and answers :func:`describe` with a :class:`drivers.alarm_codes.Meaning`. The SIA-DCS
*syntax* (``Nri1/FA012``, modifiers, text, extended data) is parsed elsewhere; whoever parses it
asks this module what each code means. A code not in the table is not guessed: it raises a
visible ``other`` alarm "unknown code XY". No gateway imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from drivers.alarm_codes import KINDS, Kind, Meaning, unknown


@dataclass(frozen=True)
class SiaCode:
    """One row of the table."""

    code: str
    kinds: tuple[Kind, ...]
    how: str        # alarm | once | restore | log | live
    source: str     # S: DC-03 (pysiaalarm docs/codes.csv); P: pysiaalarm's sia_codes.py only
    text: str


def _load(table: str) -> dict[str, SiaCode]:
    out: dict[str, SiaCode] = {}
    for line in table.strip().splitlines():
        code, kinds, how, source, text = line.split(None, 4)
        parsed = tuple(kinds.split("+"))
        if not set(parsed) <= set(KINDS) or how not in ("alarm", "once", "restore", "log", "live"):
            raise ValueError(f"bad SIA table row: {line!r}")
        out[code] = SiaCode(code, cast(tuple[Kind, ...], parsed), how, source, text)
    return out


_codes: dict[str, SiaCode] | None = None


def codes() -> dict[str, SiaCode]:
    """Every SIA event code the gateway knows (the table is read the first time it is asked for)."""
    global _codes
    if _codes is None:
        from drivers.sia_code_table import TABLE

        _codes = _load(TABLE)
    return _codes


def __getattr__(name: str) -> Any:
    """``CODES``: :func:`codes` (the table, loaded when first read)."""
    if name == "CODES":
        return codes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def describe(code: str) -> Meaning:
    """What a two-letter code means (``unknown code XY`` for one the table lacks)."""
    row = (_codes or codes()).get(code)
    if row is None:
        return unknown(code)
    kind = row.kinds[0]
    if row.how == "restore":
        return Meaning(kind, row.text, "restore", row.kinds)
    if row.how in ("alarm", "once"):
        return Meaning(kind, row.text, "raise", once=row.how == "once")
    return Meaning(kind, row.text, "log", liveness=row.how == "live")
