"""The outbox over its bound with nothing to shed says so once a spell, not once an event (issue 20's review)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gateway.events import EventLog
from gateway.outbox_bound import KEPT_OVER_EVERY
from gateway.store import Store


def over_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "with nothing sheddable" in r.getMessage()]


def test_kept_over_the_bound_is_said_when_it_begins_every_thousand_and_again_next_time(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.events")

    async def main() -> None:
        store = Store(tmp_path / "g.db")
        store.open({})
        log = EventLog(store, max_outbox=10)
        await log.transact(lambda conn, emit: [emit("alarm.raised", {"i": i}) for i in range(5)])
        assert over_lines(caplog) == []
        # a long outage of a busy site: 2,500 alarms over a full outbox, none dropped, three lines
        await log.transact(lambda conn, emit: [emit("alarm.raised", {"i": i}) for i in range(2 * KEPT_OVER_EVERY + 500)])
        lines = over_lines(caplog)
        assert len(lines) == 3, lines
        assert "(1 kept over it so far)" in lines[0] and f"({2 * KEPT_OVER_EVERY} kept over it so far)" in lines[2]
        assert log.outbox_depth == store.query_one("SELECT COUNT(*) FROM outbox")[0] > 2 * KEPT_OVER_EVERY
        # delivered: back under the bound; the next spell is said again at its start
        seqs = [r[0] for r in store.query("SELECT seq FROM outbox ORDER BY seq")]
        await log.mark_delivered(seqs)
        assert log.outbox_depth == 0
        caplog.clear()
        await log.transact(lambda conn, emit: [emit("alarm.raised", {"i": i}) for i in range(11)])
        lines = over_lines(caplog)
        assert len(lines) == 1 and "(1 kept over it so far)" in lines[0], lines
        assert log.shed_total == 0
        store.close()

    asyncio.run(main())
