"""Meter profiles: which registers hold which values, and how to decode them.

A profile is one TOML file per meter model (``id`` = file stem). Fields name
typed values at register addresses with a byte/word order; pymodbus only knows
word order, so the byte swap is done here, once, for every type alike.

Each field is reported to ``precision`` decimal places (declared per field; default: the
scale's decimals for integer types, 6 for floats), so a float32 ``0.15`` reads ``0.15``,
not ``0.15000001``. A profile may name its supply-temperature field and a default
"no hot water" floor, and declare a valve (``valve.py``), whose state registers are
read with every poll (:meth:`Profile.polled`).

Orders (bytes of the big-endian value are ``A B C D ...``):
``ABCD`` big endian; ``CDAB`` registers reversed; ``BADC`` bytes swapped in each
register; ``DCBA`` fully reversed (little endian). 16-bit types use ``AB``/``BA``.
64-bit types generalise the same two switches (reverse registers, swap bytes).
"""

from __future__ import annotations

import re
import struct
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeGuard

from drivers.modbus.valve import Valve, parse_valve

#: type -> (struct code, registers)
TYPES: dict[str, tuple[str, int]] = {
    "uint16": ("H", 1), "int16": ("h", 1),
    "uint32": ("I", 2), "int32": ("i", 2), "float32": ("f", 2),
    "uint64": ("Q", 4), "int64": ("q", 4), "float64": ("d", 4),
}
ORDERS_16 = ("AB", "BA")
ORDERS_32 = ("ABCD", "CDAB", "BADC", "DCBA")
TABLES = ("holding", "input")
FIELD_KEYS = {"address", "type", "order", "scale", "description", "add_to", "precision"}
TOP_KEYS = {"description", "table", "fields", "valve", "rollover_m3", "source", "supply_temp_field", "supply_floor_c"}
MAX_ADDRESS = 0xFFFF
#: decimals a float field is reported with when its profile declares none
FLOAT_PRECISION = 6
#: read with every poll when the profile has a valve (names no profile field can have: they hold a dot)
VALVE_STATE_FIELD = "valve.state"
VALVE_LIMIT_FIELD = "valve.limit"

#: reports one problem: (dotted key, message)
Bad = Callable[[str, str], None]


class ProfileError(Exception):
    """A profile that cannot be used; ``problems`` are (line, key, message)."""

    def __init__(self, path: str, problems: list[tuple[int, str, str]]) -> None:
        super().__init__("; ".join(f"{path}:{ln}: {k}: {m}" for ln, k, m in problems))
        self.path = path
        self.problems = problems


@dataclass(frozen=True)
class Field:
    name: str
    address: int
    type: str = "float32"
    order: str = "ABCD"
    scale: float = 1.0
    #: fold this value into another field (meters that split a total into integer m3 + fraction)
    add_to: str = ""
    #: decimal places reported; None = the default (scale's decimals for integers, FLOAT_PRECISION for floats)
    precision: int | None = None

    @property
    def count(self) -> int:
        return TYPES[self.type][1]

    @property
    def end(self) -> int:
        """First register after this field."""
        return self.address + self.count

    @property
    def decimals(self) -> int:
        """The decimal places this field is reported with."""
        if self.precision is not None:
            return self.precision
        if self.type.startswith("float"):
            return FLOAT_PRECISION
        exponent = Decimal(repr(self.scale)).normalize().as_tuple().exponent
        return max(0, -exponent) if isinstance(exponent, int) else FLOAT_PRECISION

    def decode(self, regs: list[int] | tuple[int, ...]) -> float | int:
        """Registers (exactly ``count``) -> scaled value, rounded to the field's precision."""
        raw = decode_raw(regs, self.type, self.order)
        if self.scale == 1.0 and isinstance(raw, int) and self.precision is None:
            return raw
        return _round(raw * self.scale if self.scale != 1.0 else raw, self.decimals)

    def encode(self, value: float | int) -> list[int]:
        """Value in engineering units -> registers as the meter would hold them (simulator)."""
        raw = value / self.scale if self.scale != 1.0 else value
        if not self.type.startswith("float"):
            raw = int(round(raw))
        return encode_raw(raw, self.type, self.order)


