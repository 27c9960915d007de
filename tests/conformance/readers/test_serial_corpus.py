"""Serial reader frames from public sources (serial_frames.json): decoded by each framing's parser, whole and
byte by byte, and sent over a real serial line (a pty) through the gateway's serial reader driver to a recorded
card event (or a counted refusal)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, until

from drivers.ascii_reader import parser_for
from drivers.serial_frames import BadFrame, CardSeen
from gateway.access import AccessComponent
from gateway.daemon import build_context, stop_context
from tests.conformance.readers.corpus import check_decoded, expected_card, load, wire

pytestmark = pytest.mark.timeout(120)

CASES = load("serial_frames.json")


def outcome(exp: dict[str, Any]) -> CardSeen | BadFrame:
    return BadFrame(exp["refused"]) if "refused" in exp else CardSeen(expected_card(exp))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_frame_decodes_as_its_source_says(case: dict[str, Any]) -> None:
    want = [outcome(e) for e in case["expect"]]
    whole = parser_for("serial-ascii", case["framing"], case.get("wiegand_bits", 0))
    assert whole.feed(wire(case)) == want
    trickle = parser_for("serial-ascii", case["framing"], case.get("wiegand_bits", 0))
    got = [r for b in wire(case) for r in trickle.feed(bytes([b]))]  # a serial port may deliver byte by byte
    assert got == want
    for exp, res in zip(case["expect"], want, strict=True):
        if isinstance(res, CardSeen):
            check_decoded(res.card, exp)
    refused = [r for r in whole.feed(b"") if isinstance(r, BadFrame)]
    assert not refused and len(whole.buf) == 0, "a complete frame leaves nothing behind"


# ---------------------------------------------------------------------- over the wire
def reader_key(case: dict[str, Any]) -> str:
    return f"r-{case['framing']}-{case.get('wiegand_bits', 0)}"


class Pty:
    """One pseudo-terminal: the reader's driver opens the slave path with pyserial, the test writes the master."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        self._slave = slave

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        os.close(self.master)
        os.close(self._slave)


def site(ptys: dict[str, Pty]) -> str:
    out = []
    for key, pty in ptys.items():
        framing, bits = key[2:].rsplit("-", 1)
        out.append(f'[[readers]]\nid = "{key}"\ndriver = "serial-ascii"\nport = "{pty.path}"\nframing = "{framing}"\n'
                   f"wiegand_bits = {bits}\n\n[[doors]]\nid = \"d{key[1:]}\"\nreader = \"{key}\"\n")
    return "\n".join(out)


def test_corpus_over_a_serial_line_to_recorded_events(tmp_path: Path) -> None:
    ptys = {reader_key(c): Pty() for c in CASES}
    denied = lambda ctx: ctx.events.query(0, 10_000, ["access.denied"])  # noqa: E731

    async def main() -> None:
        ctx = await build_context(make_config(tmp_path, site(ptys)), components=[AccessComponent()])
        access: AccessComponent = ctx.components["access"]
        last: dict[str, str] = {}
        try:
            await until(lambda: all(access.readers.online.get(k) for k in ptys), 10, "every serial reader open")
            for case in CASES:
                key = reader_key(case)
                cards = [expected_card(e) for e in case["expect"] if "refused" not in e]
                refusals = [e["refused"] for e in case["expect"] if "refused" in e]
                if cards and last.get(key) == cards[0]:
                    await asyncio.sleep(1.1)  # the driver reports a card held on the reader once a second
                n, errors = len(denied(ctx)), ctx.devices.devices[key].errors
                ptys[key].write(wire(case))
                if cards:
                    got = await until(lambda n=n, c=len(cards): denied(ctx)[n:] if len(denied(ctx)) >= n + c else None,
                                      10, f"{case['id']}: access.denied")
                    assert [(e.data["door"], e.data["card"]) for e in got] == [(f"d{key[1:]}", c) for c in cards]
                    last[key] = cards[-1]
                if refusals:
                    await until(lambda e=errors, r=len(refusals), k=key: ctx.devices.devices[k].errors >= e + r, 10,
                                f"{case['id']}: refusal counted")
                    for kind in set(refusals):
                        assert f'device_errors_total{{device="{key}",error="{kind}",kind="reader"}}' in ctx.metrics.render()
            assert len(denied(ctx)) == sum(1 for c in CASES for e in c["expect"] if "refused" not in e)
        finally:
            await stop_context(ctx)

    try:
        asyncio.run(main())
    finally:
        for pty in ptys.values():
            pty.close()


def test_framing_config_is_checked(tmp_path: Path) -> None:
    from gateway.config.loader import ConfigError

    reader = '[[readers]]\nid = "r-1"\ndriver = "{driver}"\nport = "/dev/ttyUSB9"\n{extra}\n'
    cfg = make_config(tmp_path, reader.format(driver="wiegand-serial", extra='framing = "wiegand-decimal"\n'
                                                                                "wiegand_bits = 34"))
    assert (cfg.readers[0].framing, cfg.readers[0].wiegand_bits) == ("wiegand-decimal", 34)
    assert make_config(tmp_path, reader.format(driver="serial-ascii", extra="")).readers[0].framing == ""
    for driver, extra, why in (("serial-ascii", 'framing = "em-marine"', "framing"),
                               ("serial-ascii", "wiegand_bits = 32", "wiegand_bits"),
                               ("osdp", 'framing = "auto"', "framing and wiegand_bits are for serial readers")):
        with pytest.raises(ConfigError, match=why):
            make_config(tmp_path, reader.format(driver=driver, extra=extra))
