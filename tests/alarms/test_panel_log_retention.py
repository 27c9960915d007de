"""The panel log (every signal received) is kept as long as the event log keeps events, and has no time index
(issue 20): it is pruned from the front, in the order received."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alarms.harness import upgraded_from

from gateway.alarms import store as db


def test_the_time_index_goes_and_the_prune_takes_the_front_older_than_the_cutoff(tmp_path: Path) -> None:
    async def main() -> None:
        store = upgraded_from(   # the schema before the index was dropped
            tmp_path / "g.db", 4, "INSERT INTO alarm_signals(ts, receiver, account, code, zone, kind, restore, alarm, "
            "raw) VALUES(?, 'dc', '1234', '130', 1, 'burglary', 0, NULL, '')",
            [(f"2026-01-{d:02d}T12:00:00Z",) for d in range(1, 31)])
        try:
            assert store.query_one("SELECT COUNT(*) FROM sqlite_master WHERE name='alarm_signals_ts'")[0] == 0
            assert await db.prune_panel_log(store, "2026-01-11T00:00:00Z") == 10
            left = [r[0] for r in store.query("SELECT ts FROM alarm_signals ORDER BY id")]
            assert left == [f"2026-01-{d:02d}T12:00:00Z" for d in range(11, 31)]
            assert await db.prune_panel_log(store, "2026-01-11T00:00:00Z") == 0
            assert await db.prune_panel_log(store, "2027") == 20   # all of them older
            assert await db.prune_panel_log(store, "2027") == 0    # and an empty log
        finally:
            store.close()

    asyncio.run(main())
