"""Turning a validation error into words a technician can act on, with the fix and a did-you-mean.

pydantic says ``String should match pattern '^mqtts?://…'``; a person at a door controller
needs "use mqtt://host:port or mqtts://host:port". This module holds those sentences as
tables (by pattern, by error type), and suggests the nearest known key, section or
timezone for a misspelt one (``held_open_sec`` -> ``held_open_s``, ``[[door]]`` ->
``[[doors]]``, ``Beijing`` -> ``Asia/Shanghai``).
"""

from __future__ import annotations

import functools
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from gateway.config.models import ANY_ID, ID

#: what a value matching each pattern looks like, said as the fix
PATTERN_ADVICE: dict[str, str] = {
    ID: "use lowercase letters, digits and '-' (1 to 32, starting with a letter or digit), e.g. 'garden-court'",
    ANY_ID: "use letters, digits, '.', '_' and '-' (1 to 64, starting with a letter or digit), e.g. 'door-1a'",
    r"^mqtts?://[^/\s]+$": "use mqtt://host:port, or mqtts://host:port for TLS (no path), e.g. 'mqtt://10.0.0.5:1883'",
    r"^[0-9a-f]{64}$": ("the SHA-256 of the token: 64 lowercase hex digits, never the token itself; make one with "
                        "`estate-gateway token new --role ROLE --name NAME`"),
    r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$": "use words of letters, digits, '_' and '-' joined by '/', e.g. 'estate'",
    r"^([01]\d|2[0-3]):[0-5]\d$": "a time of day as HH:MM (24 h), e.g. '08:30'",
    r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$": "working hours as HH:MM-HH:MM (24 h), e.g. '08:00-18:00'",
    r"^(|[0-9]{14})$": "the 14 digits printed on the meter, e.g. '78330011223344'",
    r"^(|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$": "a profile name: letters, digits, '.', '_' and '-', e.g. 'tuf-2000m'",
}

#: values of these forms are never repeated back (logs, terminals): they may be secrets
SECRET_PATTERNS = {r"^[0-9a-f]{64}$"}

#: sentences by pydantic error type ({...} filled from the error's context)
TYPE_ADVICE: dict[str, str] = {
    "int_parsing": "must be a whole number, without quotes",
    "int_type": "must be a whole number, without quotes",
    "int_from_float": "must be a whole number (no decimals)",
    "float_parsing": "must be a number, without quotes",
    "float_type": "must be a number, without quotes",
    "bool_parsing": "must be true or false (lowercase, without quotes)",
    "bool_type": "must be true or false (lowercase, without quotes)",
    "string_type": "must be text in quotes",
    "list_type": "must be a list in brackets, e.g. [\"a\", \"b\"]",
    "dict_type": "must be a table (a [section] or { key = value })",
    "model_type": "must be a table (a [section] or { key = value })",
    "model_attributes_type": "must be a table (a [section] or { key = value })",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "string_too_short": "must not be empty" ,
    "string_too_long": "is too long (at most {max_length} characters)",
    "too_short": "needs at least {min_length} item(s)",
    "too_long": "has too many items (at most {max_length})",
}

#: common names people type for a timezone that is not an IANA name
TZ_ALIASES: dict[str, str] = {
    "beijing": "Asia/Shanghai", "china": "Asia/Shanghai", "cst": "Asia/Shanghai", "prc": "Asia/Shanghai",
    "guangzhou": "Asia/Shanghai", "shenzhen": "Asia/Shanghai", "hangzhou": "Asia/Shanghai",
    "nanjing": "Asia/Shanghai", "wuhan": "Asia/Shanghai", "chengdu": "Asia/Shanghai", "tianjin": "Asia/Shanghai",
    "chongqing": "Asia/Shanghai", "xian": "Asia/Shanghai", "suzhou": "Asia/Shanghai", "utc+8": "Asia/Shanghai",
    "gmt+8": "Asia/Shanghai", "utc+08:00": "Asia/Shanghai", "hongkong": "Asia/Hong_Kong", "hk": "Asia/Hong_Kong",
    "macau": "Asia/Macau", "taipei": "Asia/Taipei", "gmt": "UTC", "z": "UTC", "utc+0": "UTC",
}


def explain(err: dict[str, Any]) -> str:
    """One pydantic error as a sentence with the fix."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        advice = PATTERN_ADVICE.get(pattern)
        # never echo what may be a secret (a token pasted where its hash belongs)
        got = "this value" if pattern in SECRET_PATTERNS else repr(err.get("input"))
        return f"{got} is not valid: {advice}" if advice else f"{got} does not have the expected form"
    if kind in ("literal_error", "enum"):
        return f"{err.get('input')!r} is not one of the choices: {ctx.get('expected', '?')}"
    if kind == "missing":
        return f"required key is missing: add `{err['loc'][-1]} = …` here"
    if kind in TYPE_ADVICE:
        try:
            return f"{err.get('input')!r} {TYPE_ADVICE[kind].format(**ctx)}"
        except (KeyError, IndexError):
            return TYPE_ADVICE[kind]
    msg = str(err["msg"])
    return msg[len("Value error, "):] if msg.startswith("Value error, ") else msg


def unknown_key(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """"unknown key" with the nearest known key of that table, when one is close."""
    model = model_at(root, loc[:-1])
    name = str(loc[-1])
    if model is None:
        return "unknown key"
    known = [f for f in model.model_fields if not model.model_fields[f].exclude]
    import difflib  # only when a config is wrong: not held by a running daemon (docs/hardening.md)

    near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not near and "_" in name:  # held_open_sec -> held_open_s: compare without the last word's tail
        near = [k for k in known if k.rsplit("_", 1)[0] == name.rsplit("_", 1)[0]][:1]
    where = "section" if len(loc) == 1 else "key"
    if near:
        shown = f"[[{near[0]}]]" if len(loc) == 1 and _is_list(model, near[0]) else near[0]
        return f"unknown {where} '{name}': did you mean {shown}?"
    return f"unknown {where} '{name}' (known here: {', '.join(sorted(known))})"


def model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that holds the keys at ``loc`` (list indexes skipped)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(str(part))
        model = _model_of(field.annotation) if field is not None else None
    return model


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _is_list(model: type[BaseModel], name: str) -> bool:
    return get_origin(model.model_fields[name].annotation) is list


def suggest_timezone(value: str) -> str | None:
    """The IANA name someone probably meant: a known alias, else the closest zone or city name."""
    key = value.strip().lower().replace(" ", "").replace("_", "")
    if key in TZ_ALIASES:
        return TZ_ALIASES[key]
    cities = _zone_cities()
    import difflib

    near = difflib.get_close_matches(key, list(cities), n=1, cutoff=0.75)
    return cities[near[0]] if near else None


@functools.lru_cache(maxsize=1)
def _zone_cities() -> dict[str, str]:
    from zoneinfo import available_timezones

    out: dict[str, str] = {}
    for zone in sorted(available_timezones()):
        out.setdefault(zone.lower().replace("_", ""), zone)
        out.setdefault(zone.rsplit("/", 1)[-1].lower().replace("_", ""), zone)
    return out
