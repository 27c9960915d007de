"""What panels say, normalised: every protocol's messages become :class:`Signal` rows.

One vocabulary for three wire protocols, so lifecycle, supervision and linkage never know
which protocol spoke. The code -> kind tables themselves live with the drivers
(:mod:`drivers.contact_id` for Contact ID and SIA-DCS, :mod:`drivers.gb26875` for status
bits); this module only turns parsed messages into signals. Pure: no I/O, no SQL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from drivers import contact_id as cid
from drivers import gb26875 as gb
from drivers.sia_dc09 import Dc09Message

KINDS = ("fire", "smoke", "burglary", "panic", "fault", "supervisory", "test", "other")
#: the gateway's own code for "this panel went silent" (kind fault, zone 0)
SILENT_CODE = "silent"
#: how much of a message is kept in the panel log
RAW_MAX = 200


@dataclass(frozen=True)
class Signal:
    """One thing a panel said, normalised across protocols."""

    receiver: str
    account: str
    code: str
    zone: int
    kind: str
    text: str = ""
    restore: bool = False
    informational: bool = False   # logged only (openings/closings...)
    raw: str = ""


def signals_from_dc09(receiver: str, msg: Dc09Message) -> list[Signal]:
    """The signals in a DC-09 block (empty for NULL). Raises ContactIdError for unknown content."""
    if msg.id_token == "NULL":
        return []
    if msg.id_token == "ADM-CID":
        ev = cid.parse_payload(msg.account, msg.payload)
        return [cid_signal(receiver, ev, msg.payload)]
    out = []
    for e in cid.parse_sia(msg.payload):
        out.append(Signal(receiver, msg.account.upper(), e.code, e.zone, e.kind, e.text, e.restore,
                          e.informational or e.liveness_only, msg.payload[:RAW_MAX]))
    return out


def cid_signal(receiver: str, ev: cid.ContactIdEvent, raw: str) -> Signal:
    """A Contact ID event (a printed line, or the payload of an ADM-CID block)."""
    return Signal(receiver, ev.account, f"{ev.code:03d}", ev.zone, ev.kind, ev.text, ev.restore,
                  ev.informational, raw[:RAW_MAX])


def signals_from_gb(receiver: str, frame: gb.Frame) -> list[Signal]:
    """GB/T 26875.3 status objects: a set alarm bit raises, a clear one restores that kind.

    Every kind the status bits can mean gets a signal, raise or restore, sorted by kind.
    """
    account = frame.source.hex().upper()
    out: list[Signal] = []
    for unit in frame.units:
        if isinstance(unit, gb.ComponentStatus):
            zone, text = unit.component_address, unit.description or gb.COMPONENT_TYPES.get(unit.component_type, "")
        elif isinstance(unit, gb.SystemStatus):
            zone, text = 0, gb.SYSTEM_TYPES.get(unit.system_type, f"system {unit.system_type}")
        else:
            continue
        active = {kind for bit, kind in gb.ALARM_BITS if unit.status >> bit & 1}
        raw = f"status=0x{unit.status:04X} {','.join(unit.flags)}"
        for kind in sorted({k for _b, k in gb.ALARM_BITS}):
            if kind in active:
                bits = [gb.BIT_NAMES[b] for b, k in gb.ALARM_BITS if k == kind and unit.status >> b & 1]
                out.append(Signal(receiver, account, f"GB-{bits[0]}", zone, kind, text, False, False, raw))
            else:
                out.append(Signal(receiver, account, f"GB-{kind}", zone, kind, text, True, False, raw))
    return out


def silence(receiver: str, account: str, text: str, *, restore: bool = False) -> Signal:
    """The gateway's own signal for a panel that went silent (or was heard again)."""
    return Signal(receiver, account, SILENT_CODE, 0, "fault", text, restore)


def digest(*parts: str) -> str:
    """A short content digest: a DC-09 retry is the same (account, seq) *and* the same content."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()


def dc09_dedupe(msg: Dc09Message) -> tuple[str, str, str]:
    """(account, seq, digest) that recognises a panel's retry of this block."""
    return msg.account.upper(), msg.seq, digest(msg.id_token, msg.data, *msg.extended)
