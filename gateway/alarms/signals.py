"""What panels say, normalised: every protocol's messages become :class:`Signal` rows.

One vocabulary for three wire protocols, so lifecycle, supervision and linkage never know
which protocol spoke. What a code *means* is decided by the drivers' tables -- Contact ID
(:mod:`drivers.cid_codes`), SIA (:mod:`drivers.sia_codes`), GB/T 26875.3 status bits
(:mod:`drivers.gb26875.meaning`) -- each answering raise / restore / log; this module turns
those answers into signals. A code no table knows arrives as an ``other`` alarm saying
``unknown code ...``. Pure: no I/O, no SQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from drivers import contact_id as cid
from drivers import gb26875 as gb
from drivers import sia_codes
from drivers.alarm_codes import Meaning
from drivers.gb26875 import tables as gb_tables
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


def never_restored(code: str) -> bool:
    """A Contact ID (``303``) or SIA (``RT``) code no panel ever sends a restore for (``once`` in the tables)."""
    if len(code) == 3 and code.isdigit():
        return cid.cid_codes.describe(int(code)).once
    if len(code) == 2 and code.isalpha():
        return sia_codes.describe(code).once
    return False


def meaning_signals(receiver: str, account: str, code: str, zone: int, m: Meaning, raw: str) -> list[Signal]:
    """The signals one coded event makes: one, or for a restore one per kind it ends."""
    raw = raw[:RAW_MAX]
    if m.restore:
        return [Signal(receiver, account, code, zone, kind, m.text, True, False, raw) for kind in m.restores]
    return [Signal(receiver, account, code, zone, m.kind, m.text, False, m.informational, raw)]


#: signals of recent DC-09 payloads: a site's panels say the same few things over and over (a zone's
#: alarm, its restore), and reading a payload is pure -- (receiver, ID token, account, payload) decides it
_DC09_MEMO: dict[tuple[str, str, str, str], tuple[Signal, ...]] = {}
_DC09_MEMO_MAX = 4096


def signals_from_dc09(receiver: str, msg: Dc09Message) -> list[Signal]:
    """The signals in a DC-09 block (empty for NULL). Raises ContactIdError for unknown content."""
    if msg.id_token == "NULL":
        return []
    key = (receiver, msg.id_token, msg.account, msg.payload)
    known = _DC09_MEMO.get(key)
    if known is not None:
        return list(known)
    out = _read_dc09(receiver, msg)
    if len(_DC09_MEMO) >= _DC09_MEMO_MAX:
        _DC09_MEMO.clear()
    _DC09_MEMO[key] = tuple(out)
    return out


def _read_dc09(receiver: str, msg: Dc09Message) -> list[Signal]:
    if msg.id_token == "ADM-CID":
        ev = cid.parse_payload(msg.account, msg.payload)
        return [cid_signal(receiver, ev, msg.payload)]
    out: list[Signal] = []
    account = msg.account.upper()
    for e in cid.parse_sia(msg.payload):
        # a two-letter event code is looked up; anything else the parser yields (a text-only block) is news
        m = sia_codes.describe(e.code) if len(e.code) == 2 else Meaning("other", e.text, "log")
        if e.text and e.text != m.text:   # the panel's own ^text^ says more than the table
            m = replace(m, text=f"{m.text}: {e.text}" if m.known else f"{e.text} ({m.text})")
        out += meaning_signals(receiver, account, e.code, e.zone, m, msg.payload)
    return out


def cid_signal(receiver: str, ev: cid.ContactIdEvent, raw: str) -> Signal:
    """A Contact ID event (a printed line, or the payload of an ADM-CID block)."""
    m = ev.meaning or cid.cid_codes.describe(ev.code, ev.qualifier)
    [sig] = meaning_signals(receiver, ev.account, f"{ev.code:03d}", ev.zone, m, raw)
    return sig


def silence(receiver: str, account: str, text: str, *, restore: bool = False) -> Signal:
    """The gateway's own signal for a panel that went silent (or was heard again)."""
    return Signal(receiver, account, SILENT_CODE, 0, "fault", text, restore)


def digest(*parts: str) -> str:
    """A short content digest: a DC-09 retry is the same (account, seq) *and* the same content."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()


def dc09_dedupe(msg: Dc09Message) -> tuple[str, str, str]:
    """(account, seq, digest) that recognises a panel's retry of this block."""
    return msg.account.upper(), msg.seq, digest(msg.id_token, msg.data, *msg.extended)


# ---------------------------------------------------------------------- GB/T 26875.3
#: zones of GB/T 26875.3 objects that are not components (component zones are their 4-byte address):
#: a building fire facility system is SYSTEM_ZONE_BASE + 256 * system type + system address,
#: the transmitter itself TRANSMITTER_ZONE -- above every component address, so nothing collides
SYSTEM_ZONE_BASE = 1 << 32
TRANSMITTER_ZONE = SYSTEM_ZONE_BASE + 0x10000
_TRANSMITTER_TEXT = "用户信息传输装置"
#: a facility system's reset: restores every open component alarm of its transmitter (zones below SYSTEM_ZONE_BASE)
RESET_CODE = "GB-reset"


def gb_zone(obj: gb.InfoObject) -> int:
    """The zone an object reports for: its component, its facility system, or the transmitter."""
    if isinstance(obj, gb.ComponentStatus | gb.AnalogValue | gb.ComponentConfig):
        return obj.component_address
    if isinstance(obj, gb.SystemStatus | gb.SystemOperation | gb.SystemVersion | gb.SystemConfig | gb.SystemTime):
        return SYSTEM_ZONE_BASE + (obj.system_type << 8) + obj.system_address
    return TRANSMITTER_ZONE


