"""Store and event log: durable, gap-free seq across restarts, bounded outbox, migrations, backups."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import BIN, make_config
from gateway.events import EventLog
from gateway.store import SchemaTooNew, Store


def open_store(path: Path, **migrations: list[tuple[int, str]]) -> Store:
    store = Store(path)
    store.open(migrations)
    return store


def test_seq_is_gap_free_and_survives_restart(tmp_path: Path) -> None:
    db = tmp_path / "g.db"

    async def burst(n: int) -> list[int]:
        store = open_store(db)
        log = EventLog(store)
        evs = await asyncio.gather(*(log.record("gateway.test", {"i": i}) for i in range(n)))
        store.close()
        return sorted(e.seq for e in evs)

    first = asyncio.run(burst(500))
    second = asyncio.run(burst(500))
    assert first == list(range(1, 501))
    assert second == list(range(501, 1001))


def test_failed_write_does_not_sink_the_batch_or_leave_a_gap(tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store(tmp_path / "g.db")
        log = EventLog(store)

        def bad(conn: sqlite3.Connection, emit):  # type: ignore[no-untyped-def]
            emit("gateway.test", {})
            raise ValueError("nope")

        results = await asyncio.gather(log.record("a.x", {}), log.transact(bad), log.record("a.y", {}),
                                       return_exceptions=True)
        assert isinstance(results[1], ValueError)
        seqs = [r[0] for r in store.query("SELECT seq FROM events ORDER BY seq")]
        assert seqs == [1, 2]
        store.close()

    asyncio.run(main())


def test_outbox_sheds_only_meter_readings_oldest_first(tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store(tmp_path / "g.db")
        log = EventLog(store, max_outbox=100)
        for i in range(60):
            await log.record("meter.reading", {"i": i})
        for i in range(60):
            await log.record("alarm.raised", {"i": i})
        types = [r[0] for r in store.query("SELECT type FROM outbox ORDER BY seq")]
        # one near-full warning was raised at 80 %
        near = store.query("SELECT data FROM events WHERE type='gateway.outbox_near_full'")
        assert len(near) == 1
        assert types.count("alarm.raised") == 60
        assert types.count("gateway.outbox_near_full") == 1
        assert len(types) == 100
        kept_readings = [r[0] for r in store.query("SELECT e.data FROM outbox o JOIN events e USING(seq) WHERE o.type='meter.reading' ORDER BY o.seq")]
        assert kept_readings[0] == '{"i":21}'  # the oldest 21 were shed
        assert log.shed_total == 21
        # the event log itself still holds every reading
        assert store.query_one("SELECT COUNT(*) FROM events WHERE type='meter.reading'")[0] == 60
        # nothing sheddable left: alarms go over the bound rather than being dropped
        for i in range(50):
            await log.record("alarm.raised", {"i": i})
        assert store.query_one("SELECT COUNT(*) FROM outbox WHERE type='alarm.raised'")[0] == 110
        store.close()

    asyncio.run(main())


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    open_store(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE schema_version SET version=99 WHERE area='core'")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNew, match="version 99"):
        open_store(db)


def test_area_migrations_apply_in_order(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    open_store(db, demo=[(1, "CREATE TABLE a(x);")]).close()
    store = open_store(db, demo=[(1, "CREATE TABLE a(x);"), (2, "ALTER TABLE a ADD COLUMN y;")])
    store.write_sync(lambda c: c.execute("INSERT INTO a(x, y) VALUES(1, 2)"))
    assert store.query_one("SELECT version FROM schema_version WHERE area='demo'")[0] == 2
    store.close()


def test_wal_mode_and_integrity(tmp_path: Path) -> None:
    store = open_store(tmp_path / "g.db")
    assert store.query_one("PRAGMA journal_mode")[0] == "wal"
    assert store.query_one("PRAGMA integrity_check")[0] == "ok"
    store.close()


def test_backup_and_restore_commands(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    cfg_path = tmp_path / "gateway.toml"

    async def fill() -> None:
        store = open_store(cfg.db_path)
        log = EventLog(store)
        for i in range(10):
            await log.record("gateway.test", {"i": i})
        store.close()

    asyncio.run(fill())
    res = subprocess.run([str(BIN), "backup", "-c", str(cfg_path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    backup = Path(res.stdout.strip())
    assert backup.is_file()
    # lose the live database, then restore it
    cfg.db_path.unlink()
    res = subprocess.run([str(BIN), "restore", "-c", str(cfg_path), "--from", str(backup)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "no seq files" not in res.stderr  # the seq files found are kept: a rewind is seen at the next start
    assert cfg.db_path.with_name(cfg.db_path.name + ".seq-used").exists()
    conn = sqlite3.connect(cfg.db_path)
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 10
    conn.close()
    for seq_file in cfg.data_path.glob("*.seq-*"):  # an empty data_dir (a new machine): say what is not seen
        seq_file.unlink()
    res = subprocess.run([str(BIN), "restore", "-c", str(cfg_path), "--from", str(backup)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "no seq files" in res.stderr, res.stderr
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 100)
    res = subprocess.run([str(BIN), "restore", "-c", str(cfg_path), "--from", str(garbage)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "not a gateway database" in res.stderr


def test_backup_to_a_folder_the_user_names_leaves_its_mode_alone(tmp_path: Path) -> None:
    """``backup --to DIR/x.db``: the file is 0600, but DIR (a shared 1777 folder like /tmp) keeps its
    mode; only the gateway's own data_dir and its backup folder are made 0700."""
    import os
    import stat

    cfg = make_config(tmp_path)
    store = open_store(cfg.db_path)
    store.close()
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    res = subprocess.run([str(BIN), "backup", "-c", str(tmp_path / "gateway.toml"), "--to", str(shared / "x.db")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE((shared / "x.db").stat().st_mode) == 0o600
    res = subprocess.run([str(BIN), "backup", "-c", str(tmp_path / "gateway.toml")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    own = Path(res.stdout.strip()).parent
    assert stat.S_IMODE(own.stat().st_mode) == 0o700 and stat.S_IMODE(cfg.data_path.stat().st_mode) == 0o700


def test_upgrade_takes_a_backup_before_migrating(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store = open_store(db, demo=[(1, "CREATE TABLE a(x);")])
    store.write_sync(lambda c: c.execute("INSERT INTO a(x) VALUES(42)"))
    store.close()
    store = Store(db)
    store.open({"demo": [(1, "CREATE TABLE a(x);"), (2, "ALTER TABLE a ADD COLUMN y;")]}, backup_dir=tmp_path / "bk")
    store.close()
    backups = list((tmp_path / "bk").glob("pre-migrate-*.db"))
    assert len(backups) == 1
    conn = sqlite3.connect(backups[0])
    assert conn.execute("SELECT version FROM schema_version WHERE area='demo'").fetchone()[0] == 1
    assert conn.execute("SELECT x FROM a").fetchone()[0] == 42
    conn.close()
    # nothing to migrate: no new backup
    store = Store(db)
    store.open({"demo": [(1, "CREATE TABLE a(x);"), (2, "ALTER TABLE a ADD COLUMN y;")]}, backup_dir=tmp_path / "bk")
    store.close()
    assert len(list((tmp_path / "bk").glob("pre-migrate-*.db"))) == 1


def test_outbox_depth_stays_true_after_a_rolled_back_transaction(tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store(tmp_path / "g.db")
        log = EventLog(store)
        await log.record("gateway.test", {})

        def fails(conn: sqlite3.Connection, emit):  # type: ignore[no-untyped-def]
            emit("gateway.test", {})
            emit("gateway.test", {})
            raise sqlite3.OperationalError("database or disk is full")

        with pytest.raises(sqlite3.OperationalError):
            await log.transact(fails)
        assert log.outbox_depth == 1 == store.query_one("SELECT COUNT(*) FROM outbox")[0]
        store.close()

    asyncio.run(main())


def test_backups_keep_the_newest_of_each_kind(tmp_path: Path) -> None:
    from gateway.daemon import Backups

    cfg = make_config(tmp_path, "[store]\nbackup_keep = 2\n")
    store = open_store(cfg.db_path)
    backups = Backups(cfg, store)
    backups.dir.mkdir(parents=True, exist_ok=True)
    for stamp in ("20261101-010000", "20261102-010000", "20261103-010000"):  # left by migrations and upgrades
        (backups.dir / f"pre-migrate-{stamp}.db").write_bytes(b"x")
        (backups.dir / f"pre-upgrade-{stamp}.db").write_bytes(b"x")
    taken = [backups.take(backups.dir / f"gateway-2026111{i}-010000.db") for i in range(3)]
    names = sorted(p.name for p in backups.dir.iterdir())
    assert names == ["gateway-20261111-010000.db", "gateway-20261112-010000.db",
                     "pre-migrate-20261102-010000.db", "pre-migrate-20261103-010000.db",
                     "pre-upgrade-20261102-010000.db", "pre-upgrade-20261103-010000.db"]
    check = sqlite3.connect(taken[-1])
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()
    store.close()


def test_a_full_disk_answers_503_not_500(tmp_path: Path) -> None:
    """Writes refused by the store (disk full) are the server's trouble, not a crash: 503 with Retry-After."""
    import httpx

    from conftest import token_for, tokens_toml
    from gateway.api.app import create_app
    from gateway.daemon import build_context, stop_context

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, tokens_toml()), components=[])
        app = create_app(ctx)
        headers = {"Authorization": f"Bearer {token_for('admin')}"}

        async def full(*a: object, **k: object) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
                real_transact = ctx.events.transact
                ctx.events.transact = full  # type: ignore[method-assign]
                r = await client.post("/api/v1/test-events", json={"count": 1}, headers=headers)
                assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
                assert r.headers["retry-after"] == "30"
                ctx.events.transact = real_transact  # type: ignore[method-assign]
                ctx.audit.record = full  # type: ignore[method-assign]
                # the action's own write carries its audit row: audit.record (a row alone) is not needed
                r = await client.post("/api/v1/test-events", json={"count": 1}, headers=headers)
                assert r.status_code == 202
                # a refusal that wrote nothing gets its row alone; if that fails, it says so
                r = await client.post("/api/v1/test-events", json={"count": 0}, headers=headers)
                assert r.status_code == 503 and "audit row of the refusal" in r.json()["error"]["message"]
                assert (await client.get("/api/v1/health")).status_code == 200  # and it carries on
        finally:
            await stop_context(ctx)

    asyncio.run(main())


def test_a_lock_past_the_busy_timeout_refuses_callers_then_heals_by_itself(tmp_path: Path) -> None:
    """The writer outlives a failed BEGIN IMMEDIATE: callers are refused after fail_after_s with an
    OperationalError, ``trouble`` says why, and the next write after the lock goes commits (no restart)."""
    from gateway.store import StoreUnavailable

    db = tmp_path / "g.db"
    store = Store(db, busy_timeout_s=0.2, fail_after_s=0.5)
    store.open()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            store.write_sync(lambda c: c.execute("INSERT INTO meta VALUES('a', '1')"), timeout=30)
        assert store.trouble is not None and "locked" in store.trouble[0]
        assert store._thread is not None and store._thread.is_alive()
        store.fail_after_s = 60  # from now on a caller's bound outlasts the lock, however loaded the machine
        waiting = store.submit(lambda c: c.execute("INSERT INTO meta VALUES('b', '2')"))
    finally:
        other.execute("COMMIT")
        other.close()
    # a write still within its bound when the lock goes is committed, not lost
    waiting.result(30)
    wait = 0
    while store.trouble is not None and wait < 300:  # the probe heals it with nothing queued
        time.sleep(0.1)
        wait += 1
    assert store.trouble is None
    store.write_sync(lambda c: c.execute("INSERT INTO meta VALUES('c', '3')"))
    keys = {r[0] for r in store.query("SELECT key FROM meta")}
    assert "a" not in keys and {"b", "c"} <= keys  # the refused write was not done behind the caller's back
    store.close()


def test_the_writer_says_how_long_its_attempt_has_run(tmp_path: Path) -> None:
    """The watchdog's view of the writer: an attempt under way has an age (a wedged one grows past the
    busy timeout and the pings stop); an idle writer has none."""
    import threading

    store = open_store(tmp_path / "g.db")
    entered, gate = threading.Event(), threading.Event()

    def stuck(conn: sqlite3.Connection) -> None:
        entered.set()
        gate.wait(30)

    assert store.attempt_age() == 0.0 and store.attempt_started is None
    fut = store.submit(stuck)
    assert entered.wait(30)
    assert store.attempt_started is not None and store.attempt_age() > 0
    gate.set()
    fut.result(30)
    for _ in range(300):
        if store.attempt_started is None:
            break
        time.sleep(0.01)
    assert store.attempt_age() == 0.0
    store.close()


def test_no_exception_ends_the_writer(tmp_path: Path) -> None:
    store = open_store(tmp_path / "g.db")
    boom = {"n": 0}

    def bad_hook(conn: sqlite3.Connection) -> None:
        boom["n"] += 1
        raise RuntimeError("a hook that fails")

    store.on_commit_conn(bad_hook)
    for i in range(3):
        store.write_sync(lambda c, i=i: c.execute("INSERT INTO meta VALUES(?, 'x')", (f"k{i}",)))
    assert boom["n"] == 3 and store.query_one("SELECT COUNT(*) FROM meta WHERE key LIKE 'k%'")[0] == 3
    store.close()


def test_an_action_and_its_audit_row_commit_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request's audit row rides in its action's transaction: a transaction that raises after the action
    stores neither; a normal one stores both (and its audit.recorded event) at once."""
    import httpx

    from conftest import token_for, tokens_toml
    from gateway.api.app import create_app
    from gateway.api.routes import core
    from gateway.daemon import build_context, stop_context

    real_batch = core._test_batch

    def failing_batch(*args: object) -> object:
        inner = real_batch(*args)  # type: ignore[arg-type]

        def batch(conn: sqlite3.Connection, emit):  # type: ignore[no-untyped-def]
            inner(conn, emit)  # the action is done inside the transaction ...
            raise RuntimeError("... and then the transaction fails")

        return batch

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, tokens_toml()), components=[])
        app = create_app(ctx)
        headers = {"Authorization": f"Bearer {token_for('admin')}"}

        def count(type_: str) -> int:
            return ctx.store.query_one("SELECT COUNT(*) FROM events WHERE type=?", (type_,))[0]

        try:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                monkeypatch.setattr(core, "_test_batch", failing_batch)
                r = await client.post("/api/v1/test-events", json={"count": 3}, headers=headers)
                assert r.status_code == 500
                assert count("gateway.test") == 0 and ctx.audit.query() == []
                monkeypatch.setattr(core, "_test_batch", real_batch)
                r = await client.post("/api/v1/test-events", json={"count": 3}, headers=headers)
                assert r.status_code == 202
                assert count("gateway.test") == 3
                rows = ctx.audit.query()
                assert [(a["action"], a["detail"]) for a in rows] == [("POST /api/v1/test-events", {"status": 202})]
                # one transaction: the audit.recorded event directly follows the action's events
                types = [r[0] for r in ctx.store.query("SELECT type FROM events ORDER BY seq")][-4:]
                assert types == ["gateway.test"] * 3 + ["audit.recorded"]
        finally:
            await stop_context(ctx)

    asyncio.run(main())


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the writer's open files")
@pytest.mark.parametrize("temp_store", ["MEMORY", "DEFAULT"])
def test_a_write_changing_many_pages_opens_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             temp_store: str) -> None:
    """Each write runs in a savepoint whose journal keeps the first copy of every page it changes; SQLite
    spills one over 64 KiB to a file it opens and deletes. The writer keeps it in memory (issue 20: an alarm
    batch changes ~80 KiB, and every other commit made a file). DEFAULT shows the test sees the file."""
    import gateway.storewriter as storewriter

    monkeypatch.setattr(storewriter, "WRITER_TEMP_STORE", temp_store)
    store = open_store(tmp_path / "g.db")
    try:
        store.write_sync(lambda conn: conn.executemany(
            "INSERT INTO meta(key, value) VALUES(?, ?)", [(f"k{i}", "x" * 2000) for i in range(100)]))

        def change_them(conn: sqlite3.Connection) -> list[str]:
            conn.execute("UPDATE meta SET value = 'y' || substr(value, 2) WHERE key LIKE 'k%'")   # ~50 pages
            return [p for fd in Path("/proc/self/fd").iterdir() if "etilqs" in (p := _link(fd))]

        temp_files = store.write_sync(change_them)
        assert store.query("SELECT COUNT(*) FROM meta WHERE value LIKE 'y%'")[0][0] == 100
    finally:
        store.close()
    assert temp_files == [] if temp_store == "MEMORY" else temp_files


def _link(fd: Path) -> str:
    try:
        return str(fd.readlink())
    except OSError:   # closed meanwhile (another thread's)
        return ""


def test_shedding_reads_on_from_where_it_stopped_and_starts_over_after_a_rollback(tmp_path: Path) -> None:
    """No type index on the outbox (issue 20): shedding remembers how far it read. An outbox full of alarms is
    not read again from the start for each new event; a rolled-back write makes it start over, so the
    oldest reading is still the one shed."""
    async def main() -> None:
        store = open_store(tmp_path / "g.db")
        log = EventLog(store, max_outbox=10)
        for i in range(12):
            await log.record("alarm.raised", {"i": i})
        assert log.shed_total == 0 and log.bound.shed_from == log.last_seq()   # nothing sheddable up to the last alarm

        def refused(conn: sqlite3.Connection, emit: Any) -> None:
            raise ValueError("refused")                       # rolled back before it read anything

        with pytest.raises(ValueError):
            await log.transact(refused)
        assert log.bound.shed_from == log.last_seq()               # a refused write does not cost a full read
        await log.record("meter.reading", {"i": 0})           # over the bound: the reading itself is shed
        assert log.shed_total == 1 and log.bound.shed_from == log.last_seq()
        store.close()

        store = open_store(tmp_path / "h.db")
        log = EventLog(store, max_outbox=8)
        for i in range(6):
            await log.record("meter.reading", {"i": i})
        while log.shed_total == 0:
            await log.record("alarm.raised", {})             # until the outbox is at its bound

        def readings() -> list[str]:
            return [r[0] for r in store.query("SELECT e.data FROM outbox o JOIN events e USING(seq) "
                                              "WHERE o.type='meter.reading' ORDER BY o.seq")]

        def boom(conn: sqlite3.Connection, emit: Any) -> None:
            emit("alarm.raised", {})                          # sheds the oldest reading ... then rolls back
            raise ValueError("refused")

        before = readings()
        with pytest.raises(ValueError):
            await log.transact(boom)
        assert readings() == before
        await log.record("alarm.raised", {})                  # sheds that same oldest reading again
        kept = readings()
        assert kept == before[1:] and len(before) >= 2
        store.close()

    asyncio.run(main())
