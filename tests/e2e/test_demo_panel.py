"""The demo panel's own mix is a quiet estate's: an hourly periodic test, a trouble now and then that is
restored within minutes, rarely an intrusion, never a fire by itself; and its queue delivers what the
demo control asks, in order, once the receiver is there."""

from __future__ import annotations

import asyncio
import collections
import itertools
import random

from drivers.cid_codes import describe
from drivers.sim.panel_demo import MIX, ContactIdLink, DemoPanel, timeline

WEEK = 7 * 86400.0


def test_a_week_of_the_mix_is_quiet_and_every_trouble_is_restored() -> None:
    for seed in range(5):
        week = list(itertools.takewhile(lambda p: p.at < WEEK, timeline(MIX, random.Random(seed))))
        assert [p.at for p in week] == sorted(p.at for p in week)
        raised = collections.Counter(p.kind for p in week if not p.restore)
        assert set(raised) == {"test", "fault", "burglary"}, raised        # no fire, smoke, panic by itself
        assert raised["test"] == 168                                        # hourly periodic tests
        assert 30 <= raised["fault"] <= 150 and 3 <= raised["burglary"] <= 40, raised
        for p in week:   # each code means what the mix says it is (the gateway's own table)
            m = describe(p.code, 3 if p.restore else 1)
            assert (p.kind in m.restores) if p.restore else (m.kind == p.kind), (p, m)
        assert describe(602).liveness                                       # periodic tests are liveness, no alarm
        open_: dict[tuple[str, int], float] = {}
        for p in week:
            if p.kind == "test":
                continue
            if p.restore:
                assert p.at - open_.pop((p.kind, p.code)) <= 240.0          # restored within four minutes
            else:
                open_[(p.kind, p.code)] = p.at
        assert all(WEEK - at < 240.0 for at in open_.values())              # only the last may still be open


def test_the_queue_sends_in_order_once_the_receiver_listens() -> None:
    async def main() -> None:
        lines: list[str] = []

        async def receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            lines.extend(line.decode().strip() for line in (await reader.read()).splitlines())
            writer.close()

        server = await asyncio.start_server(receiver, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()                  # nobody listens yet: the panel keeps its events
        panel = DemoPanel("cid", ContactIdLink("127.0.0.1", port, "5678"), {3: "B3 bike store door"},
                          poll_s=3600, mix=())
        panel.retry_s = 0.05
        task = asyncio.create_task(panel.run())
        first = panel.send("burglary", panel.zone_for("burglary"))
        second = panel.send("burglary", 3, restore=True)
        await asyncio.sleep(0.3)
        assert not first.done.done()
        server = await asyncio.start_server(receiver, "127.0.0.1", port)
        assert await asyncio.wait_for(second.done, 10) == "written"
        await asyncio.sleep(0.1)
        task.cancel()
        server.close()
        assert lines == ["5678 18 1130 01 003", "5678 18 3130 01 003"]

    asyncio.run(main())
