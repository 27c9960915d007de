"""Commands from the central system: validated, dispatched, answered once per id.

Each command has an ``id``; its result is stored with it, so a repeated id (the
broker redelivering, central retrying) gets the same answer again and does
nothing twice. Bad input always gets ``ok:false`` with a code, never a crash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from gateway.errors import DomainError
from gateway.events import format_ts
from gateway.metrics import Metrics
from gateway.store import Store

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[dict[str, Any]]]
ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


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
                 hmac_key: bytes | None = None, replay_window_s: float = 300) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.hmac_key = hmac_key
        self.replay_window_s = replay_window_s
        self._handlers: dict[str, tuple[Handler, type[BaseModel] | None]] = {}

    def register(self, name: str, handler: Handler, args_model: type[BaseModel] | None = None) -> None:
        """``handler(args)`` gets a validated ``args_model`` instance (or the raw dict) and returns a result dict."""
        self._handlers[name] = (handler, args_model)

    @property
    def names(self) -> list[str]:
        return sorted(self._handlers)

    async def handle(self, name: str, payload: bytes | str) -> dict[str, Any]:
        """Turn one incoming message into the result to publish on cmd-result."""
        try:
            msg = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            return self._count(_error(None, "bad_json", f"payload is not JSON: {exc}"))
        if not isinstance(msg, dict):
            return self._count(_error(None, "bad_request", "payload must be a JSON object"))
        cmd_id = msg.get("id")
        if not isinstance(cmd_id, str) or not ID_RE.match(cmd_id):
            return self._count(_error(None, "missing_id", "field 'id' must be a string of 1-128 [A-Za-z0-9._:-]"))
        if self.hmac_key is not None and (refused := self._check_signature(name, msg)) is not None:
            log.warning("command %s id=%s refused: %s", name, cmd_id, refused["error"]["code"])
            return self._count(refused)
        stored = self.store.query_one("SELECT result FROM commands WHERE id=?", (cmd_id,))
        if stored is not None:
            log.info("command %s (%s) repeated: answering the stored result", cmd_id, name)
            return json.loads(stored[0])
        result = await self._dispatch(cmd_id, name, msg.get("args", {}))
        await self.store.write(lambda c: self._remember(c, cmd_id, name, result))
        return self._count(result)

    async def _dispatch(self, cmd_id: str, name: str, args: Any) -> dict[str, Any]:
        entry = self._handlers.get(name)
        if entry is None:
            return _error(cmd_id, "unknown_command", f"unknown command '{name}'; known: {', '.join(self.names)}")
        if not isinstance(args, dict):
            return _error(cmd_id, "bad_args", "field 'args' must be an object")
        handler, model = entry
        try:
            parsed = model.model_validate(args) if model else args
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            return _error(cmd_id, "bad_args", problems)
        try:
            result = await handler(parsed)
        except DomainError as exc:
            return _error(cmd_id, exc.code, exc.message, **exc.extra)
        except Exception as exc:
            log.exception("command %s (%s) failed", cmd_id, name)
            return _error(cmd_id, "internal", f"{type(exc).__name__}: {exc}")
        return {"id": cmd_id, "ok": True, "result": result or {}}

    def _check_signature(self, name: str, msg: dict[str, Any]) -> dict[str, Any] | None:
        """With a key configured, only signed, fresh commands run (a rogue broker client can't open valves)."""
        assert self.hmac_key is not None
        sig, ts = msg.get("sig"), msg.get("ts")
        if not isinstance(sig, str) or not isinstance(ts, str):
            return _error(msg.get("id"), "unsigned", "commands must carry 'ts' (RFC 3339) and 'sig' (HMAC-SHA256)")
        if not hmac.compare_digest(sig.lower(), sign(self.hmac_key, name, msg)):
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
