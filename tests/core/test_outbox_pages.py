"""The uplink's pages of the outbox: from memory when caught up, always what the table would say.

``EventLog.pending_wire`` serves the events it dispatched last from memory instead of reading the outbox
(issue 20: one SQL read of fresh pages per round was the uplink's biggest cost on the event loop). These
tests hold it to the table: after any mix of dispatched writes, writes the uplink never heard of, rolled
back writes, shed readings, a reconnect's historical rewrite, delivered rows and a cursor sent back to the
start, every page equals the one the outbox query builds.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.events import EventLog
from gateway.store import Store


def table_page(store: Store, after_seq: int, limit: int) -> list[tuple[int, str, str]]:
    """The page as the outbox table has it (the query the uplink used before the memory)."""
    rows = store.query(
        "SELECT e.seq, e.id, e.ts, e.type, o.historical, e.data "
        "FROM outbox o JOIN events e ON e.seq = o.seq WHERE o.seq > ? ORDER BY o.seq LIMIT ?",
        (after_seq, limit),
    )
    out = []
    for seq, id_, ts, type_, hist, data in rows:
        env = {"id": id_, "seq": seq, "ts": ts, "type": type_, "historical": bool(hist), "data": json.loads(data)}
        out.append((seq, type_, env))
    return out


def as_dicts(rows: list[tuple[int, str, str]]) -> list[tuple[int, str, dict[str, object]]]:
    return [(seq, type_, json.loads(wire)) for seq, type_, wire in rows]


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("record"), st.sampled_from(["alarm.raised", "meter.reading"]), st.integers(1, 4)),
        st.tuples(st.just("unheard"), st.just(""), st.integers(1, 2)),     # committed, never dispatched
        st.tuples(st.just("fail"), st.just(""), st.just(0)),                # emitted, then rolled back
        st.tuples(st.just("page"), st.just(""), st.integers(1, 6)),
        st.tuples(st.just("deliver"), st.just(""), st.just(0)),
        st.tuples(st.just("reconnect"), st.just(""), st.just(0)),           # historical rewrite, cursor to 0
        st.tuples(st.just("offline"), st.just(""), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, max_outbox=st.sampled_from([6, 1000]))
def test_every_page_is_the_tables_page(ops: list[tuple[str, str, int]], max_outbox: int) -> None:
    async def main(folder: Path) -> None:
        store = Store(folder / "g.db")
        store.open({})
        log = EventLog(store, max_outbox=max_outbox)
        log.online = True
        cursor, sent = 0, []
        n = 0
        try:
            for op, type_, k in ops:
                if op == "record":
                    await asyncio.gather(*(log.record(type_, {"i": (n := n + 1), "名": "é"}) for _ in range(k)))
                elif op == "unheard":
                    for _ in range(k):
                        await asyncio.to_thread(log.record_sync, "gateway.test", {"i": (n := n + 1)})
                elif op == "fail":
                    def bad(conn: sqlite3.Connection, emit):  # type: ignore[no-untyped-def]
                        emit("alarm.raised", {"lost": True})
                        raise ValueError("rolled back")
                    await asyncio.gather(log.record("alarm.raised", {"i": (n := n + 1)}), log.transact(bad),
                                         return_exceptions=True)
                elif op == "page":
                    want = table_page(store, cursor, k)
                    got = log.pending_wire(cursor, k)
                    assert as_dicts(got) == want
                    if got:
                        cursor = got[-1][0]
                        sent += [seq for seq, _t, _w in got]
                elif op == "deliver":
                    await log.mark_delivered(sent)
                    sent = []
                elif op == "reconnect":
                    cursor, sent = 0, []
                    await log.mark_backlog_historical()
                    log.online = True
                else:
                    log.online = False
            # at the end, the whole rest in pages: the same as the table, nothing skipped
            while True:
                want = table_page(store, cursor, 3)
                got = log.pending_wire(cursor, 3)
                assert as_dicts(got) == want
                if not got:
                    break
                cursor = got[-1][0]
        finally:
            store.close()

    with TemporaryDirectory() as folder:
        asyncio.run(main(Path(folder)))


def test_a_caught_up_uplink_reads_no_table(tmp_path: Path) -> None:
    """The point of the memory: events just dispatched come without a query; a gap sends it to the table."""
    async def main() -> None:
        store = Store(tmp_path / "g.db")
        store.open({})
        log = EventLog(store)
        log.online = True   # as the uplink sets it while connected
        queries: list[str] = []
        store.reader.set_trace_callback(queries.append)
        try:
            await asyncio.gather(*(log.record("alarm.raised", {"i": i}) for i in range(10)))
            page = log.pending_wire(0, 1000)
            assert [seq for seq, _t, _w in page] == list(range(1, 11))
            assert not [q for q in queries if "outbox" in q]
            await asyncio.to_thread(log.record_sync, "gateway.test", {})   # seq 11: never dispatched
            await log.record("alarm.raised", {"i": 12})                     # seq 12: after a gap
            page = log.pending_wire(10, 1000)
            assert [seq for seq, _t, _w in page] == [11, 12]
            assert [q for q in queries if "outbox" in q]
        finally:
            store.reader.set_trace_callback(None)
            store.close()

    asyncio.run(main())


def test_memory_holds_nothing_while_the_uplink_is_down(tmp_path: Path) -> None:
    """During an outage nobody pages from memory (a reconnect starts from the table): it keeps no events."""
    async def main() -> None:
        store = Store(tmp_path / "g.db")
        store.open({})
        log = EventLog(store)
        try:
            log.online = True
            await log.record("alarm.raised", {"i": 0})
            assert len(log.pages.fresh) == 1
            log.online = False
            await asyncio.gather(*(log.record("alarm.raised", {"i": i}) for i in range(1, 50)))
            assert not log.pages.fresh
            assert [seq for seq, _t, _w in log.pending_wire(0, 1000)] == list(range(1, 51))
        finally:
            store.close()

    asyncio.run(main())
