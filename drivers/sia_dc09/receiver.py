"""The DC-09 receiver: an asyncio TCP server that answers each block only after the gateway committed it.

The panel resends anything not ACKed, so the ACK waits for the handler (the commit); a handler
failure is a NAK (send it again), never a silent loss. One connection never disturbs another:
each is its own task, reads are bounded, idle connections are closed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from drivers.listener import GuardedListener, mark_proven
from drivers.quietlog import QuietLog
from drivers.sia_dc09.answers import build_response
from drivers.sia_dc09.blocks import BlockError, Dc09Message, Verdict, parse_block
from drivers.sia_dc09.crypto import KeyRing
from drivers.sia_dc09.framing import Framer

log = logging.getLogger(__name__)

Handler = Callable[[Dc09Message], Awaitable["Verdict | None"]]


@dataclass
class ReceiverStats:
    connections: int = 0
    blocks: int = 0
    acks: int = 0
    naks: int = 0
    duhs: int = 0
    garbage_bytes: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    lenient: dict[str, int] = field(default_factory=dict)   # accepted departures from the standard


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Dc09Receiver:
    """An asyncio TCP server answering each block once the handler has returned.

    ``handler(message)`` returns None/ACK (committed), DUH (understood the framing, refuse
    the content) or NAK; if it raises, the block is NAKed so the panel sends it again.
    ``on_error(BlockError)`` is told about every refused block (for counters and logs).
    ``keys`` holds the AES key(s): one for every account (bytes) or per account (a
    :class:`~drivers.sia_dc09.crypto.KeyRing`); ``plain_window`` applies the timestamp window to plain blocks too.
    Blocks accepted leniently (see :mod:`.header`) are counted and logged once per account and kind.
    """

    #: the receiver number put in answers to blocks that carry none (set it after construction)
    receiver_no: str = ""
    #: take plain blocks from accounts that have a key too (a mixed site; set it after construction)
    allow_plain: bool = False

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        accounts: Iterable[str] | None = None,
        keys: KeyRing | bytes | None = None,
        plain_window: bool = False,
        clock: Callable[[], datetime] = _utc_now,
        on_error: Callable[[BlockError], None] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.handler = handler
        self.accounts = {a.upper() for a in accounts} if accounts else None
        self.keys = keys if isinstance(keys, KeyRing) else KeyRing(keys)
        self.plain_window = plain_window
        self._logged: set[tuple[str, str]] = set()
        self.quiet = QuietLog(log, level=logging.ERROR)
        self.clock = clock
        self.on_error = on_error or (lambda e: None)
        self.stats = ReceiverStats()
        #: allow_from, connection caps, idle timeout: set ``listener.limits`` (and ``on_refuse``) before start
        self.listener = GuardedListener("dc09", host, port, self._serve)
        self._conns: set[asyncio.Task[None]] = set()

    @property
    def idle_timeout_s(self) -> float:
        """Seconds a connection may stay silent before it is closed (part of the listener's limits)."""
        return self.listener.limits.idle_timeout_s

    @idle_timeout_s.setter
    def idle_timeout_s(self, value: float) -> None:
        self.listener.limits = dataclasses.replace(self.listener.limits, idle_timeout_s=value)

    async def start(self) -> int:
        """Listen; returns the bound port (pass port 0 for a free one)."""
        self.port = await self.listener.start()
        return self.port

    async def serve_forever(self) -> None:
        if self.listener.server is None:
            await self.start()
        assert self.listener.server is not None
        try:
            await self.listener.server.serve_forever()
        finally:
            await self.close()

    async def close(self) -> None:
        self.listener.close()
        for t in list(self._conns):
            t.cancel()
        if self._conns:
            await asyncio.gather(*self._conns, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self.stats.connections += 1
        framer = Framer()
        try:
            while True:
                data = await self.listener.read(reader, writer)
                if not data:
                    break  # closed, or half-open/silent: free the slot; a live panel reconnects
                before = framer.garbage
                for body in framer.feed(data):
                    writer.write(await self.answer(body))
                    await writer.drain()
                self.stats.garbage_bytes += framer.garbage - before
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # closing: end quietly (asyncio logs a cancelled connection task as an error)
        except Exception:  # never let one connection take the server down
            log.exception("dc09: connection handler failed")
        finally:
            self._conns.discard(task)
            writer.close()

    def key_for(self, account: str) -> bytes | None:
        """The AES key for an account's blocks: its own, else the receiver's."""
        return self.keys.for_account(account)

    async def answer(self, body: bytes) -> bytes:
        """The response to one block (after the handler committed it, for a valid one)."""
        self.stats.blocks += 1
        now = self.clock()
        msg = parse_block(body, keys=self.key_for, now=now, accounts=self.accounts, plain_window=self.plain_window,
                          allow_plain=self.allow_plain)
        if isinstance(msg, BlockError):
            self._count(msg)
            rcv = self.receiver_no if msg.verdict is Verdict.NAK else self._rcv(msg.receiver)   # NAK: R0 (or ours)
            return build_response(msg.verdict, seq=msg.seq, receiver=rcv, line=msg.line,
                                  account=msg.account, now=now, binary_crc=msg.binary_crc)
        if msg.lenient:
            self._lenient(msg)
        try:
            verdict = await self.handler(msg) or Verdict.ACK
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.quiet.log(("handler", type(exc).__name__), "dc09: handler failed (block NAKed, the panel resends):"
                           " %s", exc)
            verdict = Verdict.NAK
        if verdict is Verdict.ACK:
            self.stats.acks += 1
            mark_proven()   # a real panel's connection: never closed to make room
        else:
            self._count(BlockError(verdict, "refused by handler", msg.seq, msg.receiver, msg.line, msg.account))
        key = self.key_for(msg.account if msg.header_account else "") if msg.encrypted else None
        # the time only goes into a NAK and an encrypted ACK: a plain ACK does not read the clock again
        stamped = verdict is Verdict.NAK or (key is not None and verdict is Verdict.ACK)
        return build_response(verdict, seq=msg.seq, receiver=self._rcv(msg.receiver), line=msg.line,
                              account=msg.account, key=key, now=self.clock() if stamped else None,
                              binary_crc=msg.binary_crc)

    def _rcv(self, receiver: str | None) -> str | None:
        return receiver if receiver is not None or not self.receiver_no else self.receiver_no

    def _lenient(self, msg: Dc09Message) -> None:
        for what in msg.lenient:
            self.stats.lenient[what] = self.stats.lenient.get(what, 0) + 1
            # an account we were not told to accept is the wire's: one key for all of them (bounded)
            seen = (msg.account if self.accounts else "*", what)
            if seen not in self._logged and len(self._logged) < 1000:
                self._logged.add(seen)
                log.info("dc09: account %s: accepted a block with %s (logged once)", msg.account, what)

    def _count(self, err: BlockError) -> None:
        if err.verdict is Verdict.NAK:
            self.stats.naks += 1
        else:
            self.stats.duhs += 1
        self.stats.errors[err.what] = self.stats.errors.get(err.what, 0) + 1
        try:
            self.on_error(err)
        except Exception:
            log.exception("dc09: on_error hook failed")
