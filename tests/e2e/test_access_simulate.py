"""`estate-gateway simulate` serves the config's OSDP readers with a control port; the daemon (a subprocess)
decides their swipes and sees their door contacts."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, free_port_pair, wait_until

from drivers.cards import wiegand_encode

pytestmark = pytest.mark.timeout(120)




def test_simulate_command_serves_readers_with_a_control_port(gateway_factory: Any, tmp_path: Path) -> None:
    port = free_port_pair()
    gw = gateway_factory(f"""
[[readers]]
id = "r-sim"
driver = "osdp"
port = "socket://127.0.0.1:{port}"

[[doors]]
id = "b1-main"
building = "1"
reader = "r-sim"
""", start=False)
    sim = subprocess.Popen([str(BIN), "simulate", "-c", str(gw.config_path)], stdout=subprocess.DEVNULL,
                           stderr=open(tmp_path / "sim.log", "wb"))
    try:
        wait_until(lambda: _connectable(port + 1000), 20, what="simulator control port")
        gw.start()
        wait_until(lambda: gw.get("/api/v1/doors", role="operator").json()["items"][0]["reader_online"], 30,
                   what="reader online")
        card = wiegand_encode("H10301", 1, 1)
        body = {"card": card, "unit": "1-1-0101", "holder_kind": "resident", "doors": ["building 1"]}
        assert gw.post("/api/v1/cards", role="technician", json=body).status_code == 201
        assert _control(port + 1000, f"swipe {card}") == "ok"
        assert _control(port + 1000, "door open") == "ok"
        assert _control(port + 1000, "bogus").startswith("error")
        wait_until(lambda: gw.get("/api/v1/events?type=access.granted", role="operator").json()["items"], 15,
                   what="granted")
        wait_until(lambda: gw.get("/api/v1/doors", role="operator").json()["items"][0]["state"] == "open", 15,
                   what="door open")
        wait_until(lambda: '"command": 1' in _control(port + 1000, "commands"), 10, what="relay command")
    finally:
        sim.terminate()
        sim.wait(10)


def _connectable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _control(port: int, line: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s, s.makefile("rwb") as f:
        f.write((line + "\n").encode())
        f.flush()
        return f.readline().decode().strip()
