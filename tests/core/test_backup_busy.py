"""The nightly backup finishes while the writer keeps committing (a copy in page steps restarted at every
commit of another connection and never finished on a busy site), and it never holds the writer."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from gateway.store import Store


def test_backup_completes_while_commits_go_on(tmp_path: Path) -> None:
    async def main() -> None:
        store = Store(tmp_path / "g.db")
        store.open()
        await store.write(lambda c: c.execute("CREATE TABLE IF NOT EXISTS filler(id INTEGER PRIMARY KEY, v TEXT)"))
        await store.write(lambda c: c.executemany("INSERT INTO filler(v) VALUES(?)",
                                                   (("x" * 500,) for _ in range(40_000))))
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(None, store.backup_to, tmp_path / "b" / "g.db")
        commits = 0
        for _ in range(20_000):  # bounded: commit one row at a time until the backup is done
            if job.done():
                break
            await store.write(lambda c: c.execute("INSERT INTO filler(v) VALUES('y')"))
            commits += 1
        out = await asyncio.wait_for(job, 120)
        assert commits > 0  # the writer went on during the copy
        conn = sqlite3.connect(out)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM filler").fetchone()[0] >= 40_000
        conn.close()
        store.close()

    asyncio.run(main())
