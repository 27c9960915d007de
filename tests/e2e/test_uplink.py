"""The uplink end to end: a real mosquitto, the daemon as a subprocess, a subscriber as central."""

from __future__ import annotations

import sqlite3

import httpx

from conftest import mqtt_pub, wait_until


def events_of(sub, type_: str = "gateway.test") -> list[dict]:  # type: ignore[no-untyped-def]
    return [p for t, p in sub.snapshot() if t.endswith(f"/event/{type_}")]


def seqs_gap_free(sub, first: int) -> bool:  # type: ignore[no-untyped-def]
    """Every event from ``first`` on (any type: audit rows sit between the test events) arrived at least once."""
    seqs = {p["seq"] for t, p in sub.snapshot() if "/event/" in t and p["seq"] >= first}
    return seqs == set(range(first, max(seqs) + 1))


def test_status_online_retained_and_offline_on_stop(gateway_factory, mosquitto, mqtt_sub) -> None:  # type: ignore[no-untyped-def]
    gw = gateway_factory()
    sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/status")
    _, online = sub.wait_for(lambda t, p: p.get("state") == "online")
    assert online["boot_id"] and online["version"]
    gw.stop()
    sub.wait_for(lambda t, p: p.get("state") == "offline")
    late = mqtt_sub(mosquitto.port, f"{gw.topic_root}/status")  # retained: a late subscriber sees it
    late.wait_for(lambda t, p: p.get("state") == "offline")


def test_will_says_offline_after_kill(gateway_factory, mosquitto, mqtt_sub) -> None:  # type: ignore[no-untyped-def]
    gw = gateway_factory(mqtt_extra="keepalive_s = 5\n")
    sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/status")
    sub.wait_for(lambda t, p: p.get("state") == "online")
    gw.kill()  # the broker notices the dead socket and publishes the will at once
    sub.wait_for(lambda t, p: p.get("state") == "offline", timeout=20)


def test_broker_outage_loses_nothing_and_marks_history(gateway_factory, mosquitto, mqtt_sub) -> None:  # type: ignore[no-untyped-def]
    gw = gateway_factory()
    sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/event/#")
    wait_until(lambda: gw.health()["uplink"]["connected"], 10, what="uplink")
    assert gw.post("/api/v1/test-events", json={"count": 200}).status_code == 202
    wait_until(lambda: len(events_of(sub)) >= 200, 20, what="first 200")
    mosquitto.stop()
    wait_until(lambda: not gw.health()["uplink"]["connected"], 20, what="uplink down")
    assert gw.post("/api/v1/test-events", json={"count": 300}).status_code == 202
    wait_until(lambda: gw.health()["outbox"]["depth"] >= 300, 20, what="outbox filling")
    mosquitto.start()
    wait_until(lambda: len({p["seq"] for p in events_of(sub)}) >= 500, 60, what="all 500 after the outage")
    got = events_of(sub)
    seqs = [p["seq"] for p in got]
    wait_until(lambda: seqs_gap_free(sub, min(seqs)), 10, what="no gap in seq")
    first_pass = [p for p in got if p["data"]["of"] == 200]
    assert not any(p["historical"] for p in first_pass)
    during = {p["seq"]: p for p in got if p["data"]["of"] == 300}
    assert len(during) == 300 and all(p["historical"] for p in during.values())
    # in order: each (re)delivery run is ascending
    dedup = []
    for s in seqs:
        if s not in dedup:
            dedup.append(s)
    assert dedup == sorted(dedup)
    wait_until(lambda: gw.health()["outbox"]["depth"] == 0, 20, what="outbox drained")


def test_a_full_window_refills_on_its_pubacks(gateway_factory, mosquitto, mqtt_sub) -> None:  # type: ignore[no-untyped-def]
    """PUBACKs wake the pump only while its window is full (issue 20: otherwise new events ring for
    themselves); a window of 4 still moves 400 events in order, a page per PUBACK round, not per second."""
    gw = gateway_factory(mqtt_extra="inflight = 4\n")
    sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/event/#")
    wait_until(lambda: gw.health()["uplink"]["connected"], 10, what="uplink")
    assert gw.post("/api/v1/test-events", json={"count": 400}).status_code == 202
    wait_until(lambda: len(events_of(sub)) >= 400, 30, what="400 events through a window of 4")
    seqs = [p["seq"] for t, p in sub.snapshot() if "/event/" in t]
    assert seqs == sorted(seqs) and seqs_gap_free(sub, min(seqs))
    wait_until(lambda: gw.health()["outbox"]["depth"] == 0, 20, what="outbox drained")


def test_kill_9_mid_burst_loses_nothing(gateway_factory, mosquitto, mqtt_sub) -> None:  # type: ignore[no-untyped-def]
    gw = gateway_factory()
    sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/event/#")
    wait_until(lambda: gw.health()["uplink"]["connected"], 10, what="uplink")
    assert gw.post("/api/v1/test-events", json={"count": 10000}).status_code == 202
    wait_until(lambda: len(events_of(sub)) > 1500, 60, what="burst under way")
    gw.kill()
    db = sqlite3.connect(gw.data_dir / "gateway.db")
    recorded = {r[0] for r in db.execute("SELECT id FROM events WHERE type='gateway.test'")}
    db.close()
    assert 1500 < len(recorded) <= 10000
    gw.start()
    wait_until(lambda: recorded <= {p["id"] for p in events_of(sub)}, 90, what="every recorded id at central")
    seqs = sorted({p["seq"] for p in events_of(sub)})
    wait_until(lambda: seqs_gap_free(sub, seqs[0]), 10, what="no gap in seq")


