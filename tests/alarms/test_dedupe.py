"""DC-09 retries recognised in memory over an append-only table (gateway/alarms/dedupe.py): a retry is known,
the same seq with other content is a new block, a block of a rolled-back transaction is not taken for a retry,
what was committed is known again after a restart, the old ``alarm_dedupe`` rows move over in the migration,
and the prune drops only what is older than the cutoff. Real SQLite files; the store's own writer for the
rollback and the prune."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from alarms.harness import upgraded_from

from gateway.alarms import dedupe
from gateway.alarms import store as db
from gateway.alarms.dedupe import RecentBlocks
from gateway.alarms.schema import MIGRATIONS
from gateway.store import Store


def open_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for _version, sql in MIGRATIONS:
        conn.executescript(sql)
    return conn


def test_a_retry_is_known_and_the_same_seq_with_other_content_is_new(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "a.db")
    blocks = RecentBlocks(lambda: "2000")
    assert blocks.seen(conn, "dc", ("1234", "0042", "aa"), "2026-01-01") is False
    assert blocks.seen(conn, "dc", ("1234", "0042", "aa"), "2026-01-01") is True    # the panel's resend
    assert blocks.seen(conn, "dc", ("1234", "0042", "bb"), "2026-01-01") is False   # wrapped: a new block
    assert blocks.seen(conn, "dc", ("1234", "0042", "bb"), "2026-01-01") is True
    assert blocks.seen(conn, "other", ("1234", "0042", "bb"), "2026-01-01") is False   # another receiver
    assert conn.execute("SELECT COUNT(*) FROM alarm_blocks").fetchone()[0] == 3
    # a restart: the committed blocks are read back, a retry of the last one is still known
    again = RecentBlocks(lambda: "2000")
    assert again.seen(conn, "dc", ("1234", "0042", "bb"), "2026-01-01") is True
    assert again.seen(conn, "dc", ("1234", "0042", "aa"), "2026-01-01") is False      # replaced by bb


def test_memory_is_bounded_per_panel_and_in_panels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedupe, "KEEP", 4)
    monkeypatch.setattr(dedupe, "MAX_PANELS", 3)
    conn = open_db(tmp_path / "a.db")
    blocks = RecentBlocks(lambda: "2000")
    for seq in range(6):
        blocks.seen(conn, "dc", ("1", f"{seq:04d}", "d"), "t")
    assert blocks.seen(conn, "dc", ("1", "0005", "d"), "t") is True
    assert blocks.seen(conn, "dc", ("1", "0000", "d"), "t") is False   # older than the last KEEP: forgotten
    for acct in ("2", "3", "4"):
        blocks.seen(conn, "dc", (acct, "0001", "d"), "t")
    assert len(blocks._panels) == 3 and ("dc", "1") not in blocks._panels


def test_a_block_of_a_transaction_that_rolled_back_is_not_a_retry(tmp_path: Path) -> None:
    """The panel's resend of a block whose transaction failed must be raised, not ACKed as a retry."""
    async def main() -> None:
        store = Store(tmp_path / "g.db")
        store.open()
        store.add_migrations("alarms", MIGRATIONS)
        blocks = RecentBlocks(lambda: "2000")
        store.on_rollback(blocks.rolled_back)
        try:
            def fails_after(conn: sqlite3.Connection) -> bool:
                seen = blocks.seen(conn, "dc", ("1234", "0007", "d"), "t")
                assert seen is False
                raise sqlite3.OperationalError("disk I/O error")   # a storage error: the whole batch rolls back

            def one_that_raises(conn: sqlite3.Connection) -> bool:
                blocks.seen(conn, "dc", ("1234", "0008", "d"), "t")
                blocks.rolled_back()   # what Lifecycle.record_batch does when its body raises
                raise ValueError("bad signal")

            store.fail_after_s = 0.2
            with pytest.raises(sqlite3.OperationalError):
                await store.write(fails_after)
            with pytest.raises(ValueError):
                await store.write(one_that_raises)
            assert await store.write(lambda c: blocks.seen(c, "dc", ("1234", "0007", "d"), "t")) is False
            assert await store.write(lambda c: blocks.seen(c, "dc", ("1234", "0008", "d"), "t")) is False
            assert await store.write(lambda c: blocks.seen(c, "dc", ("1234", "0007", "d"), "t")) is True
            assert store.query_one("SELECT COUNT(*) FROM alarm_blocks")[0] == 2
        finally:
            store.close()

    asyncio.run(main())


def test_the_old_dedupe_rows_move_over_and_the_prune_keeps_what_is_recent(tmp_path: Path) -> None:
    async def main() -> None:
        store = upgraded_from(   # the schema before issue 20
            tmp_path / "g.db", 3, "INSERT INTO alarm_dedupe(receiver, account, seq, digest, received_at) VALUES(?,?,?,?,?)",
            [("dc", "1234", f"{i:04d}", "d", f"2026-01-01T00:{i:02d}:00Z") for i in range(50, 0, -1)])
        try:
            rows = store.query("SELECT seq, received_at FROM alarm_blocks ORDER BY id")
            assert [r[0] for r in rows] == [f"{i:04d}" for i in range(1, 51)]   # in the order received
            assert store.query_one("SELECT COUNT(*) FROM sqlite_master WHERE name='alarm_dedupe'")[0] == 0
            blocks = RecentBlocks(lambda: "2026-01-01T00:00:00Z")
            assert await store.write(lambda c: blocks.seen(c, "dc", ("1234", "0050", "d"), "t")) is True
            assert await db.prune_dedupe(store, "2026-01-01T00:31:00Z") == 30
            left = [r[0] for r in store.query("SELECT seq FROM alarm_blocks ORDER BY id")]
            assert left == [f"{i:04d}" for i in range(31, 51)]
            assert await db.prune_dedupe(store, "2026-01-01T00:31:00Z") == 0
            assert await db.prune_dedupe(store, "2027") == 20   # all of them older
        finally:
            store.close()

    asyncio.run(main())
