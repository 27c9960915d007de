"""The DC-09 receiver inside the gateway: keys from the config, group commit across connections, nothing lost.

Real TCP, the real store and alarm lifecycle; the panels are the simulator's (drivers/sim) and
raw blocks built to the standard.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, make_config

from drivers.sia_dc09 import Framer, build_block, parse_response, to_binary_crc
from drivers.sim.alarm_panel import Dc09Panel
from gateway.alarms import AlarmsComponent
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(120)

ASCII_KEY = "Estate-Gateway16"          # 16 characters typed into the panel: AES-128
HEX_KEY = "00112233445566778899AABBCCDDEEFF"


def site(port: int, extra: str = "") -> str:
    return f"""
[[alarm_receivers]]
id = "dc"
protocol = "sia-dc09"
listen = "127.0.0.1:{port}"
{extra}
"""


async def answer_to(port: int, block: bytes) -> str:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        w.write(block)
        await w.drain()
        data = await asyncio.wait_for(r.readuntil(b"\r"), 10)
    finally:
        w.close()
    [body] = Framer().feed(data)
    parsed = parse_response(body)
    assert parsed is not None
    return parsed[0]


def run(tmp_path: Path, extra: str, body: Any) -> None:
    async def main() -> None:
        port = free_port()
        cfg = make_config(tmp_path, site(port, extra))
        alarms = AlarmsComponent()
        ctx = await build_context(cfg, components=[alarms])
        try:
            await body(ctx, alarms, port)
        finally:
            await stop_context(ctx)

    asyncio.run(main())


def test_ten_panels_at_once_share_commits_and_every_block_is_committed(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, port: int) -> None:
        panels = [Dc09Panel("127.0.0.1", port, account=f"{100 + i}") for i in range(10)]

        async def send(p: Dc09Panel) -> list[str]:
            out = []
            for k in range(20):
                q = 1 if k % 2 == 0 else 3
                out.append(await p.send("ADM-CID", f"{q}130 01 {k // 2:03d}"))
            await p.close()
            return out

        results = await asyncio.gather(*[send(p) for p in panels])
        assert all(r == ["ACK"] * 20 for r in results)
        receiver = alarms.receivers["dc"]
        assert receiver.commits.batches < 200          # blocks of different panels shared transactions
        rows = ctx.store.query_one("SELECT COUNT(*) FROM alarm_signals")[0]
        assert rows == 200                              # each block committed, none twice

    run(tmp_path, "", body)


def test_panels_sending_back_to_back_fill_each_batch(tmp_path: Path) -> None:
    """Ten panels in lock step, in a thread of their own (as on the wire: their answers come a little apart):
    after the first rounds every batch waits for all ten (issue 20) instead of committing 1 + 9."""
    async def body(ctx: Any, alarms: AlarmsComponent, port: int) -> None:
        receiver = alarms.receivers["dc"]
        receiver.commits.gather_s = 1.0    # long enough that a loaded machine does not make a panel miss it

        async def send(p: Dc09Panel) -> list[str]:
            out = [await p.send("ADM-CID", f"{1 if k % 2 == 0 else 3}130 01 {k // 2:03d}") for k in range(20)]
            await p.close()
            return out

        async def panels() -> list[list[str]]:
            return await asyncio.gather(*[send(Dc09Panel("127.0.0.1", port, account=f"{200 + i}")) for i in range(10)])

        results = await asyncio.to_thread(asyncio.run, panels())
        assert all(r == ["ACK"] * 20 for r in results)
        assert receiver.commits.batches <= 30          # 200 blocks: ~20 batches of ten (+ the first rounds)
        assert ctx.store.query_one("SELECT COUNT(*) FROM alarm_signals")[0] == 200

    run(tmp_path, "", body)


def test_a_panel_that_pauses_between_blocks_is_never_waited_for(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, port: int) -> None:
        receiver = alarms.receivers["dc"]
        receiver.commits.gather_s = 0.05
        panel = Dc09Panel("127.0.0.1", port, account="300")
        for k in range(4):
            assert await panel.send("ADM-CID", f"1130 01 {k:03d}") == "ACK"
            await asyncio.sleep(0.2)                   # longer than gather_s: not back to back
        await panel.close()
        assert receiver.commits.gathers == 0 and receiver.commits.batches == 4

    run(tmp_path, "", body)


def test_a_failed_commit_naks_the_whole_batch_and_the_resent_blocks_land_once(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, port: int) -> None:
        receiver = alarms.receivers["dc"]
        real = receiver.host.process_batch
        calls = {"n": 0}

        async def flaky(rid: str, items: list[Any]) -> Any:
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError("disk full")
            return await real(rid, items)

        receiver.commits.host = type("H", (), {"process_batch": staticmethod(flaky)})()
        block = build_block("SIA-DCS", 5, "1234", "Nri1/FA012")
        assert await answer_to(port, block) == "NAK"
        assert await answer_to(port, block) == "ACK"      # the panel's resend
        assert await answer_to(port, block) == "ACK"      # and a retry of an ACKed block: not raised again
        [a] = alarms.list_alarms("open")
        assert (a["kind"], a["zone"]) == ("fire", 12)

    run(tmp_path, "", body)


def test_ascii_and_per_account_keys_from_the_config(tmp_path: Path) -> None:
    (tmp_path / "all.key").write_text(HEX_KEY + "\n")
    (tmp_path / "ajax.key").write_text(ASCII_KEY.encode().hex() + "\n")
    (tmp_path / "ascii.key").write_text(ASCII_KEY + "\n")

    async def body(ctx: Any, alarms: AlarmsComponent, port: int) -> None:
        now = datetime.now(UTC)
        assert await answer_to(port, build_block("SIA-DCS", 1, "1234", "Nri1/BA003", key=bytes.fromhex(HEX_KEY))) == "ACK"
        assert await answer_to(port, build_block("SIA-DCS", 2, "AJAX1", "Nri1/BA004", key=ASCII_KEY.encode())) == "ACK"
        assert await answer_to(port, build_block("SIA-DCS", 3, "AJAX1", "Nri1/BA005", key=bytes.fromhex(HEX_KEY))) == "DUH"
        stale = now - timedelta(minutes=5)
        assert await answer_to(port, build_block("SIA-DCS", 4, "1234", "Nri1/BA006", key=bytes.fromhex(HEX_KEY),
                                                 ts=stale)) == "NAK"
        assert await answer_to(port, build_block("SIA-DCS", 5, "1234", "Nri1/BA007", ts=stale)) == "ACK"
        assert {a["zone"] for a in alarms.list_alarms("open")} == {3, 4, 7}

    # a mixed site (the stale plain block 5 must be ACKed): allow_plain lets plain blocks in beside encrypted ones
    run(tmp_path, 'key_file = "all.key"\naccount_keys = { "ajax1" = "ajax.key" }\nallow_plain = true', body)
    assert load_ascii_config_ok(tmp_path)


def load_ascii_config_ok(tmp_path: Path) -> bool:
    """key_format = "ascii" reads the characters themselves; a key of the wrong length keeps the receiver offline."""
    ok: dict[str, bool] = {}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    async def body(ctx: Any, alarms: AlarmsComponent, port: int) -> None:
        ok["ack"] = await answer_to(port, build_block("NULL", 1, "9", key=ASCII_KEY.encode())) == "ACK"

    run(tmp_path / "a", 'key_format = "ascii"\nkey_file = "../ascii.key"', body)

    async def offline(ctx: Any, alarms: AlarmsComponent, port: int) -> None:
        ok["offline"] = "dc" not in alarms.ports and any(d["id"] == "dc" for d in ctx.devices.offline())

    (tmp_path / "bad.key").write_text("fifteen-chars!!\n")
    run(tmp_path / "b", 'key_format = "ascii"\nkey_file = "../bad.key"', offline)
    assert ok == {"ack": True, "offline": True}, ok
    return True


def test_plain_window_is_a_per_receiver_choice(tmp_path: Path) -> None:
    async def body(ctx: Any, alarms: AlarmsComponent, port: int) -> None:
        stale = datetime.now(UTC) - timedelta(hours=8)      # a panel set to local time
        assert await answer_to(port, build_block("ADM-CID", 9, "1234", "1130 01 001", ts=stale)) == "NAK"

    run(tmp_path, "plain_timestamp_window = true", body)


def test_lenient_blocks_are_accepted_counted_and_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="drivers.sia_dc09.receiver")

    async def body(ctx: Any, alarms: AlarmsComponent, port: int) -> None:
        for seq in (1, 2, 3):
            block = to_binary_crc(build_block("SIA-DCS", seq, "ACCT7x", f"Nri1BA{seq}", line=""))
            assert await answer_to(port, block) == "ACK"
        stats = alarms.receivers["dc"].server.stats
        assert stats.lenient["binary CRC"] == 3 and stats.lenient["non-hex account"] == 3
        assert stats.lenient["L without digits"] == 3
        assert {a["zone"] for a in alarms.list_alarms("open")} == {1, 2, 3}

    run(tmp_path, "", body)
    logged = [r.getMessage() for r in caplog.records if "accepted a block with" in r.getMessage()]
    assert len(logged) == 3 and all("ACCT7x" in m for m in logged)


def test_check_config_names_a_missing_account_key_file_and_a_bad_key_format(tmp_path: Path) -> None:
    from conftest import config_text

    from gateway.config import check_config

    path = tmp_path / "gateway.toml"
    path.write_text(config_text(tmp_path / "var", 1883, free_port(), site(free_port(), 'account_keys = { "1234" = "nope.key" }')))
    problems = [str(p) for p in check_config(path)]
    assert any("account_keys" in p and "nope.key" in p for p in problems), problems
    path.write_text(config_text(tmp_path / "var", 1883, free_port(), site(free_port(), 'key_format = "base64"')))
    assert any("key_format" in str(p) for p in check_config(path))
