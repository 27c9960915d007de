"""A big command (a 100,000-card ``cards.snapshot``, ~15 MB) is screened and parsed in a child process.

Why: the screen and ``json.loads`` of such a payload are C loops that hold the GIL for half a second
(0.2 s + 0.3 s measured), so even in a thread they stopped the event loop -- and every door decision
waiting on it -- for that long. A child process runs the very same code (:func:`read_command`, and the
HMAC's canonical form when a key is set), so every answer and refusal code stays what it was, and hands
the command back pickled with its big lists (``args.cards``, ``args.units``) cut into chunks of
:data:`CHUNK` items. The loop unpickles one chunk at a time and yields between them, with the cyclic
garbage collector paused (:func:`gc_paused`): a full collection triggered by 100,000 new dicts walks the
whole heap, ~0.3 s measured on a daemon-sized heap, and the parsed cards are acyclic (reference counting
frees them). When no child can be started (no memory, no fork), the command is parsed in a thread, as
before.

Protocol (stdin): one JSON line ``{"max_bytes", "max_depth", "name", "key"}`` then the raw payload.
Stdout: an 8-byte length, the pickled envelope, then the chunks (their lengths are in the envelope).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import pickle
import sys
from collections.abc import Iterator
from typing import Any

from gateway.command_screen import read_command

#: items of a big list per pickled chunk: the loop unpickles one (~0.5 ms) between two yields
CHUNK = 500
#: lists in ``args`` longer than this travel in chunks
BIG_LIST = 2 * CHUNK
_paused = 0
_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC off while the block runs (nested uses count; the outermost puts it back as it was)."""
    global _paused, _was_enabled
    if _paused == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _paused += 1
    try:
        yield
    finally:
        _paused -= 1
        if _paused == 0 and _was_enabled:
            gc.enable()


def _envelope(header: dict[str, Any], raw: bytes) -> bytes:
    """The child's answer: the outcome of :func:`read_command`, big lists cut out into chunks."""
    msg, refused = read_command(raw, int(header["max_bytes"]), int(header["max_depth"]))
    chunks: list[bytes] = []
    big: list[tuple[str, list[int]]] = []
    sig = None
    if msg is not None:
        if header.get("key") and isinstance(msg.get("sig"), str) and isinstance(msg.get("ts"), str):
            from gateway.commands import sign  # only here: the child needs it only for signed commands
            sig = sign(bytes.fromhex(header["key"]), str(header["name"]), msg)
        args = msg.get("args")
        if isinstance(args, dict):
            for key, value in list(args.items()):
                if isinstance(value, list) and len(value) > BIG_LIST:
                    sizes = []
                    for start in range(0, len(value), CHUNK):
                        chunks.append(pickle.dumps(value[start:start + CHUNK], protocol=pickle.HIGHEST_PROTOCOL))
                        sizes.append(len(chunks[-1]))
                    big.append((key, sizes))
                    args[key] = None
    env = pickle.dumps({"msg": msg, "refused": refused, "big": big, "sig": sig}, protocol=pickle.HIGHEST_PROTOCOL)
    return len(env).to_bytes(8, "big") + env + b"".join(chunks)


async def parse_in_child(raw: bytes, name: str, max_bytes: int, max_depth: int,
                         key: bytes | None) -> tuple[dict[str, Any] | None, tuple[str | None, str, str] | None,
                                                     str | None]:
    """(command, refusal, expected signature) as :func:`read_command` gives them, parsed by a child process.

    Raises OSError when no child could run (the caller parses in a thread then). Call under :func:`gc_paused`.
    """
    header = json.dumps({"max_bytes": max_bytes, "max_depth": max_depth, "name": name,
                         "key": key.hex() if key else None}).encode() + b"\n"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.command_worker", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate(header + raw)
    if proc.returncode != 0 or len(out) < 8:
        raise OSError(f"command parser child exited {proc.returncode}")
    view = memoryview(out)
    size = int.from_bytes(view[:8], "big")
    env = pickle.loads(view[8:8 + size])
    pos = 8 + size
    msg = env["msg"]
    for key_, sizes in env["big"]:
        items: list[Any] = []
        for n in sizes:
            items.extend(pickle.loads(view[pos:pos + n]))
            pos += n
            await asyncio.sleep(0)
        msg["args"][key_] = items
    return msg, env["refused"], env["sig"]


async def free_in_slices(msg: dict[str, Any] | None) -> None:
    """Drop a big command's lists a chunk at a time (freeing 100,000 cards at once stops the loop ~50 ms)."""
    args = msg.get("args") if isinstance(msg, dict) else None
    if not isinstance(args, dict):
        return
    for value in args.values():
        if isinstance(value, list):
            while value:
                del value[-CHUNK:]
                await asyncio.sleep(0)


def main() -> None:
    """Child: read the header line and the payload from stdin, write the envelope to stdout."""
    with contextlib.suppress(OSError):
        os.nice(10)  # on a small box the daemon's loop (the doors) comes first
    stdin = sys.stdin.buffer
    header = json.loads(stdin.readline())
    raw = stdin.read()
    sys.stdout.buffer.write(_envelope(header, raw))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
