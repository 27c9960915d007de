"""SIA DC-09 over TCP: a block is committed before it is ACKed; a retried block is ACKed again, not raised twice.

Group commit across connections: while one transaction is being written, the blocks that
arrive from every panel wait together and go into the next one (:class:`CommitQueue`) -- one
write and one wake-up for all of them, none waiting longer than the commit before it.

Keys come from ``key_file`` (every account) and ``account_keys`` (per account), read as hex or
as ASCII characters per ``key_format``; a key that cannot be read keeps the receiver offline
rather than listening to encrypted panels it cannot understand. With a key for an account, its
plain blocks are refused (DUH) unless ``allow_plain``: anyone on the network can write a plain
block, so only an encrypted one may raise a fire and release doors (issue 18).
"""

from __future__ import annotations

import asyncio
import logging
import os

from drivers import contact_id as cid
from drivers.sia_dc09 import PLAIN_REFUSED, BlockError, Dc09Message, Dc09Receiver, KeyRing, Verdict, load_key
from gateway.alarms.lifecycle import Outcome
from gateway.alarms.receivers.base import AlarmReceiver, ReceiverHost, split_listen
from gateway.alarms.signals import Signal, dc09_dedupe, signals_from_dc09
from gateway.config import AlarmReceiverConfig
from gateway.context import GatewayContext
from gateway.reasons import BAD_KEY_FILE, CANNOT_LISTEN

log = logging.getLogger(__name__)


Item = tuple[list[Signal], tuple[str, str, str] | None, str]
#: how long a batch may wait for the next blocks of panels sending back to back (see :class:`CommitQueue`)
GATHER_S = 0.002


class CommitQueue:
    """Blocks from all connections, committed a batch at a time (one batch in flight).

    Panels sending back to back (each waits for its ACK, then sends the next block at once) answer
    a batch's ACKs a little apart: committing the first reply alone and the rest in the next
    transaction would halve the batch and double the commits (and the fsyncs, the WAL pages written,
    the wake-ups). So a batch waits -- at most ``gather_s`` after the previous one was answered --
    for the connections that are back to back ("hot": their last block came within ``gather_s`` of
    their last ACK) and were in the previous batch. A panel that sends now and then is never
    waited for, and never waits: it is not hot, and a batch without hot panels expected goes at once.
    """

    def __init__(self, host: ReceiverHost, receiver: str, gather_s: float = GATHER_S) -> None:
        self.host, self.receiver = host, receiver
        self.gather_s = gather_s
        self.pending: list[tuple[Item, asyncio.Future[Outcome], int]] = []
        self.flushing = False
        self.batches = 0
        #: batches that waited for a hot connection's next block
        self.gathers = 0
        self._answered: dict[int, float] = {}    # connection -> when its last block was answered
        self._hot: set[int] = set()              # connections sending back to back
        self._expected: set[int] = set()         # hot connections of the last batch not yet heard again
        self._all_in: asyncio.Future[None] | None = None
        self._deadline = 0.0

    async def commit(self, item: Item) -> Outcome:
        loop = asyncio.get_running_loop()
        conn = id(asyncio.current_task())   # the connection's task (an int: nothing of it is kept alive)
        answered = self._answered.pop(conn, None)
        if answered is not None and loop.time() - answered <= self.gather_s:
            self._hot.add(conn)
        else:
            self._hot.discard(conn)
        self._expected.discard(conn)
        if not self._expected and self._all_in is not None and not self._all_in.done():
            self._all_in.set_result(None)
        fut: asyncio.Future[Outcome] = loop.create_future()
        self.pending.append((item, fut, conn))
        if not self.flushing:
            self.flushing = True
            loop.create_task(self._flush())
        return await fut

    async def _gather(self) -> None:
        """Wait (until the deadline) for the hot connections of the last batch to send their next block."""
        loop = asyncio.get_running_loop()
        wait = self._deadline - loop.time()
        if not self._expected or wait <= 0:
            return
        self._all_in = loop.create_future()
        self.gathers += 1
        try:
            async with asyncio.timeout(wait):
                await self._all_in
        except TimeoutError:
            pass
        finally:
            self._all_in = None

    async def _flush(self) -> None:
        try:
            while self.pending:
                await self._gather()
                batch, self.pending = self.pending, []
                self.batches += 1
                try:
                    outcomes = await self.host.process_batch(self.receiver, [item for item, _f, _c in batch])
                except Exception as exc:   # the store failed: every block in it is NAKed and resent
                    for _item, fut, _c in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                self._next_round(batch)
                for (_item, fut, _c), outcome in zip(batch, outcomes, strict=True):
                    if not fut.done():
                        fut.set_result(outcome)
        finally:
            self.flushing = False

    def _next_round(self, batch: list[tuple[Item, asyncio.Future[Outcome], int]]) -> None:
        """The batch is about to be answered: the next one waits for its hot connections."""
        now = asyncio.get_running_loop().time()
        if len(self._answered) > 10_000:   # bounded: connections that never sent again are forgotten
            self._answered.clear()
            self._hot.clear()
        conns = {conn for _i, _f, conn in batch}
        for conn in conns:
            self._answered[conn] = now
        self._expected = self._hot & conns
        self._deadline = now + self.gather_s


