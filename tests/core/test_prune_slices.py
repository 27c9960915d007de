"""Big deletes go in slices: the hourly prunes (events, metering readings) remove exactly what they should,
in several commits of at most DELETE_SLICE rows, so the writer commits door decisions between them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import make_config

from gateway.daemon import build_context, stop_context
from gateway.events import EventLog
from gateway.metering import MeteringComponent
from gateway.store import BUSY_S, BUSY_SLICE, DELETE_SLICE, Store, flush_file

OLD = 2 * DELETE_SLICE + 345  # several slices' worth


def test_event_prune_runs_in_slices_and_keeps_undelivered_young_and_newest(tmp_path: Path) -> None:
    async def main() -> None:
        store = Store(tmp_path / "g.db")
        store.open()
        now = [datetime.now(UTC) - timedelta(days=100)]
        log = EventLog(store, clock=lambda: now[0])

        def batch(conn, emit) -> list[int]:
            return [emit("gateway.test", {"i": i}).seq for i in range(OLD)]

        old = await log.transact(batch)
        await log.mark_delivered(old[:-10])  # ten old ones still undelivered: kept
        now[0] = datetime.now(UTC)
        young = [(await log.record("gateway.test", {"young": i})).seq for i in range(3)]
        await log.mark_delivered(young)
        commits = store.commits
        assert await log.prune(90) == OLD - 10
        assert store.commits - commits >= 3  # several transactions, not one
        left = [e.seq for e in log.query(0, 1000)]
        assert left == old[-10:] + young
        store.close()

    asyncio.run(main())


def test_readings_prune_runs_in_slices_removes_exactly_the_old_ones(tmp_path: Path) -> None:
    async def main() -> None:
        comp = MeteringComponent()
        ctx = await build_context(make_config(tmp_path, "[metering]\nkeep_days = 30\n"), components=[comp])
        try:
            def seed(conn) -> None:
                rows = []
                for i in range(OLD):  # old ones with a few young ones among them (a late-arriving order)
                    ts = "2026-11-20T00:00:00.000Z" if i % 1000 == 7 else "2026-01-01T00:00:00.000Z"
                    rows.append((f"m{i % 50}", ts))
                rows += [("m0", "2026-11-21T00:00:00.000Z")] * 5 + [("m1", "2026-02-01T00:00:00.000Z")]
                conn.executemany("INSERT INTO readings(meter, unit, read_at, vals) VALUES(?,'u',?,'{}')", rows)
                conn.execute("INSERT INTO billing_readings VALUES('m','2025Q4','u','2025-12-26T00:00:00.000Z','{}')")
            await ctx.store.write(seed)
            young = ctx.store.query_one("SELECT COUNT(*) FROM readings WHERE read_at >= '2026-10-24'")[0]
            total = ctx.store.query_one("SELECT COUNT(*) FROM readings")[0]
            ctx.clock.set(datetime(2026, 11, 23, tzinfo=UTC))
            commits = ctx.store.commits
            assert await comp.readings.prune() == total - young
            assert ctx.store.commits - commits >= 3
            assert ctx.store.query_one("SELECT COUNT(*) FROM readings")[0] == young
            assert ctx.store.query_one("SELECT COUNT(*) FROM readings WHERE read_at < '2026-10-24'")[0] == 0
            assert ctx.store.query_one("SELECT COUNT(*) FROM billing_readings")[0] == 1
            assert await comp.readings.prune() == 0
        finally:
            await stop_context(ctx)

    asyncio.run(main())


def test_settle_flushes_the_wal_and_copes_with_none(tmp_path: Path) -> None:
    """Between slices the WAL is fdatasync'd on a thread (a decision's fsync then writes only its own pages);
    a WAL that is not there (closed store, another journal mode) is nothing to flush."""
    flush_file(tmp_path / "nothing-wal")

    async def main() -> None:
        store = Store(tmp_path / "s.db")
        store.open()
        try:
            await store.write(lambda c: c.execute("CREATE TABLE t(x)"), background=True)
            await store.settle()
            assert (tmp_path / "s.db-wal").exists()
        finally:
            store.close()

    asyncio.run(main())


def test_slices_shrink_while_foreground_writes_come_in(tmp_path: Path) -> None:
    """A decision arriving during a slice waits for all of it: while foreground writes (door decisions, alarms)
    came in the last BUSY_S, each slice is BUSY_SLICE rows; with none, DELETE_SLICE. Decided per slice."""
    async def main() -> None:
        store = Store(tmp_path / "b.db")
        store.open()
        try:
            assert not store.busy()
            limits: list[int] = []

            def fn(conn, after: int, limit: int) -> tuple[int, int]:
                limits.append(limit)
                return (limit, after + limit) if len(limits) < 4 else (0, after)

            assert await store.delete_in_slices(fn) == (3 * DELETE_SLICE, 4)
            assert limits == [DELETE_SLICE] * 4
            await store.write(lambda c: None)   # a foreground write: a door decision
            assert store.busy()
            limits.clear()
            assert await store.delete_in_slices(fn) == (3 * BUSY_SLICE, 4)
            assert limits == [BUSY_SLICE] * 4
            store.foreground_at -= BUSY_S   # two seconds later, nothing since
            assert not store.busy()
        finally:
            store.close()

    asyncio.run(main())
