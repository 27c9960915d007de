"""OSDP secure channel end to end with the simulator: a reader whose SCBK differs from ours, one without a
secure channel, a factory-fresh one without install mode, install mode against a keyed reader: each is
offline with a reason that says the secure channel was refused, never online in plain text, and its card
reads decide nothing. Fixing the key brings it online with secure_channel true; a gateway without a key
runs plain (warned) and shows secure_channel false."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, until

from drivers.cards import wiegand_encode
from drivers.reader import ReaderStatus
from drivers.sim.osdp_reader import OsdpReaderSim
from gateway.access import AccessComponent, CardIn
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(120)

KEY_A = bytes(range(16))
KEY_B = bytes(range(16))[::-1]
CMD_OUTPUT = 1  # osdp.Command.Output as the simulator records it
#: the CP knocks an offline reader back to INIT this often here (the driver's RETRY_OFFLINE_S, 2 s on a site);
#: the "no decision while refused" windows below last RETRY_S * 1.5, so the handshake is retried in each
RETRY_S = 1.0


@pytest.fixture
def quick_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    from drivers.osdp import bus

    monkeypatch.setattr(bus, "RETRY_OFFLINE_S", RETRY_S)


def reader_toml(rid: str, url: str, address: int, scbk_file: str = "", install_mode: bool = False) -> str:
    return f"""
[[readers]]
id = "{rid}"
driver = "osdp"
port = "{url}"
address = {address}
{f'scbk_file = "{scbk_file}"' if scbk_file else ''}
{'install_mode = true' if install_mode else ''}

