"""Door access end to end: the daemon as a subprocess, a real mosquitto, a simulated libosdp reader."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import GatewayProc, two_osdp_readers_site, wait_until

from drivers.cards import wiegand_encode
from drivers.sim.osdp_reader import OsdpReaderSim

pytestmark = pytest.mark.timeout(150)

CARD_A = wiegand_encode("H10301", 7, 100)
CARD_B = wiegand_encode("H10301", 7, 101)
CARD_C = wiegand_encode("H10306", 300, 5)
OUTPUT = 1


@pytest.fixture
def sim() -> Iterator[OsdpReaderSim]:
    s = OsdpReaderSim([0, 1]).start()
    yield s
    s.stop()


def site(sim: OsdpReaderSim) -> str:
    return two_osdp_readers_site(sim.url, output=0)


events = GatewayProc.events_of_type  # events(gw, "door.unlocked")


def readers_online(gw: Any) -> bool:
    r = gw.get("/api/v1/doors", role="operator")
    return r.status_code == 200 and all(d["reader_online"] for d in r.json()["items"])


def card_body(card: str, **kw: Any) -> dict[str, Any]:
    return {"card": card, "unit": "3-1-0201", "holder": "Zhang Wei", "holder_kind": "resident",
            "doors": ["building 3"], **kw}


def test_http_cards_enrolment_verification_doors(gateway_factory: Any, mosquitto: Any, mqtt_sub: Any,
                                                 sim: OsdpReaderSim) -> None:
    gw = gateway_factory(site(sim))
    sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/event/#")
    wait_until(lambda: readers_online(gw), 30, what="readers online")

    # roles
    assert gw.get("/api/v1/cards", role="central").status_code == 200  # central reconciles its register (issue 15)
    assert gw.post("/api/v1/cards", role="operator", json=card_body(CARD_A)).status_code == 403
    assert gw.post("/api/v1/cards", role="technician", json=card_body(CARD_A), headers={"Authorization": "Bearer nope"}).status_code == 401
    # issue, duplicate, bad input
    r = gw.post("/api/v1/cards", role="technician", json=card_body(CARD_A))
    assert r.status_code == 201, r.text
    assert r.json()["facility"] == 7 and r.json()["number"] == 100
    assert gw.post("/api/v1/cards", role="technician", json=card_body(CARD_A)).status_code == 409
    assert gw.post("/api/v1/cards", role="technician", json=card_body("26:zz")).status_code == 422
    assert gw.post("/api/v1/cards", role="technician", json=card_body(CARD_B, doors=["nowhere"])).status_code == 422
    assert gw.post("/api/v1/cards", role="technician", json={"card": CARD_B}).status_code == 422
    r = gw.get("/api/v1/cards?unit=3-1-0201", role="operator")
    assert [c["card"] for c in r.json()["items"]] == [CARD_A]

    # enrolment by swipe at the main gate, then verification at each door of the scope
    r = gw.post("/api/v1/enrolments", role="technician",
                json={"door": "b3-main", "unit": "3-1-0201", "holder": "Zhang Min", "holder_kind": "family",
                      "doors": ["b3-main", "b3-u1"]})
    assert r.status_code == 201, r.text
    enrol = r.json()["id"]
    assert gw.post("/api/v1/enrolments", role="technician", json={"door": "b3-main", "unit": "3-1-0201",
                   "holder_kind": "family", "doors": []}).status_code == 409
    sim.swipe(CARD_C, 1)
    wait_until(lambda: gw.get(f"/api/v1/enrolments/{enrol}", role="technician").json()["state"] == "done", 15,
               what="enrolment done")
    ver = gw.get(f"/api/v1/cards/{CARD_C}/verification", role="technician").json()
    assert {d["door"]: d["verified"] for d in ver["doors"]} == {"b3-main": True, "b3-u1": False}
    sim.swipe(CARD_C, 0)
    wait_until(lambda: gw.get(f"/api/v1/cards/{CARD_C}/verification", role="technician").json()["complete"], 15,
               what="verification complete")
    assert any(e["data"] == {"card": CARD_C, "door": "b3-u1", "ok": True} for e in events(gw, "card.verified"))

    # revoke: the very next swipe is denied
    r = gw.post(f"/api/v1/cards/{CARD_C}/revoke", role="technician", json={"reason": "lost"})
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    sim.swipe(CARD_C, 0)
    wait_until(lambda: any(e["data"]["card"] == CARD_C and e["data"]["reason"] == "revoked"
                           for e in events(gw, "access.denied")), 15, what="denied revoked")
    assert gw.post("/api/v1/cards/26:0000000/revoke", role="technician", json={"reason": "lost"}).status_code == 422
    assert gw.post(f"/api/v1/cards/{CARD_B}/revoke", role="technician", json={"reason": "lost"}).status_code == 404

    # doors and operator unlock (audited)
    doors = gw.get("/api/v1/doors", role="operator").json()["items"]
    assert {d["id"] for d in doors} == {"b3-u1", "b3-main"}
    n = len([c for c in sim.commands(1) if c["command"] == OUTPUT])
    r = gw.post("/api/v1/doors/b3-main/unlock", role="operator", json={"seconds": 3})
    assert r.status_code == 200, r.text
    wait_until(lambda: len([c for c in sim.commands(1) if c["command"] == OUTPUT]) > n, 10, what="relay")
    assert gw.post("/api/v1/doors/nope/unlock", role="operator", json={}).status_code == 404
    assert gw.post("/api/v1/doors/b3-main/unlock", role="technician", json={}).status_code == 403
    audit = gw.get("/api/v1/audit?limit=1000", role="admin").json()
    rows = audit["items"] if isinstance(audit, dict) else audit
    assert any(a["action"] == "door.unlock" and a["target"] == "b3-main" for a in rows)
    assert any(a["action"] == "card.revoke" for a in rows)

    # MQTT events: card ids and units, never holder names
    sub.wait_for(lambda t, p: t.endswith("/event/card.revoked") and p["data"]["card"] == CARD_C, 15)
    sub.wait_for(lambda t, p: t.endswith("/event/door.unlocked") and p["data"]["reason"] == "operator", 15)
    payloads = str([p for _t, p in sub.snapshot()])
    assert "Zhang" not in payloads
    assert "Zhang" not in gw.log.read_text()


def test_mqtt_sync_apply_gap_snapshot_and_unlock(gateway_factory: Any, mosquitto: Any, mqtt_sub: Any,
                                                 mqtt_pub: Any, sim: OsdpReaderSim) -> None:
    gw = gateway_factory(site(sim))
    results = mqtt_sub(mosquitto.port, f"{gw.topic_root}/cmd-result")
    wait_until(lambda: readers_online(gw), 30, what="readers online")

    def cmd(name: str, cid: str, args: dict[str, Any]) -> dict[str, Any]:
        mqtt_pub(mosquitto.port, f"{gw.topic_root}/cmd/{name}", {"id": cid, "args": args})
        return results.wait_for(lambda t, p: p.get("id") == cid, 20)[1]

    upsert = {"op": "upsert", "card": {"card": CARD_A, "unit": "3-1-0201", "holder": "H", "holder_kind": "tenant",
                                        "doors": ["b3-u1", "other-gateway-door"]}}
    r = cmd("cards.apply", "a1", {"base_rev": 0, "rev": 1, "changes": [upsert]})
    assert r["ok"] and r["result"]["applied_rev"] == 1
    r = cmd("cards.apply", "a2", {"base_rev": 5, "rev": 6, "changes": []})
    assert not r["ok"] and r["error"]["code"] == "rev_gap" and r["error"]["have_rev"] == 1
    r = cmd("cards.apply", "a3", {"base_rev": 1, "rev": 2, "changes": [{"op": "revoke", "card": CARD_A, "reason": "moved out"}]})
    assert r["ok"]
    # revocation wins: a later upsert does not revive it
    r = cmd("cards.apply", "a4", {"base_rev": 2, "rev": 3, "changes": [upsert]})
    assert r["ok"]
    assert gw.get("/api/v1/cards", role="technician").json()["items"][0]["status"] == "revoked"
    bad = cmd("cards.apply", "a5", {"base_rev": 3, "rev": 4, "changes": [{"op": "upsert", "card": {"card": "nope"}}]})
    assert not bad["ok"]

    # a locally issued card survives a snapshot that does not know it yet
    assert gw.post("/api/v1/cards", role="technician", json=card_body(CARD_C)).status_code == 201
    snap = [{"card": wiegand_encode("H10301", 9, i), "unit": f"3-1-{i:04d}", "holder_kind": "resident",
             "doors": ["building:3"]} for i in range(500)]
    r = cmd("cards.snapshot", "s1", {"rev": 10, "cards": snap})
    assert r["ok"] and r["result"] == {"applied_rev": 10, "count": 500, "results": []}
    cards = {c["card"]: c["status"] for c in gw.get("/api/v1/cards?limit=5000", role="technician").json()["items"]}
    assert len(cards) == 502 and cards[CARD_A] == "revoked" and cards[CARD_C] == "active"
    r = cmd("cards.apply", "a6", {"base_rev": 10, "rev": 11, "changes": []})
    assert r["ok"] and r["result"]["applied_rev"] == 11
    # a repeated command id is answered from the store
    assert cmd("cards.apply", "a6", {"base_rev": 10, "rev": 11, "changes": []}) == r

    sim.swipe(snap[3]["card"], 0)
    wait_until(lambda: any(e["data"]["card"] == snap[3]["card"] for e in events(gw, "access.granted")), 15,
               what="snapshot card granted")
    r = cmd("door.unlock", "u1", {"door": "b3-u1", "seconds": 2})
    assert r["ok"] and r["result"]["door"] == "b3-u1"
    assert not cmd("door.unlock", "u2", {"door": "nope"})["ok"]


def test_decisions_with_broker_down_arrive_later_as_history(gateway_factory: Any, mosquitto: Any, mqtt_sub: Any,
                                                            sim: OsdpReaderSim) -> None:
    gw = gateway_factory(site(sim))
    sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/event/#")
    wait_until(lambda: readers_online(gw), 30, what="readers online")
    assert gw.post("/api/v1/cards", role="technician", json=card_body(CARD_A)).status_code == 201
    wait_until(lambda: gw.health().get("uplink", {}).get("connected", True) is not False, 10, what="uplink")
    mosquitto.stop()
    n = len([c for c in sim.commands(0) if c["command"] == OUTPUT])
    sim.swipe(CARD_A, 0)
    wait_until(lambda: len([c for c in sim.commands(0) if c["command"] == OUTPUT]) > n, 15,
               what="relay with the broker down")
    sim.swipe(CARD_B, 0)
    wait_until(lambda: events(gw, "access.denied"), 15, what="denied recorded")
    mosquitto.start()
    _t, granted = sub.wait_for(lambda t, p: t.endswith("/access.granted"), 30)
    _t, denied = sub.wait_for(lambda t, p: t.endswith("/access.denied"), 30)
    assert granted["historical"] is True and denied["historical"] is True
    assert denied["data"]["reason"] == "unknown"