def test_commands_malformed_unknown_and_idempotent(gateway_factory, mosquitto, mqtt_sub) -> None:  # type: ignore[no-untyped-def]
    gw = gateway_factory()
    sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/cmd-result")
    wait_until(lambda: gw.health()["uplink"]["connected"], 10, what="uplink")
    cmd = f"{gw.topic_root}/cmd"
    mqtt_pub(mosquitto.port, f"{cmd}/ping", b"{not json")
    sub.wait_for(lambda t, p: p["error"]["code"] == "bad_json" if not p.get("ok") else False)
    mqtt_pub(mosquitto.port, f"{cmd}/ping", {"args": {}})
    sub.wait_for(lambda t, p: not p["ok"] and p["error"]["code"] == "missing_id")
    mqtt_pub(mosquitto.port, f"{cmd}/ping", [1, 2])
    sub.wait_for(lambda t, p: not p["ok"] and p["error"]["code"] == "bad_request")
    mqtt_pub(mosquitto.port, f"{cmd}/launch.rockets", {"id": "c-1", "args": {}})
    sub.wait_for(lambda t, p: p["id"] == "c-1" and p["error"]["code"] == "unknown_command")
    mqtt_pub(mosquitto.port, f"{cmd}/ping", {"id": "c-2", "args": "x"})
    sub.wait_for(lambda t, p: p["id"] == "c-2" and p["error"]["code"] == "bad_args")
    mqtt_pub(mosquitto.port, f"{cmd}/ping", {"id": "c-3", "args": {}})
    _, first = sub.wait_for(lambda t, p: p["id"] == "c-3" and p["ok"])
    mqtt_pub(mosquitto.port, f"{cmd}/ping", {"id": "c-3", "args": {}})
    wait_until(lambda: len([p for t, p in sub.snapshot() if p.get("id") == "c-3"]) == 2, 10, what="repeat answer")
    answers = [p for t, p in sub.snapshot() if p.get("id") == "c-3"]
    assert answers[0] == answers[1] == first  # the stored result, not a second run
    assert gw.health()["status"] == "ok"


def test_http_auth_roles_audit_and_metrics(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    gw = gateway_factory()
    url = gw.url
    assert httpx.get(f"{url}/api/v1/events").status_code == 401
    r = httpx.get(f"{url}/api/v1/events", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    assert gw.get("/api/v1/events", role="technician").status_code == 403
    assert gw.get("/api/v1/events", role="central").status_code == 200
    assert gw.get("/api/v1/audit", role="operator").status_code == 403
    r = gw.post("/api/v1/test-events", role="admin", content=b"{bad json", headers={**gw.headers("admin"), "content-type": "application/json"})
    assert r.status_code == 422 and "error" in r.json()
    assert gw.post("/api/v1/test-events", json={"count": 0}).status_code == 422
    assert gw.post("/api/v1/test-events", json={"count": 3}).status_code == 202
    audit = gw.get("/api/v1/audit").json()["items"]
    assert any(a["action"] == "POST /api/v1/test-events" and a["actor"] == "test-admin" for a in audit)
    assert httpx.get(f"{url}/api/v1/nope").status_code == 404
    metrics = httpx.get(f"{url}/metrics").text
    assert "estate_gateway_events_recorded_total" in metrics and "estate_gateway_outbox_depth" in metrics
    wait_until(lambda: len(gw.get("/api/v1/events?limit=1000").json()["items"]) >= 4, 10, what="events")
    page = gw.get("/api/v1/events?after=1&limit=2").json()
    assert [e["seq"] for e in page["items"]] == [2, 3] and page["next"] == 3
    assert "test-token" not in gw.log.read_text()


def test_second_daemon_on_same_data_dir_refuses(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    from conftest import BIN

    gw = gateway_factory()
    res = subprocess.run([str(BIN), "run", "-c", str(gw.config_path)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and "another estate-gateway is running" in res.stderr


def test_signed_commands_only_when_a_key_is_set(gateway_factory, mosquitto, mqtt_sub, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime, timedelta, timezone

    from gateway.commands import sign

    key = bytes(range(32))
    (tmp_path / "cmd.key").write_text(key.hex())
    gw = gateway_factory(mqtt_extra=f'command_hmac_key_file = "{tmp_path / "cmd.key"}"\n')
    sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/cmd-result")
    wait_until(lambda: gw.health()["uplink"]["connected"], 10, what="uplink")
    topic = f"{gw.topic_root}/cmd/ping"
    now = datetime.now(timezone.utc)
    mqtt_pub(mosquitto.port, topic, {"id": "s-1", "args": {}})
    sub.wait_for(lambda t, p: p["id"] == "s-1" and p["error"]["code"] == "unsigned")
    msg = {"id": "s-2", "ts": now.isoformat(), "args": {}}
    msg["sig"] = sign(b"wrong key", "ping", msg)
    mqtt_pub(mosquitto.port, topic, msg)
    sub.wait_for(lambda t, p: p["id"] == "s-2" and p["error"]["code"] == "bad_signature")
    msg = {"id": "s-3", "ts": (now - timedelta(hours=1)).isoformat(), "args": {}}
    msg["sig"] = sign(key, "ping", msg)
    mqtt_pub(mosquitto.port, topic, msg)
    sub.wait_for(lambda t, p: p["id"] == "s-3" and p["error"]["code"] == "stale")
    msg = {"id": "s-4", "ts": now.isoformat(), "args": {}}
    msg["sig"] = sign(key, "ping", msg)
    mqtt_pub(mosquitto.port, topic, msg)
    sub.wait_for(lambda t, p: p["id"] == "s-4" and p["ok"])