[[doors]]
id = "d-{rid}"
reader = "{rid}"
"""


def spy_status(access: AccessComponent) -> list[tuple[str, bool, bool, str]]:
    """Every reader status the access component is handed: (reader, online, secure, reason)."""
    seen: list[tuple[str, bool, bool, str]] = []
    real = access.reader_status

    async def spy(status: ReaderStatus) -> None:
        seen.append((status.reader, status.online, status.secure, status.reason))
        await real(status)

    access.reader_status = spy  # type: ignore[method-assign]
    return seen


async def issue(access: AccessComponent, card: str) -> None:
    body = CardIn.model_validate({"card": card, "unit": "3-1-0201", "holder_kind": "resident", "doors": ["*"]})
    await access.cards.issue_card(body, "t", "technician")


def decisions(ctx: Any) -> list[Any]:
    return ctx.events.query(0, 1000, ["access.granted", "access.denied"])


def offline_reason(ctx: Any, reader: str) -> str:
    """The reason of the device.offline event recorded for ``reader`` ("" if none yet)."""
    evs = [e for e in ctx.events.query(0, 1000, ["device.offline"]) if e.data["device"] == reader]
    return evs[-1].data.get("reason", "") if evs else ""


def test_key_mismatch_is_offline_with_a_reason_until_the_key_is_fixed(tmp_path: Path, quick_retry: None) -> None:
    (tmp_path / "r0.scbk").write_text(KEY_A.hex())
    sim = OsdpReaderSim([0], scbk={0: KEY_B}).start()
    port = sim.port
    card = wiegand_encode("H10301", 7, 1001)

    async def main() -> None:
        nonlocal sim
        ctx = await build_context(make_config(tmp_path, reader_toml("r0", sim.url, 0, "r0.scbk")),
                                  components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        seen = spy_status(access)
        try:
            await issue(access, card)
            reason = await until(lambda: offline_reason(ctx, "r0"), 20, what="device.offline for r0")
            assert reason.startswith("OSDP secure channel refused: key mismatch"), reason
            assert "scbk_file" in reason
            dev = ctx.devices.devices["r0"]
            assert dev.online is False and dev.reason == reason and dev.extra["secure_channel"] is False
            snap = next(d for d in ctx.devices.snapshot() if d["id"] == "r0")  # what /health shows
            assert snap["online"] is False and snap["secure_channel"] is False and "key mismatch" in snap["reason"]

            # the reader answers plain polls but the CP never accepts it: a swipe decides nothing
            sim.swipe(card)
            await asyncio.sleep(RETRY_S * 1.5)  # longer than a retry period: the CP tried the handshake again
            assert decisions(ctx) == []
            assert not [c for c in sim.commands() if c["command"] == CMD_OUTPUT]
            assert access.readers.driver_of["r0"].stats["card_reads"] == 0
            assert not [s for s in seen if s[1]], f"never online with a wrong key: {seen}"
            assert ctx.devices.devices["r0"].online is False

            # the technician puts the right key into the reader (here: the reader restarts with key A)
            sim.stop()
            sim = OsdpReaderSim([0], port=port, scbk={0: KEY_A}).start()
            await until(lambda: ctx.devices.devices["r0"].online, 20, what="r0 online after the key fix")
            dev = ctx.devices.devices["r0"]
            assert dev.extra["secure_channel"] is True and sim.secure()
            # the registry flips the state first and records device.online right after: wait for the record
            online = await until(lambda: ctx.events.query(0, 1000, ["device.online"]), 10, what="device.online")
            assert [e.data["device"] for e in online] == ["r0"]
            assert all(s[2] for s in seen if s[1]), f"online only with the secure channel: {seen}"

            sim.swipe(card)
            await until(lambda: decisions(ctx), 10, what="a decision once secure")
            assert [e.type for e in decisions(ctx)] == ["access.granted"]
            await asyncio.to_thread(sim.wait_command, lambda c: c["command"] == CMD_OUTPUT, 10)
        finally:
            await stop_context(ctx)
            sim.stop()

    asyncio.run(main())


def test_reader_without_secure_channel_or_without_key_is_refused(tmp_path: Path, quick_retry: None) -> None:
    """Our side has a key: a reader with no secure channel support (address 0) and a factory-fresh reader
    with no key while install mode is off (address 1) are both offline with a reason, never plain."""
    (tmp_path / "a.scbk").write_text(KEY_A.hex())
    sim = OsdpReaderSim([0, 1], no_sc=[0]).start()
    toml = reader_toml("r-nosc", sim.url, 0, "a.scbk") + reader_toml("r-fresh", sim.url, 1, "a.scbk")
    card = wiegand_encode("H10301", 7, 1002)

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, toml), components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        seen = spy_status(access)
        try:
            await issue(access, card)
            nosc = await until(lambda: offline_reason(ctx, "r-nosc"), 20, what="r-nosc offline")
            fresh = await until(lambda: offline_reason(ctx, "r-fresh"), 20, what="r-fresh offline")
            assert nosc.startswith("OSDP secure channel refused: reader does not support the secure channel"), nosc
            assert "plain link is not allowed" in nosc
            assert fresh.startswith("OSDP secure channel refused: key mismatch"), fresh
            assert "install_mode" in fresh  # the hint for a factory-fresh reader
            sim.swipe(card, 0)
            sim.swipe(card, 1)
            await asyncio.sleep(RETRY_S * 1.5)  # the handshake retried meanwhile
            assert decisions(ctx) == []
            for rid in ("r-nosc", "r-fresh"):
                dev = ctx.devices.devices[rid]
                assert dev.online is False and dev.extra["secure_channel"] is False
            assert not [s for s in seen if s[1]], f"never online: {seen}"
            assert not sim.secure(0) and not sim.secure(1)
        finally:
            await stop_context(ctx)
            sim.stop()

    asyncio.run(main())


def test_install_mode_never_falls_back_to_plain_text(tmp_path: Path, quick_retry: None) -> None:
    """Install mode cannot use libosdp's EnforceSecure (it must try SCBK-D), and libosdp then drops to plain
    text when neither key works. A reader with another key that still answers plain text must not be taken."""
    (tmp_path / "new.scbk").write_text(KEY_A.hex())
    sim = OsdpReaderSim([0], scbk={0: KEY_B}, permissive=[0]).start()
    card = wiegand_encode("H10301", 7, 1003)

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, reader_toml("r-new", sim.url, 0, "new.scbk", True)),
                                  components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        seen = spy_status(access)
        try:
            await issue(access, card)
            reason = await until(lambda: offline_reason(ctx, "r-new"), 20, what="r-new offline")
            assert reason.startswith("OSDP secure channel refused: key mismatch"), reason
            assert "SCBK-D" in reason
            sim.swipe(card)
            await asyncio.sleep(RETRY_S * 1.5)  # the handshake retried meanwhile
            assert decisions(ctx) == []
            assert not [c for c in sim.commands() if c["command"] == CMD_OUTPUT]
            assert not [c for c in sim.commands() if c.get("data") == KEY_A], "no key sent in plain text"
            assert not [s for s in seen if s[1]], f"never online: {seen}"
            assert ctx.devices.devices["r-new"].extra["secure_channel"] is False
        finally:
            await stop_context(ctx)
            sim.stop()

    asyncio.run(main())


def test_gateway_without_key_runs_plain_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """No scbk_file: allowed, warned, and visible (secure_channel false). A reader that insists on a secure
    channel (address 1 has a key) is offline with a reason that says so."""
    sim = OsdpReaderSim([0, 1], scbk={1: KEY_B}).start()
    toml = reader_toml("r-plain", sim.url, 0) + reader_toml("r-keyed", sim.url, 1)
    card = wiegand_encode("H10301", 7, 1004)

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, toml), components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        try:
            await issue(access, card)
            await until(lambda: ctx.devices.devices.get("r-plain") and ctx.devices.devices["r-plain"].online, 20,
                        what="r-plain online")
            snap = next(d for d in ctx.devices.snapshot() if d["id"] == "r-plain")  # what /health shows
            assert snap["online"] is True and snap["secure_channel"] is False
            reason = await until(lambda: offline_reason(ctx, "r-keyed"), 20, what="r-keyed offline")
            assert reason.startswith("OSDP plain link refused: the reader requires a secure channel"), reason
            sim.swipe(card, 0)
            await until(lambda: decisions(ctx), 10, what="a decision on the plain reader")
            assert [(e.type, e.data["door"]) for e in decisions(ctx)] == [("access.granted", "d-r-plain")]
        finally:
            await stop_context(ctx)
            sim.stop()

    with caplog.at_level(logging.WARNING, logger="gateway.access"):
        asyncio.run(main())
    warned = [r.getMessage() for r in caplog.records if "secure channel is OFF" in r.getMessage()]
    assert any("r-plain" in m for m in warned) and any("r-keyed" in m for m in warned)