@dataclass(frozen=True)
class Profile:
    id: str
    description: str = ""
    table: str = "holding"
    fields: tuple[Field, ...] = ()
    valve: Valve | None = None
    #: the meter's register wraps to 0 after this total (documented rollover); 0 = none
    rollover_m3: float = 0.0
    source: str = ""
    #: the field holding the hot-water supply temperature, and the profile's default "no hot water" floor
    supply_temp_field: str = ""
    supply_floor_c: float | None = None

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def fold(self, values: dict[str, float | int]) -> dict[str, float | int]:
        """Add ``add_to`` parts into their target (e.g. integer m3 + mL fraction = total_m3); drop the parts."""
        out = dict(values)
        for f in self.fields:
            if f.add_to and f.name in out and f.add_to in out:
                out[f.add_to] = _round(out[f.add_to] + out.pop(f.name), self.precision_of(f.add_to) or 0)
        return out

    def precision_of(self, name: str) -> int | None:
        """Decimals a reported value is rounded to (a folded total: its own, else the finest of its parts)."""
        try:
            target = self.field(name)
        except KeyError:
            return None
        if target.precision is not None:
            return target.precision
        return max([target.decimals] + [f.decimals for f in self.fields if f.add_to == name])

    @cached_property
    def precisions(self) -> dict[str, int]:
        """:meth:`precision_of` of every field, worked out once: the reading pull rounds every value of every row
        (5,000 rows a page) and a field lookup per value was most of its time."""
        out = {}
        for f in self.fields:
            p = self.precision_of(f.name)
            if p is not None:
                out[f.name] = p
        return out

    def round_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """Values as this profile reports them (readings stored before a precision was declared)."""
        prec = self.precisions
        return {k: round(v, p) + 0.0 if isinstance(v, float) and (p := prec.get(k)) is not None else v  # no -0.0
                for k, v in values.items()}

    @property
    def status_fields(self) -> tuple[Field, ...]:
        """The valve's state (and flow-limit) registers, read back with every poll."""
        v = self.valve
        if v is None:
            return ()
        out = [Field(VALVE_STATE_FIELD, v.read_address, "uint16", "AB")]
        if v.restrict is not None:
            out.append(Field(VALVE_LIMIT_FIELD, v.restrict.read_address, "uint16", "AB"))
        return tuple(out)

    def polled(self) -> Profile:
        """This profile with its status registers as fields: what a poll reads (``plan_reads(p.polled())``)."""
        return replace(self, fields=self.fields + self.status_fields) if self.valve is not None else self


def _flags(order: str) -> tuple[bool, bool]:
    """(reverse registers, swap bytes in each register)."""
    return order in ("CDAB", "DCBA"), order in ("BADC", "DCBA", "BA")


def _round(value: float | int, decimals: int) -> float | int:
    """``value`` to ``decimals`` places; integers stay integers."""
    if isinstance(value, int):
        return value
    return round(value, decimals) + 0.0  # + 0.0: no -0.0


def decode_raw(regs: list[int] | tuple[int, ...], type_: str, order: str) -> float | int:
    code, n = TYPES[type_]
    if len(regs) != n:
        raise ValueError(f"{type_} needs {n} registers, got {len(regs)}")
    reverse, swap = _flags(order)
    words = list(regs)[::-1] if reverse else list(regs)
    if swap:
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    value = struct.unpack(">" + code, struct.pack(f">{n}H", *words))[0]
    if code == "f":
        # float32 carries 7-8 significant digits; show them, not the binary noise (0.2, not 0.200000003)
        return float(f"{value:.8g}")
    return value


def encode_raw(value: float | int, type_: str, order: str) -> list[int]:
    code, n = TYPES[type_]
    words = list(struct.unpack(f">{n}H", struct.pack(">" + code, value)))
    reverse, swap = _flags(order)
    if swap:
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return words[::-1] if reverse else words


# ---------------------------------------------------------------------- loading
def _key_lines(text: str) -> dict[str, int]:
    """'fields.total_m3' / 'fields.total_m3.type' / 'valve.open' -> line (1-based)."""
    out: dict[str, int] = {}
    section = ""
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if m := re.match(r"^\[\s*([^\]]+?)\s*\]", s):
            section = ".".join(p.strip().strip("\"'") for p in m.group(1).split("."))
            out.setdefault(section, n)
        elif (m := re.match(r"^([A-Za-z0-9_.\-\"']+)\s*=", s)) and not s.startswith("#"):
            key = ".".join(p.strip().strip("\"'") for p in m.group(1).split("."))
            out.setdefault(f"{section}.{key}" if section else key, n)
    return out


def _line(lines: dict[str, int], key: str) -> int:
    while key:
        if key in lines:
            return lines[key]
        key = key.rpartition(".")[0]
    return 1


