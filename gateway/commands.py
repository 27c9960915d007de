"""Commands from the central system: validated, dispatched, answered once per id.

Each command has an ``id``; its result is stored with it, so a repeated id (the
broker redelivering, central retrying) gets the same answer again and does
nothing twice. Bad input always gets ``ok:false`` with a code, never a crash:
the raw bytes are screened for size and depth before they are parsed
(:mod:`gateway.command_screen`), so every payload gets a ``cmd-result`` and
central never retries an unanswerable command forever. An id reused for a
*different* command answers ``id_reused`` and does nothing (before, a
``door.unlock`` reusing a ``ping``'s id answered ``ok:true`` with the ping's
result, and the door stayed locked while central believed it open).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import pickle
import re
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from drivers.quietlog import QuietLog
from gateway.command_screen import read_command
from gateway.command_worker import free_in_slices, gc_paused, parse_in_child
from gateway.errors import DomainError
from gateway.events import format_ts
from gateway.memory import release_memory
from gateway.metrics import Metrics
from gateway.store import Store

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[dict[str, Any]]]
ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: defaults of ``[mqtt] max_command_bytes`` / ``max_command_depth`` (a 100k-card snapshot is 12-15 MB, 6 deep)
MAX_COMMAND_BYTES = 32 * 1024 * 1024
MAX_COMMAND_DEPTH = 32
OFF_LOOP_BYTES = 1024 * 1024
#: codes of commands refused before they ran: the router logs them (once a minute), callers need not
#: refused before the command ran (nothing stored under the id); logged by the router through QuietLog
REFUSED = frozenset({"bad_json", "too_large", "too_deep", "bad_request", "missing_id", "unsigned", "bad_signature",
                     "stale", "id_reused", "unknown_command"})
#: every code a sender can provoke at will with what it writes: the router logs these through QuietLog (one line a
#: minute per (command, code)), so the command path must not log them again, once per message
QUIET_CODES = REFUSED | {"bad_args"}


class CommandError(DomainError):
    """Raise from a handler to answer ``ok:false`` with this code and message.

    Any :class:`~gateway.errors.DomainError` a handler raises answers the same way, so an area's
    rules refuse once and both wires (HTTP, MQTT) say it in the same words.
    """

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(code, message, **details)
        self.details = details


def canonical(name: str, msg: dict[str, Any]) -> bytes:
    """The bytes a command's HMAC covers: name, id, ts and the args in canonical JSON."""
    args = json.dumps(msg.get("args", {}), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{name}\n{msg.get('id')}\n{msg.get('ts')}\n{args}".encode()


def sign(key: bytes, name: str, msg: dict[str, Any]) -> str:
    """What central puts in ``sig`` (hex HMAC-SHA256); used by tests and the README example."""
    return hmac.new(key, canonical(name, msg), hashlib.sha256).hexdigest()


class CommandRouter:
    def __init__(self, store: Store, clock: Callable[[], datetime], metrics: Metrics | None = None, *,
                 hmac_key: bytes | None = None, replay_window_s: float = 300,
                 max_bytes: int = MAX_COMMAND_BYTES, max_depth: int = MAX_COMMAND_DEPTH) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.hmac_key = hmac_key
        self.replay_window_s = replay_window_s
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self._handlers: dict[str, tuple[Handler, type[BaseModel] | None]] = {}
        #: id -> (command name, its result to come): a repeat that arrives while the first still runs
        self._running: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self.quiet = QuietLog(log)
        #: big commands read by a child process (command_worker), not in a thread
        self.parsed_in_child = 0

    def register(self, name: str, handler: Handler, args_model: type[BaseModel] | None = None) -> None:
        """``handler(args)`` gets a validated ``args_model`` instance (or the raw dict) and returns a result dict."""
        self._handlers[name] = (handler, args_model)

    @property
    def names(self) -> list[str]:
        return sorted(self._handlers)

    async def handle(self, name: str, payload: bytes | str) -> dict[str, Any]:
        """Turn one incoming message into the result to publish on cmd-result (always one, whatever came)."""
        raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
        if len(raw) <= OFF_LOOP_BYTES or len(raw) > self.max_bytes:  # small, or refused on its size alone
            msg, refused = read_command(raw, self.max_bytes, self.max_depth)
            return await self._handle(name, msg, refused, None)
        # a snapshot's screen and parse hold the GIL for half a second: in a child process (command_worker)
        with gc_paused():
            msg, refused, sig = await self._read_big(name, raw)
            try:
                return await self._handle(name, msg, refused, sig)
            finally:
                await free_in_slices(msg)
                asyncio.get_running_loop().call_later(0.5, release_memory)  # the freed heap back to the OS

    async def _read_big(self, name: str, raw: bytes) -> tuple[dict[str, Any] | None,
                                                              tuple[str | None, str, str] | None, str | None]:
        try:
            read = await parse_in_child(raw, name, self.max_bytes, self.max_depth, self.hmac_key)
            self.parsed_in_child += 1
            return read
        except (OSError, ValueError, pickle.UnpicklingError, EOFError) as exc:  # no child: in a thread, as before
            self.quiet.log(("(parser)", "child"), "command parser child unavailable (%s): parsing in a thread", exc)
            msg, refused = await asyncio.to_thread(read_command, raw, self.max_bytes, self.max_depth)
            return msg, refused, None

    async def _handle(self, name: str, msg: dict[str, Any] | None, refused: tuple[str | None, str, str] | None,
                      sig: str | None) -> dict[str, Any]:
        if refused is not None or msg is None:
            assert refused is not None
            return self._refuse(name, *refused)
        cmd_id = msg.get("id")
        if not isinstance(cmd_id, str) or not ID_RE.match(cmd_id):
            return self._refuse(name, None, "missing_id", "field 'id' must be a string of 1-128 [A-Za-z0-9._:-]")
        if (screened := self._screen_sender(name, msg, sig)) is not None:
            return self._refuse(name, cmd_id, screened["error"]["code"], screened["error"]["message"])
        stored = self.store.query_one("SELECT name, result FROM commands WHERE id=?", (cmd_id,))
        if stored is not None:
            if stored[0] != name:
                return self._reused(name, cmd_id, stored[0])
            log.info("command %s (%s) repeated: answering the stored result", cmd_id, name)
            return json.loads(stored[1])
        running = self._running.get(cmd_id)
        if running is not None:
            if running[0] != name:
                return self._reused(name, cmd_id, running[0])
            await asyncio.wait([running[1]])   # the same command again while it runs: its one answer
            return running[1].result()
        return await self._run(cmd_id, name, msg.get("args", {}))

    async def _run(self, cmd_id: str, name: str, args: Any) -> dict[str, Any]:
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._running[cmd_id] = (name, done)
        try:
            result = await self._dispatch(cmd_id, name, args)
            await self.store.write(lambda c: self._remember(c, cmd_id, name, result))
        except BaseException:
            done.set_result(_error(cmd_id, "internal", "the command could not be completed; send it again"))
            raise
        finally:
            del self._running[cmd_id]
        done.set_result(result)
        return self._count(result)

    def _reused(self, name: str, cmd_id: str, first: str) -> dict[str, Any]:
        return self._refuse(name, cmd_id, "id_reused", f"id '{cmd_id}' was already used for '{first}'; "
                                                       f"nothing was done: send '{name}' with a new id",
                            first_command=first)

    def _refuse(self, name: str, cmd_id: str | None, code: str, message: str, **details: Any) -> dict[str, Any]:
        """A command refused before it ran: answered, counted, logged once a minute per (command, code)."""
        if self.metrics is not None:
            self.metrics.inc("commands_refused_total", {"reason": code})
        shown = name if name in self._handlers else "(other)"   # the topic is the sender's: bounded in the log
        self.quiet.log((shown, code), "command %s refused: %s (%s)", shown, code, message[:200])
        result = _error(cmd_id, code, message, **details)
        if cmd_id is None:
            result["command"] = name[:128]   # id unreadable: central matches the answer by command name
        return self._count(result)

    def _screen_sender(self, name: str, msg: dict[str, Any], sig: str | None = None) -> dict[str, Any] | None:
        """A signature that does not hold, or a command name nobody registered: refused before it runs (nothing
        is stored for a name the sender made up)."""
        if self.hmac_key is not None and (refused := self._check_signature(name, msg, sig)) is not None:
            return refused
        if name not in self._handlers:
            return _error(msg.get("id"), "unknown_command", f"unknown command '{name[:128]}'; known: {', '.join(self.names)}")
        return None

    def _bad_args(self, name: str, cmd_id: str, problems: str) -> dict[str, Any]:
        """Arguments that do not validate: answered (and stored, like any result), logged once a minute per command."""
        self.quiet.log((name, "bad_args"), "command %s refused: bad_args (%s)", name, problems[:200])
        return _error(cmd_id, "bad_args", problems)

    async def _dispatch(self, cmd_id: str, name: str, args: Any) -> dict[str, Any]:
        handler, model = self._handlers[name]
        if not isinstance(args, dict):
            return self._bad_args(name, cmd_id, "field 'args' must be an object")
        try:
            parsed = model.model_validate(args) if model else args
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            return self._bad_args(name, cmd_id, problems)
        try:
            result = await handler(parsed)
        except DomainError as exc:
            return _error(cmd_id, exc.code, exc.message, **exc.extra)
        except Exception as exc:
            log.exception("command %s (%s) failed", cmd_id, name)
            return _error(cmd_id, "internal", f"{type(exc).__name__}: {exc}")
        return {"id": cmd_id, "ok": True, "result": result or {}}

    def _check_signature(self, name: str, msg: dict[str, Any], expected: str | None = None) -> dict[str, Any] | None:
        """With a key configured, only signed, fresh commands run (a rogue broker client can't open valves).
        ``expected``: the signature as computed by the child that parsed a big command (same code)."""
        assert self.hmac_key is not None
        sig, ts = msg.get("sig"), msg.get("ts")
        if not isinstance(sig, str) or not isinstance(ts, str):
            return _error(msg.get("id"), "unsigned", "commands must carry 'ts' (RFC 3339) and 'sig' (HMAC-SHA256)")
        if not hmac.compare_digest(sig.lower(), expected or sign(self.hmac_key, name, msg)):
            return _error(msg.get("id"), "bad_signature", "signature does not match")
        try:
            when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
            age = abs((self.clock() - when).total_seconds())
        except (ValueError, TypeError):
            return _error(msg.get("id"), "bad_request", "'ts' is not an RFC 3339 time with a zone")
        if age > self.replay_window_s:
            return _error(msg.get("id"), "stale", f"'ts' is {age:.0f} s away from the gateway's clock "
                                                  f"(window {self.replay_window_s:.0f} s)")
        return None

    def _remember(self, conn: sqlite3.Connection, cmd_id: str, name: str, result: dict[str, Any]) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO commands(id, name, received_at, result) VALUES(?,?,?,?)",
            (cmd_id, name, format_ts(self.clock()), json.dumps(result, ensure_ascii=False)),
        )

    def _count(self, result: dict[str, Any]) -> dict[str, Any]:
        if self.metrics is not None:
            code = "ok" if result.get("ok") else result.get("error", {}).get("code", "error")
            self.metrics.inc("commands_total", {"result": code})
        return result


def _error(cmd_id: str | None, code: str, message: str, **details: Any) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if details:
        err.update(details)
    return {"id": cmd_id, "ok": False, "error": err}
