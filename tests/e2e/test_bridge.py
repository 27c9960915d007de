"""The bridge path: gateways -> edge mosquitto -> bridge -> central mosquitto -> central.

A few gateways (the real Uplink over real stores, as in bench/bench_sites.py) send through
an edge broker bridged to a central broker; the central broker is stopped mid-burst and
started again. Central must see every event of every gateway exactly in seq order terms:
no gap, and commands must come back through the bridge.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from conftest import ROOT, Mosquitto, Subscriber, wait_until

sys.path.insert(0, str(ROOT / "bench"))
from bench_sites import SimGateway, edge_bridge_conf, wait_for  # noqa: E402

pytestmark = pytest.mark.timeout(120)

GATEWAYS = 3
PER_PHASE = 150


def seqs_by_gateway(sub: Subscriber) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for topic, payload in sub.snapshot():
        if "/event/gateway.test" in topic:
            out.setdefault(topic.rsplit("/event/", 1)[0], set()).add(int(payload["seq"]))
    return out


def test_bridge_delivers_everything_across_a_central_outage(tmp_path: Path) -> None:
    (tmp_path / "central").mkdir()
    (tmp_path / "edge").mkdir()
    central = Mosquitto(tmp_path / "central").start()
    edge = Mosquitto(tmp_path / "edge", extra_conf=edge_bridge_conf(central.port, "edge-test")).start()
    office = Subscriber(central.port, "estate/+/+/#")
    try:
        asyncio.run(_scenario(central, edge, office, tmp_path / "data"))
    finally:
        office.close()
        edge.stop()
        central.stop()


async def _scenario(central: Mosquitto, edge: Mosquitto, office: Subscriber, data: Path) -> None:
    gws = [SimGateway(i, edge.port, data, site="bridge-site") for i in range(GATEWAYS)]
    try:
        for gw in gws:
            await gw.start()
        await wait_for(lambda: all(g.connected for g in gws), 30, "gateways connected to the edge")
        # the bridge must be up before the first phase, or phase one is an outage test too
        await asyncio.to_thread(wait_until, lambda: sum(t.endswith("/status") for t, _ in office.snapshot())
                                >= GATEWAYS, 20, 0.05, "status of every gateway at central")

        await asyncio.gather(*(g.record(PER_PHASE) for g in gws))
        await asyncio.to_thread(wait_until, lambda: sum(map(len, seqs_by_gateway(office).values()))
                                >= GATEWAYS * PER_PHASE // 2, 30, 0.05, "first events at central")
        central.stop()  # the central broker goes away; gateways keep talking to their edge
        for _ in range(5):
            await asyncio.gather(*(g.record(PER_PHASE // 5) for g in gws))
            await asyncio.sleep(0.1)
        # gateways got their PUBACKs from the edge: their outboxes empty while central is down
        await wait_for(lambda: all(g.ctx.events.outbox_depth == 0 for g in gws), 30, "outboxes drained to the edge")
        central.start()
        await asyncio.gather(*(g.record(PER_PHASE) for g in gws))

        total = 3 * PER_PHASE
        await asyncio.to_thread(wait_until, lambda: all(len(s) == total for s in seqs_by_gateway(office).values())
                                and len(seqs_by_gateway(office)) == GATEWAYS, 60, 0.1, "every event at central")
        for root, seqs in seqs_by_gateway(office).items():
            assert seqs == set(range(1, total + 1)), f"{root}: missing {sorted(set(range(1, total + 1)) - seqs)[:10]}"

        # commands come back in through the bridge, and their results go out again
        from conftest import mqtt_pub

        await asyncio.to_thread(mqtt_pub, central.port, f"{gws[0].root}/cmd/ping", {"id": "via-bridge-1", "args": {}})
        _, result = await asyncio.to_thread(office.wait_for, lambda t, p: t == f"{gws[0].root}/cmd-result"
                                            and isinstance(p, dict) and p.get("id") == "via-bridge-1", 20)
        assert result["ok"] is False and result["error"]["code"] == "unknown_command"  # no ping without the daemon
    finally:
        for gw in gws:
            await gw.stop()