def load_profile(path: str | Path) -> Profile:
    """Parse and validate a profile file; raise ProfileError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(str(path), [(0, "(file)", f"cannot read: {exc}")]) from None
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ProfileError(str(path), [(int(m.group(1)) if m else 1, "(syntax)", f"TOML: {exc}")]) from None
    return parse_profile(path.stem, raw, text, str(path))


def parse_profile(profile_id: str, raw: dict[str, Any], text: str = "", where: str = "<profile>") -> Profile:
    lines = _key_lines(text)
    problems: list[tuple[int, str, str]] = []

    def bad(key: str, msg: str) -> None:
        problems.append((_line(lines, key), key, msg))

    for k in raw:
        if k not in TOP_KEYS:
            bad(k, "unknown key")
    table = raw.get("table", "holding")
    if table not in TABLES:
        bad("table", f"must be one of {', '.join(TABLES)}")
    fields = _parse_fields(raw.get("fields"), bad)
    valve = parse_valve(raw.get("valve"), bad)
    supply_field, supply_floor = _parse_supply(raw, fields, bad)
    rollover = raw.get("rollover_m3", 0.0)
    if not isinstance(rollover, (int, float)) or isinstance(rollover, bool) or rollover < 0:
        bad("rollover_m3", "must be a number >= 0")
        rollover = 0.0
    description = raw.get("description", "")
    if not isinstance(description, str):
        bad("description", "must be a string")
    if problems:
        raise ProfileError(where, problems)
    return Profile(id=profile_id, description=str(description), table=table, fields=tuple(fields),
                   valve=valve, rollover_m3=float(rollover), source=str(raw.get("source", "")),
                   supply_temp_field=supply_field, supply_floor_c=supply_floor)


def _parse_supply(raw: dict[str, Any], fields: list[Field], bad: Bad) -> tuple[str, float | None]:
    """``supply_temp_field`` (must name a field) and ``supply_floor_c`` (needs it; 0..100 degC, 0 = off)."""
    name = raw.get("supply_temp_field", "")
    if not isinstance(name, str) or (name and name not in {f.name for f in fields if not f.add_to}):
        bad("supply_temp_field", "must name a field of this profile (the hot-water supply temperature)")
        name = ""
    floor = raw.get("supply_floor_c")
    if floor is None:
        return name, None
    if not isinstance(floor, (int, float)) or isinstance(floor, bool) or not 0 <= floor <= 100:
        bad("supply_floor_c", "must be a temperature 0..100 (degC; 0 = no floor)")
        return name, None
    if not name:
        bad("supply_floor_c", "needs supply_temp_field: which field is the supply temperature")
    return name, float(floor)


def _int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _parse_fields(raw: Any, bad: Bad) -> list[Field]:
    """The ``[fields.*]`` tables, address-ordered; every problem reported through ``bad``."""
    if raw is None:
        bad("fields", "a profile needs at least one field")
        return []
    if not isinstance(raw, dict) or not raw:
        bad("fields", "must be a table of fields")
        return []
    out = [f for name, spec in raw.items() if (f := _parse_field(name, spec, raw, bad)) is not None]
    names = {f.name: f for f in out}
    for f in out:
        if f.add_to and f.add_to in names and names[f.add_to].add_to:
            bad(f"fields.{f.name}.add_to", f"{f.add_to!r} is itself added to another field")
    ordered = sorted(out, key=lambda f: f.address)
    for a, b in pairwise(ordered):
        if b.address < a.end:
            bad(f"fields.{b.name}.address",
                f"overlaps field {a.name!r} (registers {a.address}..{a.end - 1})")
    return ordered


def _parse_field(name: str, spec: Any, fields: dict[str, Any], bad: Bad) -> Field | None:
    """One field, or None (after reporting why) when it cannot be used."""
    key = f"fields.{name}"
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
        bad(key, "field names are lower_case with a unit suffix, e.g. total_m3")
    if not isinstance(spec, dict):
        bad(key, "must be a table")
        return None
    for k in spec:
        if k not in FIELD_KEYS:
            bad(f"{key}.{k}", "unknown key")
    type_ = spec.get("type", "float32")
    if type_ not in TYPES:
        bad(f"{key}.type", f"unknown type {type_!r} (one of {', '.join(TYPES)})")
        return None
    n = TYPES[type_][1]
    order = spec.get("order", "AB" if n == 1 else "ABCD")
    allowed = ORDERS_16 if n == 1 else ORDERS_32
    if order not in allowed:
        bad(f"{key}.order", f"order {order!r} does not fit {type_} (one of {', '.join(allowed)})")
        return None
    addr = spec.get("address")
    if not _int(addr) or not 0 <= addr <= MAX_ADDRESS - n + 1:
        bad(f"{key}.address", "required integer register address 0..65535 (the field must fit)")
        return None
    scale = spec.get("scale", 1.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale == 0:
        bad(f"{key}.scale", "must be a non-zero number")
        return None
    add_to = spec.get("add_to", "")
    if not isinstance(add_to, str) or (add_to and (add_to == name or add_to not in fields)):
        bad(f"{key}.add_to", "must name another field of this profile")
        return None
    precision = spec.get("precision")
    if precision is not None and (not _int(precision) or not 0 <= precision <= 9):
        bad(f"{key}.precision", "must be the decimal places reported, an integer 0..9")
        return None
    return Field(name=name, address=addr, type=type_, order=order, scale=float(scale), add_to=add_to,
                 precision=precision)
