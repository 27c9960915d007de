"""A real DC-09 transmitter for tests that hold an event loop of their own (Playwright's sync API, a walk).

Why a thread: Playwright's sync API keeps its own loop on the test's thread, and a test that walks a site
may be inside one; the panel talks from another thread, and its failure is re-raised in the caller's.
"""

from __future__ import annotations

import asyncio
import threading


def send_dc09(port: int, *payloads: str, account: str = "1234") -> None:
    """The alarm panel reports ADM-CID ``payloads`` over SIA DC-09, each until it is ACKed (30 s bound)."""
    from drivers.sim.alarm_panel import Dc09Panel

    async def main() -> None:
        panel = Dc09Panel("127.0.0.1", port, account=account)
        try:
            for payload in payloads:
                assert await panel.send("ADM-CID", payload) == "ACK"
        finally:
            await panel.close()

    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "DC-09 panel did not finish"
    if errors:
        raise errors[0]
