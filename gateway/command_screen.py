"""A command's raw bytes are screened before ``json.loads``: size, nesting depth, and its id.

Why: ``json.loads`` recurses once per nesting level, so a 100,000-deep ``[[[[…`` raised
RecursionError out of the command handler, no ``cmd-result`` went out, and central (which
retries until it has an answer) retried forever. Here the size is checked before anything is
parsed (an oversized payload costs no parse), and the depth is measured by a flat scan with no
recursion: strings are cut out first (a bracket inside a string is no nesting), the remaining
brackets become +1/-1 and the running maximum of their sum is the depth -- all in C-level
loops, about 0.2 s for a 17 MB ``cards.snapshot`` of 100,000 cards (``json.loads`` of it: 0.25 s).

When a payload cannot be parsed, :func:`guess_id` still tries to read its top-level ``id``
from the first 64 KB, so central can match the refusal to what it sent (``id: null`` when even
that fails; see README "Extensions to the contract").
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_QUOTED = re.compile(rb'"[^"]*"')
_STEP = [0] * 256
for _b in b"[{":
    _STEP[_b] = 1
for _b in b"]}":
    _STEP[_b] = -1
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}:,]')
_ID_VALUE = re.compile(rb'\s*:\s*"([A-Za-z0-9._:-]{1,128})"')
ID_SCAN_BYTES = 65536


def depth(raw: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in ``raw`` (brackets inside strings do not count)."""
    # escaped backslashes and quotes go first (so every '"' left opens or closes a string), then all but
    # quotes and brackets, then the strings: what is left is brackets only, a fraction of the payload
    bare = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    brackets = _QUOTED.sub(b"", bare).replace(b'"', b"")
    return max(accumulate(map(_STEP.__getitem__, brackets), initial=0))


def screen(raw: bytes, max_bytes: int, max_depth: int) -> tuple[str, str] | None:
    """``(code, message)`` when ``raw`` must not reach the JSON parser; None when it may."""
    if len(raw) > max_bytes:
        return "too_large", f"command is {len(raw)} bytes; the limit is {max_bytes} ([mqtt] max_command_bytes)"
    deepest = depth(raw)
    if deepest > max_depth:
        return "too_deep", (f"command nests {deepest} levels deep; the limit is {max_depth} "
                            "([mqtt] max_command_depth)")
    return None


def guess_id(raw: bytes, scan: int = ID_SCAN_BYTES) -> str | None:
    """The top-level ``"id"`` of a payload that cannot be parsed, read from its first ``scan`` bytes."""
    head = raw[:scan]
    level = 0
    previous = b""
    for m in _TOKEN.finditer(head):
        token = m.group()
        if token in (b"[", b"{"):
            level += 1
        elif token in (b"]", b"}"):
            level -= 1
        elif level == 1 and token == b'"id"' and previous in (b"{", b","):
            value = _ID_VALUE.match(head, m.end())
            if value is not None:
                return value.group(1).decode("ascii")
        previous = token
    return None


def read_command(raw: bytes, max_bytes: int, max_depth: int) -> tuple[dict[str, Any] | None,
                                                                         tuple[str | None, str, str] | None]:
    """(the command object, None), or (None, (id or None, code, message)) when it must not or cannot be read."""
    screened = screen(raw, max_bytes, max_depth)
    if screened is not None:
        return None, (guess_id(raw), *screened)
    try:
        msg = json.loads(raw)
    except RecursionError:   # screen() measured the depth; never trust one check alone
        return None, (guess_id(raw), "too_deep", "command nests too deep to parse")
    except (ValueError, UnicodeDecodeError) as exc:
        return None, (guess_id(raw), "bad_json", f"payload is not JSON: {exc}")
    if not isinstance(msg, dict):
        return None, (None, "bad_request", "payload must be a JSON object")
    return msg, None
