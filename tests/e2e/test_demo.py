"""The demo's hands: ``estate-gateway demo`` talks to a running ``estate-gateway simulate`` (both real
processes) and the gateway (a third) answers -- a card presented is granted or refused, a fire raised at
the simulated panel is an alarm on MQTT, its restore closes it; and the busy-port message."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, free_port, free_port_pair, wait_until

pytestmark = pytest.mark.timeout(120)




def site(reader_port: int, panel_port: int) -> str:
    return f"""
[[readers]]
id = "r-b3u1"
driver = "osdp"
port = "socket://127.0.0.1:{reader_port}"

[[doors]]
id = "b3-u1"
name = "Building 3 unit 1 entrance"
building = "3"
reader = "r-b3u1"

[[alarm_receivers]]
id = "duty-panel"
protocol = "sia-dc09"
listen = "127.0.0.1:{panel_port}"
accounts = ["1234"]

[[alarm_zones]]
receiver = "duty-panel"
zone = 12
building = "3"
name = "B3 stairwell smoke"
unlock_doors = ["b3-u1"]
"""


def demo(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "demo", *args, "-c", str(config)], capture_output=True, text=True, timeout=60)


def test_cards_and_a_fire_through_the_demo_control(gateway_factory: Any, mosquitto: Any, mqtt_sub: Any,
                                                   tmp_path: Path) -> None:
    gw = gateway_factory(site(free_port_pair(), free_port()), start=False)
    sim = subprocess.Popen([str(BIN), "simulate", "-c", str(gw.config_path)], stdout=subprocess.DEVNULL,
                           stderr=open(tmp_path / "sim.log", "wb"))
    try:
        wait_until(lambda: (gw.data_dir / "simulate.sock").exists(), 20, what="the demo control socket")
        sub = mqtt_sub(mosquitto.port, f"{gw.topic_root}/event/#")
        # the gateway is not up yet: a card gets no answer, a panic waits in the panel's queue (nothing lost)
        early = [subprocess.Popen([str(BIN), "demo", *args, "-c", str(gw.config_path)], stdout=subprocess.PIPE,
                                  text=True) for args in (("card", "--reader", "r-b3u1", "--card", "26:12:345"),
                                                          ("alarm", "panic"))]
        card_out, panic_out = (p.communicate(timeout=30)[0] for p in early)
        assert card_out.startswith("no answer: 26:0600ac80 presented at r-b3u1, but the gateway did not answer")
        assert panic_out.startswith("panic raised at duty-panel zone 99: queued; the panel keeps sending it")
        gw.start()
        _, panic = sub.wait_for(lambda t, p: t.endswith("/event/alarm.raised"), timeout=30)
        assert panic["data"]["kind"] == "panic" and panic["data"]["zone"] == 99
        wait_until(lambda: gw.get("/api/v1/doors", role="operator").json()["items"][0]["reader_online"], 30,
                   what="reader online")
        status = demo(gw.config_path, "status")
        assert status.returncode == 0, status.stderr
        offered = json.loads(status.stdout)
        assert offered["readers"] == ["r-b3u1"] and offered["panels"]["duty-panel"]["zones"] == {
            "12": "B3 stairwell smoke"}

        body = {"card": "26:0600ac80", "unit": "3-1-0101", "holder_kind": "resident", "doors": ["building 3"]}
        assert gw.post("/api/v1/cards", role="technician", json=body).status_code == 201
        granted = demo(gw.config_path, "card", "--reader", "r-b3u1", "--card", "26:12:345")  # = 26:0600ac80
        assert granted.returncode == 0, granted
        assert granted.stdout.strip() == "granted: 26:0600ac80 at r-b3u1 (green LED, relay 0 pulsed: the door unlocks)"
        sub.wait_for(lambda t, p: t.endswith("/event/access.granted") and p["data"]["card"] == "26:0600ac80")
        refused = demo(gw.config_path, "card", "--reader", "r-b3u1", "--card", "H10301:12:999")
        assert refused.returncode == 0 and refused.stdout.startswith("refused: 26:0601f3c0 at r-b3u1 (red LED"), refused
        _, denied = sub.wait_for(lambda t, p: t.endswith("/event/access.denied"))
        assert denied["data"]["reason"] == "unknown"

        fire = demo(gw.config_path, "alarm", "fire")
        assert fire.returncode == 0, fire.stderr
        assert fire.stdout.strip() == "fire raised at duty-panel zone 12 (B3 stairwell smoke): the gateway answered ACK"
        _, raised = sub.wait_for(lambda t, p: t.endswith("/event/alarm.raised") and p["data"]["kind"] == "fire")
        assert raised["data"]["zone"] == 12 and raised["data"]["building"] == "3"
        back = demo(gw.config_path, "restore", "fire", "--zone", "12")
        assert back.returncode == 0 and "fire restored at duty-panel zone 12" in back.stdout, back
        sub.wait_for(lambda t, p: t.endswith("/event/alarm.restored") and p["data"]["kind"] == "fire")

        # what a newcomer gets wrong is answered in words, with exit 2
        for args, says in ((("card", "--reader", "r-b3u1", "--card", "12345"), "give BITS:HEX"),
                           (("card", "--reader", "r-nope", "--card", "26:12:345"), "readers: r-b3u1"),
                           (("alarm", "flood"), "cannot report 'flood': one of fire, smoke"),
                           (("restore", "test"), "a test report has no restore"),
                           (("alarm", "fire", "--zone", "1000"), "zone 1000: duty-panel reports zones 0 to 999"),
                           (("alarm", "fire", "--receiver", "nope"), "receivers: duty-panel")):
            wrong = demo(gw.config_path, *args)
            assert wrong.returncode == 2 and says in wrong.stderr, (args, wrong)
    finally:
        sim.terminate()
        sim.wait(10)
    assert not (gw.data_dir / "simulate.sock").exists()


def test_demo_without_a_simulator_says_what_to_start(gateway_factory: Any) -> None:
    gw = gateway_factory(start=False)
    r = demo(gw.config_path, "alarm", "fire")
    assert r.returncode == 1
    assert "no simulator answers on" in r.stderr and "simulate.sock" in r.stderr and "make demo" in r.stderr
    elsewhere = subprocess.run([str(BIN), "demo", "status"], capture_output=True, text=True, timeout=60,
                               cwd=gw.workdir)   # no -c, and no config/demo.toml in this folder
    assert elsewhere.returncode == 2 and "run this in the estate-gateway folder" in elsewhere.stderr


def test_a_busy_console_port_is_named_with_its_holder_before_anything_starts(gateway_factory: Any) -> None:
    gw = gateway_factory(start=False)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", gw.http_port))
        holder.listen()
        r = subprocess.run([str(BIN), "run", "-c", str(gw.config_path)], capture_output=True, text=True, timeout=60)
        ports = subprocess.run([str(Path(BIN).parent / "python"), "-m", "gateway.ports", "-c", str(gw.config_path)],
                               capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().startswith(f"console/API port 127.0.0.1:{gw.http_port} is in use by python"), r.stderr
    assert "set [api] listen to a free port" in r.stderr
    assert not gw.data_dir.joinpath("gateway.db").exists()   # nothing started
    assert ports.returncode == 1 and f"console: 127.0.0.1:{gw.http_port} is in use by python" in ports.stderr