def _where(obj: gb.InfoObject) -> str:
    """What an operator reads: the description, else the standard's name of the thing."""
    if isinstance(obj, gb.ComponentStatus | gb.ComponentConfig) and obj.description:
        return obj.description
    if isinstance(obj, gb.ComponentStatus | gb.AnalogValue | gb.ComponentConfig):
        return gb.component_name(obj.component_type)
    if isinstance(obj, gb.SystemStatus | gb.SystemOperation | gb.SystemVersion | gb.SystemConfig | gb.SystemTime):
        return f"{gb.system_name(obj.system_type)} {obj.system_address}号"
    return _TRANSMITTER_TEXT


def _status_signals(sig: Callable[..., Signal], obj: gb.SystemStatus | gb.ComponentStatus | gb.TransmitterStatus,
                    text: str) -> list[Signal]:
    out = []
    for kind, bits in sorted(gb.kinds_of(obj).items()):
        if bits:
            out.append(sig(f"GB-{bits[0]}", kind, text))
        else:
            out.append(sig(f"GB-{kind}", kind, text, restore=True))
    return out


def _operation_signals(sig: Callable[..., Signal], ops: list[str], text: str, *, system: bool = False) -> list[Signal]:
    """Operations are logged; a manual alarm is a fire, an alarm cleared or a reset restores it. A facility
    system's reset also ends the component alarms it cleared (:data:`RESET_CODE`): a panel re-reports a
    component still in alarm after its reset, but never says "restored" for the ones the reset ended."""
    out = [sig("GB-operation", "other", f"{text}: {', '.join(ops) or 'no operation'}", informational=True)]
    if "alarm_cleared" in ops or "reset" in ops:
        out.append(sig("GB-fire", "fire", text, restore=True))
    if system and "reset" in ops:
        out.append(sig(RESET_CODE, "other", f"{text}: 复位", restore=True))
    if "manual_alarm" in ops:
        out.append(sig("GB-manual_alarm", "fire", f"{text}: 手动报警"))
    return out


def _info_text(obj: gb.InfoObject, where: str) -> tuple[str, str]:
    """(code, text) of an object that is news only: analog value, version, configuration, time."""
    if isinstance(obj, gb.AnalogValue):
        name, unit, scale = gb_tables.ANALOG_TYPES.get(obj.analog_type, (f"模拟量 {obj.analog_type}", "", 1))
        return "GB-analog", f"{where} {name} {obj.value * scale:g} {unit}".rstrip()
    if isinstance(obj, gb.SystemVersion | gb.TransmitterVersion):
        return "GB-version", f"{where} 软件版本 {obj.major}.{obj.minor}"
    if isinstance(obj, gb.SystemConfig | gb.TransmitterConfig):
        return "GB-config", f"{where} 配置: {obj.text}"
    if isinstance(obj, gb.ComponentConfig):
        return "GB-config", f"{gb.component_name(obj.component_type)} 配置: {obj.description}"
    if isinstance(obj, gb.SystemTime | gb.TransmitterTime):
        return "GB-time", f"{where} 时间 {obj.time.isoformat(sep=' ') if obj.time else '无效'}"
    return f"GB-type-{getattr(obj, 'type_flag', 0)}", where


def _raw(obj: gb.InfoObject) -> str:
    names = {gb.SystemStatus: gb_tables.SYSTEM_BITS, gb.ComponentStatus: gb_tables.COMPONENT_BITS,
             gb.TransmitterStatus: gb_tables.TRANSMITTER_BITS}
    parts = [f"{type(obj).__name__}"]
    if isinstance(obj, gb.ComponentStatus | gb.AnalogValue | gb.ComponentConfig):
        parts.append(f"system {obj.system_type}/{obj.system_address} component {obj.component_type}"
                     f"@{obj.component_address}")
    if isinstance(obj, gb.SystemStatus | gb.ComponentStatus | gb.TransmitterStatus):
        flags = gb_tables.bits(obj.status, names[type(obj)])
        parts.append(f"status=0x{obj.status:04X} {','.join(flags)}")
    return " ".join(parts)[:RAW_MAX]


def signals_from_gb(receiver: str, frame: gb.Frame) -> list[Signal]:
    """A GB/T 26875.3 frame's objects as signals, in the frame's order.

    Status objects (types 1, 2, 21) state every kind their bits can mean: a set bit raises,
    a clear kind restores. Operations (4, 24) are logged, their manual alarm raises a fire;
    analog values, versions, configurations and times are logged. Zones: :func:`gb_zone`.
    """
    account = frame.source_address
    out: list[Signal] = []
    for obj in frame.units:
        if isinstance(obj, gb.Downstream | gb.OtherUnit):
            continue
        zone, where, raw = gb_zone(obj), _where(obj), _raw(obj)

        def sig(code: str, kind: str, text: str, *, restore: bool = False, informational: bool = False,
                _zone: int = zone, _raw: str = raw) -> Signal:
            return Signal(receiver, account, code, _zone, kind, text, restore, informational, _raw)

        if isinstance(obj, gb.SystemStatus | gb.ComponentStatus | gb.TransmitterStatus):
            out += _status_signals(sig, obj, where)
        elif isinstance(obj, gb.SystemOperation):
            out += _operation_signals(sig, gb_tables.bits(obj.flags, gb_tables.SYSTEM_OPERATIONS), where, system=True)
        elif isinstance(obj, gb.TransmitterOperation):
            out += _operation_signals(sig, gb_tables.bits(obj.flags, gb_tables.TRANSMITTER_OPERATIONS), where)
        else:
            code, text = _info_text(obj, where)
            out.append(sig(code, "other", text, informational=True))
    return out
