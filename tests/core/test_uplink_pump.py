"""The uplink's pump: a short page at most every ``PAGE_EVERY_S`` while events stream in, the first at once.

A stand-in client records the pages the pump hands it (the wire itself is the e2e tests'); the interval is
raised to half a second so what is asserted is the pacing, with margins no slow machine eats: the first event
after a quiet spell goes out well before the interval, the next page never before it, and what was recorded
meanwhile goes together in that page, in order (issue 20: a page every 2 ms was a fifth of a DC-09 round).
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

import gateway.uplink as uplink_mod
from conftest import make_config
from gateway.commands import CommandRouter
from gateway.events import EventLog, utc_now
from gateway.metrics import Metrics
from gateway.store import Store
from gateway.uplink import Uplink

INTERVAL = 0.5


class PageRecorder:
    """Stands in for the paho client: keeps each page (when, which seqs) and answers with packet ids."""

    def __init__(self) -> None:
        self.pages: list[tuple[float, list[int]]] = []
        self._mids = itertools.count(1)

    def publish_rows(self, rows: list[tuple[int, str, str]]) -> list[int]:
        self.pages.append((asyncio.get_running_loop().time(), [seq for seq, _t, _w in rows]))
        return [next(self._mids) for _ in rows]


def test_a_stream_goes_in_paced_pages_and_the_first_event_at_once(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uplink_mod, "PAGE_EVERY_S", INTERVAL)

    async def main() -> None:
        store = Store(tmp_path / "g.db")
        store.open({})
        events = EventLog(store)
        metrics = Metrics()
        up = Uplink(make_config(tmp_path), events, CommandRouter(store, utc_now, metrics), metrics,
                    boot_id="b", version="v")
        client = PageRecorder()
        up._client = client  # type: ignore[assignment]
        up.state.connected = True
        up._link_up.set()
        pump = asyncio.get_running_loop().create_task(up._pump())
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(0.05)   # the pump has read the empty outbox and waits for the doorbell
            t0 = loop.time()
            first = await events.record("gateway.test", {"i": 0})
            await asyncio.sleep(0.05)
            assert client.pages == [(client.pages[0][0], [first.seq])]
            assert client.pages[0][0] - t0 < INTERVAL / 2          # at once, not after the interval
            stream = [await events.record("gateway.test", {"i": i}) for i in range(1, 6)]   # right behind it
            while len(client.pages) < 2:
                await asyncio.sleep(0.02)
            second_at, second = client.pages[1]
            assert second == [e.seq for e in stream]               # one page, in order
            assert second_at - client.pages[0][0] >= INTERVAL * 0.9  # not before the interval
            await asyncio.sleep(INTERVAL * 1.5)                     # a quiet spell
            t1 = loop.time()
            last = await events.record("gateway.test", {"i": 6})
            while len(client.pages) < 3:
                await asyncio.sleep(0.01)
            assert client.pages[2][1] == [last.seq] and client.pages[2][0] - t1 < INTERVAL / 2
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            store.close()

    asyncio.run(main())
