"""Console sessions: a random id in the cookie, never the API token (issue 18, item 7).

Why: the console used to keep the long-lived API token itself in its cookie -- no expiry, no
rotation, and a stolen cookie was the token. Now ``/login`` issues a fresh random id (256 bits)
per sign-in; only its SHA-256 is stored, with the SHA-256 of the token that opened it, so:

* a session ends after ``[api] session_idle_h`` without a request, and at sign-out;
* signing in again rotates it (the old id is dropped);
* removing a token from the config revokes its sessions at the next start (the session's token
  hash is no longer configured), and a role change applies at once (the principal is read from
  the configured tokens on every request, never stored);
* a daemon restart does not sign the duty room out (sessions live in SQLite).

``last_seen`` is kept in memory on every request and written at most once a minute per session,
so a restart may end a session up to a minute early, never late.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.store import Store

log = logging.getLogger(__name__)

AREA = "api_sessions"
MIGRATIONS: list[tuple[int, str]] = [
    (1, """
CREATE TABLE api_session (
    id_sha256 TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL
);
"""),
]

#: a session id longer than this is not ours (never hashed, never looked up)
MAX_ID_LEN = 128
#: at most this many live sessions (the oldest idle ones go first); a duty room has a handful
MAX_SESSIONS = 10_000
PERSIST_EVERY_S = 60.0


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass
class _Session:
    token_sha256: str
    last_seen: float
    persisted: float


class SessionBook:
    """Live sessions by the hash of their id; SQL here only."""

    def __init__(self, store: Store, idle_s: float, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.idle_s = idle_s
        self.clock = clock
        self._live: dict[str, _Session] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- start
    def load(self, configured_token_hashes: set[str]) -> None:
        """Apply the migration, drop expired sessions and those whose token left the config, keep the rest."""
        self.store.add_migrations(AREA, MIGRATIONS)
        oldest = self.clock() - self.idle_s
        hashes = sorted(configured_token_hashes)

        def prune(conn: sqlite3.Connection) -> int:
            marks = ",".join("?" * len(hashes)) or "''"
            cur = conn.execute(f"DELETE FROM api_session WHERE last_seen < ? OR token_sha256 NOT IN ({marks})",
                               (oldest, *hashes))
            return cur.rowcount

        dropped = self.store.write_sync(prune)
        if dropped:
            log.info("console sessions: %d ended at start (idle past session_idle_h, or their token was removed)",
                     dropped)
        for row in self.store.query("SELECT id_sha256, token_sha256, last_seen FROM api_session"):
            self._live[row["id_sha256"]] = _Session(row["token_sha256"], row["last_seen"], row["last_seen"])

    # ---- sign-in, sign-out
    async def open(self, token: str, replacing: str | None = None) -> str:
        """A new session for ``token`` (rotating ``replacing``, the caller's old session id, away)."""
        if replacing:
            await self.close(replacing)
        sid = secrets.token_urlsafe(32)
        key, now = _digest(sid), self.clock()
        token_sha256 = _digest(token)
        while len(self._live) >= MAX_SESSIONS:
            oldest = min(self._live, key=lambda k: self._live[k].last_seen)
            await self.close_hashed(oldest)
        self._live[key] = _Session(token_sha256, now, now)
        await self.store.write(lambda conn: conn.execute(
            "INSERT INTO api_session(id_sha256, token_sha256, created, last_seen) VALUES(?,?,?,?)",
            (key, token_sha256, now, now)))
        return sid

    async def close(self, sid: str) -> None:
        if sid and len(sid) <= MAX_ID_LEN:
            await self.close_hashed(_digest(sid))

    async def close_hashed(self, key: str) -> None:
        self._live.pop(key, None)
        await self.store.write(lambda conn: conn.execute("DELETE FROM api_session WHERE id_sha256=?", (key,)))

    # ---- every request
    def token_hash(self, sid: str, *, touch: bool = True) -> str | None:
        """The token hash behind a live session id, or None (unknown, signed out or idle too long)."""
        if not sid or len(sid) > MAX_ID_LEN:
            return None
        key = _digest(sid)
        session = self._live.get(key)
        if session is None:
            return None
        now = self.clock()
        if now - session.last_seen > self.idle_s:
            self._spawn(self.close_hashed(key))
            return None
        if touch:
            session.last_seen = now
            if now - session.persisted >= PERSIST_EVERY_S:
                session.persisted = now
                self._spawn(self.store.write(lambda conn: conn.execute(
                    "UPDATE api_session SET last_seen=? WHERE id_sha256=?", (now, key))))
        return session.token_sha256

    def _spawn(self, coro: Any) -> None:
        try:
            # an empty context: the task outlives the request and must not see (or commit) its
            # pending audit row (gateway.store.ride_along)
            task = asyncio.get_running_loop().create_task(coro, context=contextvars.Context())
        except RuntimeError:  # no loop (a sync caller): the start-up prune catches up
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("console sessions: could not store a session change: %s", task.exception())

    def __len__(self) -> int:
        return len(self._live)
