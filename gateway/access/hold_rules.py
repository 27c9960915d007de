"""Holds: doors kept released (fire egress) under a token each, until the cause ends or an operator relocks.

Pure bookkeeping, no I/O -- :mod:`gateway.access.holds` stores the holds and emits the events,
:mod:`gateway.access.doors` drives the locks. The rules kept here:

* a door is released while any hold names it; ending one hold relocks only the doors no other keeps;
* a hold re-applied under the same token (after a restart, or when its cause is reconciled) never
  releases again a door an operator relocked under that token -- a *new* fire (a new token) does;
* an operator may relock a held door; while the fire holding it is still active (the panel has not
  restored it), or when nobody can say whether it is, only with an explicit confirmation
  (:func:`relock_refusal`). People must not be locked in by a slip; an operator who has checked the
  building on site must be able to end a release the panel never restores.
"""

from __future__ import annotations

from typing import Any

Holds = dict[str, tuple[list[str], str]]


class HoldMap:
    """token -> (doors, reason): the holds in force, as stored."""

    def __init__(self, holds: Holds | None = None) -> None:
        self.holds: Holds = dict(holds or {})

    def __contains__(self, token: str) -> bool:
        return token in self.holds

    def held(self) -> dict[str, str]:
        """Door id -> the reason of the first hold keeping it released."""
        out: dict[str, str] = {}
        for doors, reason in self.holds.values():
            for d in doors:
                out.setdefault(d, reason)
        return out

    def tokens_of(self, door: str) -> list[str]:
        """The holds keeping ``door`` released, oldest first."""
        return [t for t, (doors, _r) in self.holds.items() if door in doors]

    def doors_to_hold(self, token: str, wanted: list[str]) -> list[str]:
        """The doors a hold under ``token`` keeps: all of ``wanted`` for a new token; for one already in force,
        only those it still holds (doors an operator relocked stay relocked)."""
        unique = list(dict.fromkeys(wanted))
        if token not in self.holds:
            return unique
        kept = set(self.holds[token][0])
        return [d for d in unique if d in kept]

    def put(self, token: str, doors: list[str], reason: str) -> None:
        self.holds[token] = (doors, reason)

    def freed_by_release(self, token: str) -> list[str]:
        """The doors that relock when ``token`` ends: its doors no other hold keeps."""
        if token not in self.holds:
            return []
        others = {d for t, (ds, _r) in self.holds.items() if t != token for d in ds}
        return [d for d in self.holds[token][0] if d not in others]

    def remove(self, token: str) -> None:
        self.holds.pop(token, None)

    def without(self, door: str) -> Holds:
        """The holds naming ``door``, each with ``door`` taken out (what a relock stores)."""
        return {t: ([d for d in doors if d != door], reason)
                for t, (doors, reason) in self.holds.items() if door in doors}


def relock_refusal(causes: list[dict[str, Any] | None], confirm: bool) -> str | None:
    """Why a relock must be confirmed first (None: it may go ahead).

    A cause is None when no area can say what keeps the hold: treated as active (fail safe).
    """
    if confirm:
        return None
    active = [c for c in causes if c is None or c.get("active", True)]
    if not active:
        return None
    named = [f"alarm {c['alarm']} ({c.get('kind', 'fire')})" for c in active if c is not None and "alarm" in c]
    what = ", ".join(named) if named else "a hold whose cause is unknown"
    return f"{what} still active: the panel has not restored it; relock with confirm: true once the door is safe"


def is_fire_active(causes: list[dict[str, Any] | None]) -> bool:
    return any(c is None or c.get("active", True) for c in causes)
