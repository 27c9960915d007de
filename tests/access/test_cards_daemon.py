"""The duty room's card situations end to end (issues 14, 15): the daemon as a subprocess, a real mosquitto,
two simulated libosdp readers on one bus, the HTTP API as the console and central use it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import GatewayProc, two_osdp_readers_site, wait_until

from drivers.cards import wiegand_encode
from drivers.sim.osdp_reader import OsdpReaderSim

pytestmark = pytest.mark.timeout(150)

LOST = wiegand_encode("H10301", 44, 1)
OTHER = wiegand_encode("H10301", 44, 2)
NEW = wiegand_encode("H10301", 44, 3)
OUTPUT = 1
UNIT = "3-1-0502"


@pytest.fixture
def sim() -> Iterator[OsdpReaderSim]:
    s = OsdpReaderSim([0, 1]).start()
    yield s
    s.stop()


events = GatewayProc.events_of_type


def request(gw: GatewayProc, method: str, path: str, role: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{gw.url}{path}", headers=gw.headers(role), timeout=10, **kw)


def online(gw: GatewayProc) -> bool:
    r = gw.get("/api/v1/doors", role="operator")
    return r.status_code == 200 and all(d["reader_online"] for d in r.json()["items"])


def card_body(card: str, **kw: Any) -> dict[str, Any]:
    return {"card": card, "unit": UNIT, "holder": "Qian Hui", "holder_kind": "resident", "doors": ["building 3"],
            **kw}


def test_the_night_operator_revokes_a_lost_card_and_every_door_refuses_it(
        gateway_factory: Any, mosquitto: Any, mqtt_sub: Any, sim: OsdpReaderSim) -> None:
    gw = gateway_factory(two_osdp_readers_site(sim.url))
    sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/event/#")
    wait_until(lambda: online(gw), 30, what="readers online")
    assert gw.post("/api/v1/cards", role="technician", json=card_body(LOST)).status_code == 201
    # the operator may revoke, not issue; a reason from the list is required ("other" with a note)
    assert gw.post("/api/v1/cards", role="operator", json=card_body(OTHER)).status_code == 403
    assert gw.post(f"/api/v1/cards/{LOST}/revoke", role="operator", json={}).status_code == 422
    assert gw.post(f"/api/v1/cards/{LOST}/revoke", role="operator", json={"reason": "misplaced"}).status_code == 422
    assert gw.post(f"/api/v1/cards/{LOST}/revoke", role="operator", json={"reason": "other"}).status_code == 422
    assert gw.post(f"/api/v1/cards/{LOST}/revoke", role="central", json={"reason": "lost"}).status_code == 403
    r = gw.post(f"/api/v1/cards/{LOST}/revoke", role="operator",
                json={"reason": "lost", "note": "Qian Hui phoned the duty room at 23:40"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["revoke_reason"]) == ("revoked", "lost")
    assert r.json()["revoke_note"] == "Qian Hui phoned the duty room at 23:40"  # staff see it over HTTP

    # at once, at every door: denied and recorded, no relay
    relays = {a: len([c for c in sim.commands(a) if c["command"] == OUTPUT]) for a in (0, 1)}
    for address, door in ((0, "b3-u1"), (1, "b3-main")):
        sim.swipe(LOST, address)
        wait_until(lambda d=door: any(e["data"]["door"] == d and e["data"]["card"] == LOST
                                      and e["data"]["reason"] == "revoked" for e in events(gw, "access.denied")),
                   15, what=f"denied at {door}")
    assert {a: len([c for c in sim.commands(a) if c["command"] == OUTPUT]) for a in (0, 1)} == relays
    audit = gw.get("/api/v1/audit?limit=1000", role="admin").json()["items"]
    revoke = [a for a in audit if a["action"] == "card.revoke"]
    assert revoke and revoke[0]["role"] == "operator" and revoke[0]["detail"] == {"reason": "lost", "note_given": True}

    # central reads the register (it reconciles its own against it)
    r = gw.get("/api/v1/cards", role="central")
    assert r.status_code == 200 and [c["card"] for c in r.json()["items"]] == [LOST]
    r = gw.get(f"/api/v1/cards/{LOST}", role="central")
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    assert gw.get(f"/api/v1/cards/{NEW}", role="operator").status_code == 404
    assert gw.get("/api/v1/cards/not-a-card", role="operator").status_code == 422
    assert gw.get(f"/api/v1/cards/{LOST}/verification", role="central").status_code == 403

    # the replacement is issued the next morning: flagged, and charged as a replacement
    r = gw.post("/api/v1/cards", role="technician", json=card_body(NEW, replaces=LOST))
    assert r.status_code == 201 and r.json()["replaces"] == LOST, r.text
    _t, fee = sub.wait_for(lambda t, p: t.endswith("/event/card.fee_due"), 15)
    assert fee["data"] == {"unit": UNIT, "card": NEW, "cards_in_unit": 1, "free_cards": 3, "occupants": None,
                           "why": "replacement_lost", "replaces": LOST}
    _t, rev = sub.wait_for(lambda t, p: t.endswith("/event/card.revoked"), 15)
    assert rev["data"] == {"card": LOST, "reason": "lost"}
    payloads = str([p for _t, p in sub.snapshot()])
    assert "Qian" not in payloads and "23:40" not in payloads  # neither the holder nor the note leaves
    assert "Qian" not in gw.log.read_text()


def test_technician_changes_scope_cancels_enrolment_and_central_gets_per_card_results(
        gateway_factory: Any, mosquitto: Any, mqtt_sub: Any, mqtt_pub: Any, sim: OsdpReaderSim) -> None:
    gw = gateway_factory(two_osdp_readers_site(sim.url))
    results = mqtt_sub(mosquitto.port, f"{gw.topic_root}/cmd-result")
    wait_until(lambda: online(gw), 30, what="readers online")

    def cmd(name: str, cid: str, args: dict[str, Any]) -> dict[str, Any]:
        mqtt_pub(mosquitto.port, f"{gw.topic_root}/cmd/{name}", {"id": cid, "args": args})
        return results.wait_for(lambda t, p: p.get("id") == cid, 20)[1]

    # a card must open a door; its scope is corrected in place (PATCH), audited, and the door obeys at once
    assert gw.post("/api/v1/cards", role="technician", json=card_body(OTHER, doors=[])).json()["error"]["code"] \
        == "empty_scope"
    assert gw.post("/api/v1/cards", role="technician", json=card_body(OTHER, doors=["b3-u1"])).status_code == 201
    sim.swipe(OTHER, 1)
    wait_until(lambda: any(e["data"]["card"] == OTHER and e["data"]["reason"] == "not_permitted"
                           for e in events(gw, "access.denied")), 15, what="not permitted at the main gate")
    assert request(gw, "PATCH", f"/api/v1/cards/{OTHER}", "operator", json={"doors": ["*"]}).status_code == 403
    bad = request(gw, "PATCH", f"/api/v1/cards/{OTHER}", "technician", json={"doors": []})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "empty_scope"
    r = request(gw, "PATCH", f"/api/v1/cards/{OTHER}", "technician", json={"doors": ["b3-u1", "b3-main"]})
    assert r.status_code == 200 and r.json()["doors"] == ["b3-u1", "b3-main"], r.text
    n = len([c for c in sim.commands(1) if c["command"] == OUTPUT])
    sim.swipe(OTHER, 1)
    wait_until(lambda: len([c for c in sim.commands(1) if c["command"] == OUTPUT]) > n, 15, what="relay at main")
    assert any(e["data"]["card"] == OTHER for e in events(gw, "card.updated"))
    # worker cards: the rule's name answers a schedule outside working hours
    worker = card_body(NEW, unit="3-1-0101", holder_kind="worker", doors=[],
                       schedule=[{"days": [6, 7], "from": "08:00", "to": "18:00"}])
    r = gw.post("/api/v1/cards", role="technician", json=worker)
    assert r.status_code == 422 and r.json()["error"]["code"] == "worker_hours"

    # a pending enrolment is cancelled (DELETE, or POST .../cancel): audited; the door takes no card then
    r = gw.post("/api/v1/enrolments", role="technician",
                json={"door": "b3-main", "unit": UNIT, "holder_kind": "family", "doors": ["b3-main"]})
    enrol = r.json()["id"]
    assert request(gw, "DELETE", f"/api/v1/enrolments/{enrol}", "operator").status_code == 403
    r = request(gw, "DELETE", f"/api/v1/enrolments/{enrol}", "technician")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert gw.post(f"/api/v1/enrolments/{enrol}/cancel", role="technician").json()["error"]["code"] == \
        "enrolment_not_pending"
    sim.swipe(NEW, 1)
    wait_until(lambda: any(e["data"]["card"] == NEW and e["data"]["reason"] == "unknown"
                           for e in events(gw, "access.denied")), 15, what="unknown after cancel")
    assert not any(e["data"]["card"] == NEW for e in events(gw, "card.issued"))
    audit = gw.get("/api/v1/audit?limit=1000", role="admin").json()["items"]
    assert any(a["action"] == "enrolment.cancel" and a["target"] == "b3-main" for a in audit)
    assert any(a["action"] == "card.update" and a["target"] == OTHER for a in audit)

    # central: an upsert over the card revoked here is answered per card, and the card stays as it was
    assert gw.post(f"/api/v1/cards/{OTHER}/revoke", role="operator", json={"reason": "stolen"}).status_code == 200
    upsert = {"op": "upsert", "card": {"card": OTHER, "unit": UNIT, "holder": "", "holder_kind": "tenant",
                                        "doors": ["b3-u1"]}}
    fresh = {"op": "upsert", "card": {"card": LOST, "unit": UNIT, "holder_kind": "resident", "doors": ["b3-u1"]}}
    r = cmd("cards.apply", "k1", {"base_rev": 0, "rev": 1, "changes": [upsert, fresh],
                                  "units": [{"unit": UNIT, "occupants": 1}]})
    assert r["ok"], r
    assert r["result"]["results"] == [
        {"card": OTHER, "op": "upsert", "result": "kept_revoked", "reason": "stolen",
         "message": "revoked at this gateway: a revoked card is never revived nor rewritten"},
        {"card": LOST, "op": "upsert", "result": "applied"}]
    kept = gw.get(f"/api/v1/cards/{OTHER}", role="central").json()
    assert (kept["status"], kept["holder"], kept["holder_kind"], kept["doors"]) == \
        ("revoked", "Qian Hui", "resident", ["b3-u1", "b3-main"])
    # one occupant registered (with the delta): the unit's second usable card is charged
    r = gw.post("/api/v1/cards", role="technician", json=card_body(NEW))
    assert r.status_code == 201
    wait_until(lambda: [e for e in events(gw, "card.fee_due") if e["data"]["card"] == NEW], 15, what="fee due")
    fee = [e for e in events(gw, "card.fee_due") if e["data"]["card"] == NEW][0]["data"]
    assert (fee["why"], fee["free_cards"], fee["occupants"], fee["cards_in_unit"]) == ("beyond_free", 1, 1, 2)