class Dc09AlarmReceiver(AlarmReceiver):
    protocol = "sia-dc09"

    def __init__(self, rc: AlarmReceiverConfig, ctx: GatewayContext, host: ReceiverHost) -> None:
        super().__init__(rc, ctx, host)
        self.server: Dc09Receiver | None = None
        self.commits = CommitQueue(host, rc.id)
        #: fault injection for the crash test: hold each ACK back this long after the commit
        self.ack_delay_s = float(os.environ.get("EGW_FAULT_ALARM_ACK_DELAY_S", "0") or 0)

    def load_keys(self) -> KeyRing:
        """The receiver's keys from its key files. Raises OSError/ValueError (naming the file)."""
        rc = self.rc

        def read(name: str) -> bytes:
            try:
                return load_key(self.ctx.config.resolve(name).read_text(), rc.key_format)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None

        return KeyRing(read(rc.key_file) if rc.key_file else None,
                       {acct.upper(): read(name) for acct, name in rc.account_keys.items()})

    async def start(self) -> None:
        rc, ctx = self.rc, self.ctx
        try:
            keys = self.load_keys()
        except (OSError, ValueError) as exc:
            # refuse to listen rather than accept encrypted panels we cannot read: the receiver shows offline
            log.error("alarm receiver %s: bad key file: %s", rc.id, exc)
            await self.offline(BAD_KEY_FILE())
            return
        host, port = split_listen(rc.listen)
        self.server = Dc09Receiver(host, port, self.on_block, accounts=rc.accounts or None, keys=keys,
                                   plain_window=rc.plain_timestamp_window, clock=ctx.clock.now,
                                   on_error=self.on_block_error)
        self.server.allow_plain = rc.allow_plain
        guard = self.server.listener
        guard.name, guard.limits, guard.on_refuse = f"alarm receiver {rc.id}", self.limits(), self.on_refuse
        self.warn_if_open()
        try:
            self.port = await self.server.start()
        except OSError as exc:
            # port taken (or not ours): the rest of the gateway runs; the supervisor keeps retrying
            log.error("alarm receiver %s: cannot listen on %s: %s", rc.id, rc.listen, exc)
            await self.offline(CANNOT_LISTEN(error=exc))
        ctx.supervisor.spawn(f"alarms.{rc.id}", self._serve, device=(rc.id, "receiver"))
        if self.port is not None:
            await self.host.listening(rc.id)
            log.info("alarm receiver %s: SIA DC-09 on %s:%d%s", rc.id, host, self.port, " (AES)" if keys else "")

    async def _serve(self) -> None:
        assert self.server is not None
        if self.port is None:
            self.port = await self.server.start()
            await self.host.listening(self.rc.id)
        await self.server.serve_forever()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def on_block(self, msg: Dc09Message) -> Verdict:
        """Commit what the block says; the receiver ACKs once this returns.

        A poll (NULL, or an event block with empty data) has nothing to commit: it only proves
        the panel is alive. Data we cannot read is DUH (the panel reports it), never a guess.
        """
        if msg.id_token == "NULL" or not msg.payload.strip():
            self.host.heard(self.rc.id, msg.account.upper())
            return Verdict.ACK
        try:
            signals = signals_from_dc09(self.rc.id, msg)
        except cid.ContactIdError as exc:
            self.host.count_error(self.rc.id, f"payload: {exc}")
            return Verdict.DUH
        await self.commits.commit((signals, dc09_dedupe(msg) if signals else None, msg.account.upper()))
        if self.ack_delay_s:
            await asyncio.sleep(self.ack_delay_s)
        return Verdict.ACK

    def on_block_error(self, err: BlockError) -> None:
        if err.what == PLAIN_REFUSED:
            self.host.refused_plain(self.rc.id, err.account)
        self.host.count_error(self.rc.id, err.what)
