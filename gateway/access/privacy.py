"""Holder names are personal data: kept while a card may open doors, erased a retention period after.

Names live in the register (and the HTTP API for staff) only, never in events, logs or MQTT.
Hourly, the names of cards revoked more than ``[access] holder_retention_days`` ago, and those
in finished enrolments of that age, are overwritten (with ``secure_delete``, so they do not
linger in the file's free pages) and the sweep is audited.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import timedelta

from gateway.access import register
from gateway.context import GatewayContext
from gateway.events import Emit, format_ts

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 3600


class Privacy:
    """The hourly holder-name sweep."""

    def __init__(self) -> None:
        self.ctx: GatewayContext | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="access.privacy")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _loop(self) -> None:
        """Hourly: erase holder names the register no longer needs (see :meth:`forget_revoked_holders`)."""
        while True:
            try:
                await self.forget_revoked_holders()
            except sqlite3.Error as exc:
                log.warning("privacy sweep failed (will retry in an hour): %s", exc)
            await asyncio.sleep(SWEEP_EVERY_S)

    async def forget_revoked_holders(self) -> int:
        """Erase the names of holders whose card was revoked more than ``holder_retention_days`` ago.

        A name is personal data: the register keeps it while the card may open doors and for the
        retention period after (disputes, the owner's signature), then it goes. Finished or expired
        enrolments lose theirs after the same period. Returns the number of cards affected.
        """
        assert self.ctx is not None, "access component not started"
        ctx = self.ctx
        cutoff = format_ts(ctx.clock.now() - timedelta(days=ctx.config.access.holder_retention_days))

        def txn(conn: sqlite3.Connection, emit: Emit) -> int:
            n = register.forget_holders(conn, cutoff)
            if n:
                ctx.audit.insert(conn, "gateway", "system", "cards.forget_holders", f"{n} cards",
                                 {"revoked_before": cutoff})
            return n

        n = await ctx.events.transact(txn)
        if n:
            log.info("privacy: erased the holder names of %d cards revoked before %s", n, cutoff)
        return n
