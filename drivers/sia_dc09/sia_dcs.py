"""SIA-DCS data: the *syntax* of what a DC-09 ``SIA-DCS`` block carries after ``#acct|``.

What a code *means* (fire, burglary, restore...) is not decided here: this module yields
:class:`SiaDcsEvent` objects (code, address, area, user, time, texts) and the SIA code table
(:mod:`drivers.contact_id` today) maps a code to a kind. Kept apart so the two can change alone.

The grammar, as panels send it (SIA DC-03 data blocks inside DC-07/DC-09)::

    data    = block *( "|" block )
    block   = "N" events            new events             Nri1/FA012, Nri1FA12, NBA2
            | "A" text              ASCII text for the message   NRR|Atest
            | other                 kept in ``skipped`` (e.g. AlphaVision's leading "0|")
    events  = *( modifier | event | "/" )
    modifier= ("ri" | "id" | "pi" | "ti" | any two lower-case letters) value [ "^" name "^" ]
    event   = 2 upper-case letters  address(digits)  [ "^" text "^" | "*'" text "'NM" | '*"' text '"NM' | "NM" ]

The ``/`` between fields is optional (``Nri1CL0^text^`` is as valid as ``Nri1/CL0``); a
modifier holds for every event after it until it is set again. Nothing here raises on odd
input except :class:`SiaDcsError` when no event and no text could be found at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: modifiers with a name on :class:`SiaDcsEvent`; any other two-letter one lands in ``modifiers``
NAMED_MODIFIERS = {"ri": "area", "id": "user", "pi": "peripheral", "ti": "time"}
_MOD_VALUE = set("0123456789:-.")


class SiaDcsError(ValueError):
    """Nothing usable in the data (no event, no text)."""


@dataclass(frozen=True)
class SiaDcsEvent:
    """One event: ``code`` and ``address`` as sent, with the modifiers in force when it came."""

    code: str
    address: str = ""            # digits after the code ("" when none): zone, user or area, per code
    area: str = ""               # ri
    user: str = ""               # id
    peripheral: str = ""         # pi
    time: str = ""               # ti (hh:mm or hh:mm:ss, as sent)
    text: str = ""               # ^text^ after the event, else the message's A text
    area_name: str = ""          # ri<n>^name^
    user_name: str = ""          # id<n>^name^
    modifiers: tuple[tuple[str, str], ...] = ()   # other modifiers, in order

    @property
    def zone(self) -> int:
        """The address as a number (0 when none)."""
        return int(self.address) if self.address.isdigit() else 0


@dataclass(frozen=True)
class SiaDcsData:
    events: tuple[SiaDcsEvent, ...]
    text: str = ""                       # the A block(s)
    skipped: tuple[str, ...] = ()        # parts not understood (logged as lenient)


@dataclass
class _State:
    """Modifiers in force while scanning one N block."""

    mods: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    events: list[SiaDcsEvent] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def event(self, code: str, address: str, text: str) -> None:
        m = self.mods
        extra = tuple((k, v) for k, v in m.items() if k not in NAMED_MODIFIERS)
        self.events.append(SiaDcsEvent(code, address, m.get("ri", ""), m.get("id", ""), m.get("pi", ""),
                                       m.get("ti", ""), text, self.names.get("ri", ""), self.names.get("id", ""),
                                       extra))


def _digits(s: str, i: int, allowed: set[str] | None = None) -> int:
    """Index after the run of digits (or ``allowed`` characters) at ``i``."""
    n = len(s)
    while i < n and (s[i] in allowed if allowed else s[i].isdigit()):
        i += 1
    return i


def _text_after(s: str, i: int) -> tuple[str, int]:
    """An optional text at ``i``: ``^text^``, ``*'text'NM`` / ``*"text"NM`` or a bare ``NM``."""
    if s.startswith("^", i):
        end = s.find("^", i + 1)
        end = len(s) if end < 0 else end
        return s[i + 1:end].strip(), min(end + 1, len(s))
    if s.startswith(("*'", '*"'), i):
        quote = s[i + 1]
        end = s.find(quote, i + 2)
        end = len(s) if end < 0 else end
        j = end + 1
        return s[i + 2:end].strip(), j + 2 if s.startswith("NM", j) else j
    if s.startswith("NM", i) and (i + 2 == len(s) or s[i + 2] == "/"):
        return "", i + 2
    return "", i


def _scan_events(block: str, st: _State) -> None:
    """The body of an N block (after the N)."""
    i, n = 0, len(block)
    while i < n:
        c = block[i]
        if c == "/" or c == " ":
            i += 1
        elif c.islower() and i + 1 < n and block[i + 1].islower():
            key = block[i:i + 2]
            j = _digits(block, i + 2, _MOD_VALUE)
            st.mods[key] = block[i + 2:j]
            st.names.pop(key, None)
            name, j = _text_after(block, j)
            if name:
                st.names[key] = name
            i = j
        elif c.isupper() and i + 1 < n and block[i + 1].isupper():
            j = _digits(block, i + 2)
            text, k = _text_after(block, j)
            st.event(block[i:i + 2], block[i + 2:j], text)
            i = k
        else:
            end = block.find("/", i + 1)
            end = n if end < 0 else end
            st.skipped.append(block[i:end][:40])
            i = end


def parse(payload: str) -> SiaDcsData:
    """The events and text in SIA-DCS data (what follows ``#acct|``). Raises :class:`SiaDcsError`."""
    st = _State()
    texts: list[str] = []
    for block in _blocks(payload.strip()):
        if not block:
            continue
        kind = block[0]
        if kind in "NO":            # N new event(s); O: DC-03 "old" events, same syntax
            _scan_events(block[1:], st)
        elif kind == "A":
            texts.append(block[1:].strip())
        else:
            st.skipped.append(block[:40])
    text = " ".join(t for t in texts if t)
    if not st.events and not text:
        raise SiaDcsError("no event in SIA-DCS data")
    events = tuple(e if e.text or not text else _with_text(e, text) for e in st.events)
    return SiaDcsData(events, text, tuple(st.skipped))


def _blocks(payload: str) -> list[str]:
    """``payload`` split at each ``|`` that is not inside a ``^text^``."""
    out, start, inside = [], 0, False
    for i, c in enumerate(payload):
        if c == "^":
            inside = not inside
        elif c == "|" and not inside:
            out.append(payload[start:i])
            start = i + 1
    out.append(payload[start:])
    return out


def _with_text(e: SiaDcsEvent, text: str) -> SiaDcsEvent:
    return SiaDcsEvent(e.code, e.address, e.area, e.user, e.peripheral, e.time, text, e.area_name, e.user_name,
                       e.modifiers)
