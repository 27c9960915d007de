"""Contact ID lines from public sources, parsed; then every known code over the real wire.

The lines of ``lines.tsv`` (spandsp's test reports, pysiaalarm's ADM-CID cases, a Vista panel's
sequences) must parse to what their sources say. Over a TCP connection to the real receiver,
every code of the table goes in as a new event and, where it raises, as its restore: each alarm
code makes exactly one alarm of its kind that the restore ends; news makes none; an unknown
code makes a visible "unknown code" alarm. A few lines also go through a pty, as a receiver's
printer port would deliver them.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, until

from drivers import cid_codes
from drivers import contact_id as cid
from gateway.alarms import AlarmsComponent
from gateway.alarms.signals import cid_signal
from gateway.daemon import build_context, stop_context

pytestmark = pytest.mark.timeout(90)

HERE = Path(__file__).parent
LINES = [line.split("\t") for line in (HERE / "lines.tsv").read_text(encoding="utf-8").splitlines()
         if line and not line.startswith("#")]


@pytest.mark.parametrize("row", LINES, ids=[r[1] for r in LINES])
def test_public_lines_parse_to_what_their_sources_say(row: list[str]) -> None:
    _src, line, account, q, code, group, zone, kind, action = row
    ev = cid.parse_line(line)
    assert (ev.account, ev.qualifier, ev.code, ev.group, ev.zone) == (account, int(q), int(code), int(group), int(zone))
    sig = cid_signal("r", ev, line)
    assert sig.kind == kind and sig.code == f"{int(code):03d}" and sig.zone == int(zone)
    assert {"raise": (False, False), "restore": (True, False), "log": (False, True)}[action] == (
        sig.restore, sig.informational)


def test_a_bad_checksum_and_a_hex_event_digit_are_refused() -> None:
    with pytest.raises(cid.ContactIdError, match="checksum"):
        cid.parse_line("1234181131010157")           # spandsp reports[0] with the wrong check digit
    with pytest.raises(cid.ContactIdError):
        cid.parse_line("1234 18 1E10 01 001")        # an event code is decimal


async def _site(tmp_path: Path, extra: str = "") -> tuple[Any, AlarmsComponent]:
    cfg = make_config(tmp_path, f"""
[[alarm_receivers]]
id = "cid"
protocol = "contact-id-serial"
listen = "127.0.0.1:0"
{extra}
[alarms]
tick_s = 0.05
""")
    alarms = AlarmsComponent()
    ctx = await build_context(cfg, components=[alarms])
    return ctx, alarms


def test_every_code_over_tcp(tmp_path: Path) -> None:
    """One line per code and qualifier through a TCP connection (a serial-to-TCP converter)."""
    raising = sorted(c for c in cid_codes.CODES if cid_codes.describe(c).action == "raise")
    news = sorted(c for c in cid_codes.CODES if cid_codes.describe(c).action == "log")

    async def main() -> None:
        ctx, alarms = await _site(tmp_path)
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", alarms.ports["cid"])
            lines = [cid.format_line("1234", 1, c, 1, i + 1) for i, c in enumerate(raising)]
            lines += [cid.format_line("1234", 1, c, 1, 500) for c in news]
            lines += [cid.format_line("1234", 1, 777, 1, 501)]
            w.write("".join(line + "\r\n" for line in lines).encode())
            await w.drain()
            await until(lambda: len(alarms.list_alarms("all")) == len(raising) + 1, timeout=60, what="alarms")
            got = {a["code"]: a for a in alarms.list_alarms("all", limit=1000)}
            for i, c in enumerate(raising):
                a = got[f"{c:03d}"]
                assert (a["kind"], a["zone"], a["state"]) == (cid_codes.describe(c).kind, i + 1, "raised")
            assert got["777"]["text"] == "unknown code 777" and got["777"]["kind"] == "other"
            logged = ctx.store.query("SELECT code FROM alarm_signals WHERE alarm IS NULL AND restore = 0")
            assert {r["code"] for r in logged} == {f"{c:03d}" for c in news}
            # every restore ends its own alarm, and only that one
            w.write("".join(cid.format_line("1234", 3, c, 1, i + 1, dtmf=True) + "\r\n"
                            for i, c in enumerate(raising)).encode())
            await w.drain()
            await until(lambda: len(alarms.list_alarms("raised")) == 1, timeout=60, what="restores")
            [left] = alarms.list_alarms("raised")
            assert left["code"] == "777"
            assert len(alarms.list_alarms("restored", limit=1000)) == len(raising)
            w.close()
        finally:
            await stop_context(ctx)

    asyncio.run(main())


def test_lines_through_a_pty(tmp_path: Path) -> None:
    """The receiver reads a real tty (a pty's slave side), as from a receiver's printer port."""
    master, slave = os.openpty()

    async def main() -> None:
        ctx, alarms = await _site(tmp_path, f'\n[[alarm_receivers]]\nid = "cid-tty"\nprotocol = "contact-id-serial"\n'
                                            f'port = "{os.ttyname(slave)}"\nbaud = 9600\n')
        try:
            await until(lambda: ctx.devices.devices["cid-tty"].online, what="tty open")
            await asyncio.sleep(0.2)   # pyserial flushes input right after opening
            for row in LINES[:5]:
                os.write(master, (row[1] + "\r\n").encode())
            os.write(master, b"garbage\r\n1234 18 1143 01 007\r\n")
            await until(lambda: any(a["code"] == "143" for a in alarms.list_alarms("all")), what="143 alarm")
            by_code = {a["code"]: a for a in alarms.list_alarms("all") if a["receiver"] == "cid-tty"}
            assert by_code["143"]["kind"] == "fault" and by_code["143"]["zone"] == 7   # not burglary (issue 13)
            assert by_code["131"]["state"] == "restored"                                # spandsp's 1/3 pair
            assert alarms.stats["errors"] >= 1
        finally:
            await stop_context(ctx)
            os.close(master)
            os.close(slave)

    asyncio.run(main())
