"""The WAL checkpointer (gateway/storecheckpoint.py): checkpoints on its own thread after commits, and closes its
connection when the site is quiet (one SQLite connection's memory less), opening it again on the next commit."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import gateway.storecheckpoint as storecheckpoint
from gateway.store import Store


def wait_for(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_checkpoints_after_commits_and_closes_its_connection_when_idle(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storecheckpoint, "IDLE_CLOSE_S", 0.3)
    monkeypatch.setattr(storecheckpoint, "CHECKPOINT_EVERY_S", 0.05)
    opened: list[object] = []
    closed: list[object] = []
    real_close = storecheckpoint._close

    def close(conn) -> None:
        if conn is not None:
            closed.append(conn)
        real_close(conn)

    monkeypatch.setattr(storecheckpoint, "_close", close)
    store = Store(tmp_path / "c.db")
    store.open()
    try:
        ck = store._checkpointer
        assert ck is not None
        real = ck._connect

        def counting():
            conn = real()
            opened.append(conn)
            return conn

        ck._connect = counting

        async def writes() -> None:
            await store.write(lambda c: c.execute("CREATE TABLE IF NOT EXISTS t(x)"))
            for i in range(5):
                await store.write(lambda c, i=i: c.execute("INSERT INTO t VALUES(?)", (i,)))

        asyncio.run(writes())
        assert wait_for(lambda: ck.checkpoints >= 1)
        assert len(opened) == 1
        # quiet for longer than IDLE_CLOSE_S: the connection is closed
        assert wait_for(lambda: closed == opened, 5)
        before = ck.checkpoints
        asyncio.run(writes())   # the next commit opens a new one and checkpoints again
        assert wait_for(lambda: ck.checkpoints > before)
        assert len(opened) == 2 and closed == opened[:1]
    finally:
        store.close()
    assert closed == opened   # and the store's close closes the second


def test_a_wal_the_writer_never_lets_rest_starts_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits back to back, never a pause: the checkpointer's passes cannot catch up on their own (the writer
    appends while they copy), so without the writer finishing them the WAL grows for as long as the writes go on.
    With it, the WAL starts again from its beginning and stays near what a pass leaves behind."""
    monkeypatch.setattr(storecheckpoint, "CHECKPOINT_EVERY_S", 0.05)
    monkeypatch.setattr(storecheckpoint, "CHECKPOINT_COMMITS", 50)
    monkeypatch.setattr(storecheckpoint, "FINISH_FRAMES", 64)
    store = Store(tmp_path / "c.db")
    store.open()
    wal = Path(f"{tmp_path / 'c.db'}-wal")
    try:
        ck = store._checkpointer
        assert ck is not None

        async def writes(n: int) -> int:
            await store.write(lambda c: c.execute("CREATE TABLE IF NOT EXISTS t(k TEXT PRIMARY KEY, v BLOB)"))
            biggest = 0
            for _i in range(n):
                # a few pages per commit, all over an index (as alarm rows, events and the outbox do)
                await asyncio.gather(*(store.write(lambda c: c.execute(
                    "INSERT INTO t VALUES(hex(randomblob(8)), zeroblob(600))")) for _j in range(8)))
                biggest = max(biggest, wal.stat().st_size)
            return biggest

        biggest = asyncio.run(writes(3000))   # 24,000 rows: without the finish the WAL grows to ~140 MB
        assert ck.finished >= 1
        # bounded by what a pass leaves behind (measured 2 MB), not by how long the writes go on
        assert biggest < 16 << 20, biggest
    finally:
        store.close()
