"""Reading the TOML file: every problem with its file and line, all of them at once.

``load_config(path)`` returns a :class:`GatewayConfig` or raises :class:`ConfigError`
holding *all* problems found (not just the first), each rendered as
``FILE:LINE: key.path: what is wrong`` -- what ``check-config`` prints.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.config.advice import explain, unknown_key
from gateway.config.models import GatewayConfig
from gateway.config.references import Loc, cross_check, warnings
from gateway.config.salvage import salvage


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    key: str
    message: str
    #: "warning": reported by check-config, but the config still loads and check-config still passes
    severity: str = "error"

    def __str__(self) -> str:
        level = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}: {level}{self.key}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems



def key_lines(text: str) -> dict[Loc, int]:
    """Map each key path in a TOML text to the line it is on (1-based).

    Handles ``[table]``, ``[[array.of.tables]]`` (indexed in order), ``key = value``
    and dotted keys; enough to point a person at the right line.
    """
    lines: dict[Loc, int] = {}
    counters: dict[Loc, int] = {}
    current: Loc = ()
    header = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    keyline = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=")
    depth = 0  # inside a multi-line array/string: skip key detection
    for n, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if depth == 0 and (m := header.match(raw)):
            parts = tuple(p.strip().strip('"\'') for p in m.group(2).split("."))
            if m.group(1) == "[[":
                # index the array within its parent table path (resolved against earlier arrays)
                parent = _resolve_arrays(parts[:-1], counters)
                arr = parent + (parts[-1],)
                idx = counters.get(arr, -1) + 1
                counters[arr] = idx
                current = arr + (idx,)
                lines.setdefault(arr, n)
            else:
                current = _resolve_arrays(parts, counters)
            lines.setdefault(current, n)
            continue
        if depth == 0 and (m := keyline.match(raw)) and not stripped.startswith("#"):
            parts = tuple(p.strip().strip('"\'') for p in m.group(1).split("."))
            lines.setdefault(current + parts, n)
        depth += raw.count("[") - raw.count("]") if "=" in raw or depth else 0
        depth = max(depth, 0)
    return lines


def _resolve_arrays(parts: Loc, counters: dict[Loc, int]) -> Loc:
    out: Loc = ()
    for p in parts:
        out = out + (p,)
        if out in counters:
            out = out + (counters[out],)
    return out


def line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """The line of the longest known prefix of ``loc`` (1 when nothing matches)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def load_config(path: str | Path) -> GatewayConfig:
    """Parse and validate; raise ConfigError with every problem found, in file order."""
    path = Path(path)
    fname = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(fname, 0, "(file)", f"cannot read: {exc}")]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError([Problem(fname, int(m.group(1)) if m else 1, "(syntax)", f"TOML: {exc}")]) from None
    return build(raw, fname, key_lines(text), path.resolve().parent)


def build(raw: dict[str, Any], fname: str, lines: dict[Loc, int], base_dir: Path) -> GatewayConfig:
    """Validate parsed TOML: the config, or ConfigError with schema and reference problems together."""
    try:
        cfg = GatewayConfig.model_validate(raw)
        schema: list[tuple[Loc, str]] = []
    except ValidationError as exc:
        cfg = salvage(raw)
        schema = [(tuple(err["loc"]), _message(err)) for err in exc.errors()]
    cfg.base_dir = base_dir
    found = schema + _references(cfg, {loc for loc, _ in schema})
    if found:
        problems = [Problem(fname, line_of(lines, loc), _dotted(loc), msg) for loc, msg in found]
        raise ConfigError(sorted(problems, key=lambda p: p.line))
    return cfg


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return unknown_key(GatewayConfig, tuple(err["loc"]))
    return explain(err)


def _references(cfg: GatewayConfig, reported: set[Loc]) -> list[tuple[Loc, str]]:
    """The reference checks; on a salvaged config, only where the schema did not already complain."""
    try:
        found = cross_check(cfg)
    except (TypeError, AttributeError, ValueError):  # a value of the wrong type, already reported
        return []
    return [(loc, msg) for loc, msg in found
            if not any(loc[:len(r)] == r or r[:len(loc)] == loc for r in reported)]


def check_config(path: str | Path) -> list[Problem]:
    """Everything ``check-config`` reports: config problems plus those of the meter profiles it uses."""
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        return exc.problems
    lines = key_lines(Path(path).read_text(encoding="utf-8"))
    problems = [Problem(str(path), line_of(lines, loc), _dotted(loc), msg, "warning") for loc, msg in warnings(cfg)]
    for hook in CHECK_HOOKS:
        problems += hook(cfg)
    return problems


#: more checks run by check-config after the config itself is valid (e.g. meter profiles);
#: each takes the config and returns Problems.
CHECK_HOOKS: list[Any] = []

