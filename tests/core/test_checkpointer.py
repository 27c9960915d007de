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
