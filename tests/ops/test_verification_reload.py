"""A technician's verification keeps its last refusal: a page reloaded (or a gateway restarted) still shows which
door refused the card and why, until that door is verified -- the daemon as a subprocess, a simulated libosdp
reader on the bus."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from conftest import GatewayProc, two_osdp_readers_site, wait_until

from drivers.cards import wiegand_encode
from drivers.sim.osdp_reader import OsdpReaderSim

pytestmark = pytest.mark.timeout(150)

CARD = wiegand_encode("H10301", 51, 7)


@pytest.fixture
def sim() -> Iterator[OsdpReaderSim]:
    s = OsdpReaderSim([0, 1]).start()
    yield s
    s.stop()


def online(gw: GatewayProc) -> bool:
    r = gw.get("/api/v1/doors", role="operator")
    return r.status_code == 200 and all(d["reader_online"] for d in r.json()["items"])


def verification(gw: GatewayProc) -> dict[str, Any]:
    r = gw.get(f"/api/v1/cards/{CARD}/verification", role="technician")
    assert r.status_code == 200, r.text
    return r.json()


def test_the_last_refusal_survives_a_reload_and_a_restart(gateway_factory: Any, sim: OsdpReaderSim) -> None:
    gw = gateway_factory(two_osdp_readers_site(sim.url))
    wait_until(lambda: online(gw), 30, what="readers online")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    r = gw.post("/api/v1/cards", role="technician", json={
        "card": CARD, "unit": "3-1-0601", "holder": "x", "holder_kind": "resident", "doors": ["building 3"],
        "valid_from": tomorrow})
    assert r.status_code == 201, r.text
    sim.swipe(CARD, 0)   # b3-u1: not valid yet
    wait_until(lambda: any(d["refused"] for d in verification(gw)["doors"]), 15, what="the refusal kept")
    v = verification(gw)   # what a reloaded page asks
    doors = {d["door"]: d for d in v["doors"]}
    assert doors["b3-u1"]["refused"]["reason"] == "not_yet_valid" and not doors["b3-u1"]["verified"]
    assert doors["b3-main"]["refused"] is None
    assert (v["last"]["door"], v["last"]["ok"], v["last"]["reason"]) == ("b3-u1", False, "not_yet_valid")

    gw.stop()
    gw.start()
    wait_until(lambda: online(gw), 30, what="readers online after the restart")
    assert verification(gw)["last"] == v["last"]

    # valid now: the next swipe verifies that door, and its refusal is gone
    r = httpx.patch(f"{gw.url}/api/v1/cards/{CARD}", headers=gw.headers("technician"),
                    json={"valid_from": None}, timeout=10)
    assert r.status_code == 200, r.text
    sim.swipe(CARD, 0)
    wait_until(lambda: {d["door"]: d["verified"] for d in verification(gw)["doors"]}["b3-u1"], 15,
               what="b3-u1 verified")
    v = verification(gw)
    doors = {d["door"]: d for d in v["doors"]}
    assert doors["b3-u1"]["refused"] is None
    assert (v["last"]["door"], v["last"]["ok"]) == ("b3-u1", True)
