"""What an alarm event code means for the duty room: the vocabulary the code tables share.

Contact ID (:mod:`drivers.cid_codes`) and SIA (:mod:`drivers.sia_codes`) say the same things in
different codes; both tables answer with a :class:`Meaning`, so the gateway decides once what a
fire, a trouble or an opening *does*:

* ``raise``   -- an alarm of ``kind`` (or a repeat of the open one); ``once`` when no panel ever sends a
  restore for it (an event, not a condition): acknowledging closes it;
* ``restore`` -- ends the open alarms of every kind in ``restores`` (same panel and zone);
* ``log``     -- news, not an alarm (openings/closings, bypasses, access, tests): kept in the
  panel log; ``liveness`` marks the periodic tests that only prove the panel alive.

A code the table does not know is *not guessed*: it raises a visible ``other`` alarm whose text
says ``unknown code ...`` (:func:`unknown`), so a person looks at it. No gateway imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["fire", "smoke", "burglary", "panic", "fault", "supervisory", "test", "other"]
Action = Literal["raise", "restore", "log"]

#: the kinds, in the gateway's order (``gateway.config.ALARM_KINDS`` is the same tuple)
KINDS: tuple[Kind, ...] = ("fire", "smoke", "burglary", "panic", "fault", "supervisory", "test", "other")


@dataclass(frozen=True)
class Meaning:
    """One event code (with its qualifier) as the duty room must treat it."""

    kind: Kind
    text: str
    action: Action
    #: for a restore: every kind it ends, ``kind`` first (a SIA "restoral" ends alarm and trouble alike)
    restores: tuple[Kind, ...] = ()
    #: a periodic test: logged, proves the panel alive, nothing else
    liveness: bool = False
    #: False for a code no table knows (raised as ``unknown code ...``)
    known: bool = True
    #: an event, not a condition (RAM checksum bad, data lost): no panel ever restores it, so its alarm
    #: closes when acknowledged (docs/alarms.md)
    once: bool = False

    @property
    def restore(self) -> bool:
        return self.action == "restore"

    @property
    def informational(self) -> bool:
        """Logged only: never raises or restores an alarm."""
        return self.action == "log"


def unknown(code: str, *, restore: bool = False) -> Meaning:
    """A code nobody defined: an ``other`` alarm (or its restore) that says so."""
    text = f"unknown code {code}"
    if restore:
        return Meaning("other", text, "restore", ("other",), known=False)
    return Meaning("other", text, "raise", known=False)
