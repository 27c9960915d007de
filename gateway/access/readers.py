"""The card readers: their drivers started from config, one queue of typed events, online state.

Every driver (the OSDP bus of a port, a serial ASCII or Wiegand reader) is a
:class:`drivers.reader.ReaderDriver` and puts the events of :mod:`drivers.reader` on one queue,
so the gateway handles a card read, a door contact, a reader going offline and a bad frame the
same way whatever the wire. One consumer takes them in arrival order (:meth:`Readers.consume`)
and hands them to the component: that is the one place reader events become decisions and door
states. Commands (relay, LED, buzzer) go back through the same drivers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from drivers.reader import CardRead, InputChange, ReaderDriver, ReaderError, ReaderEvent, ReaderStatus
from gateway.config import ReaderConfig
from gateway.context import GatewayContext

log = logging.getLogger(__name__)


class ReaderSink(Protocol):
    """What reader events are handed to (the access component)."""

    async def card_read(self, reader: str, card: str, at: float | None = None) -> str | None: ...

    async def input_changed(self, reader: str, number: int, active: bool) -> None: ...

    async def reader_status(self, status: ReaderStatus) -> None: ...


class Readers:
    """The readers of this gateway, by id: driver, kind (``osdp``...) and online state (None = not reported)."""

    def __init__(self) -> None:
        self.ctx: GatewayContext | None = None
        self.online: dict[str, bool | None] = {}
        self.kind: dict[str, str] = {}
        self.drivers: list[ReaderDriver] = []
        self.driver_of: dict[str, ReaderDriver] = {}
        self.queue: asyncio.Queue[ReaderEvent] = asyncio.Queue()
        self.stats = {"bad_reads": 0}

    def declare(self, ctx: GatewayContext) -> None:
        """Know the configured readers (offline until they report) and show them as devices."""
        self.ctx = ctx
        self.queue = asyncio.Queue()
        for r in ctx.config.readers:
            self.online[r.id] = None
            self.kind[r.id] = r.driver
            ctx.devices.declare(r.id, "reader")

    def start(self, ctx: GatewayContext) -> None:
        """Start one driver per OSDP port and one per serial reader."""
        loop = asyncio.get_running_loop()
        osdp_ports: dict[tuple[str, int], list[ReaderConfig]] = {}
        for r in ctx.config.readers:
            if r.driver == "osdp":
                osdp_ports.setdefault((r.port, r.baud), []).append(r)
            else:
                self._start_serial(r, loop)
        for (port, baud), readers in osdp_ports.items():
            self._start_osdp(ctx, port, baud, readers, loop)
        # reader threads restart themselves after a crash (reported as device.offline); count them on /metrics
        ctx.metrics.gauge_fn("reader_driver_crashes", lambda: sum(d.stats.get("crashes", 0) for d in self.drivers))

    def _start_osdp(self, ctx: GatewayContext, port: str, baud: int, readers: list[ReaderConfig],
                    loop: asyncio.AbstractEventLoop) -> None:
        from drivers.osdp import OsdpBus, PdSpec, load_scbk

        specs = []
        for r in readers:
            key = None
            if r.scbk_file:
                key = load_scbk(ctx.config.resolve(r.scbk_file))
            else:
                log.warning("reader %s: no scbk_file, OSDP secure channel is OFF (plain text on the bus)", r.id)
            specs.append(PdSpec(r.id, r.address, key, r.install_mode, key_source=r.scbk_file))
        bus = OsdpBus(port, baud, specs, loop, self.queue)
        self._run(bus, [r.id for r in readers])

    def _start_serial(self, r: ReaderConfig, loop: asyncio.AbstractEventLoop) -> None:
        from drivers.ascii_reader import SerialCardReader, parser_for

        parser = parser_for(r.driver, r.framing, r.wiegand_bits)
        self._run(SerialCardReader(r.id, r.port, r.baud, parser, loop, self.queue), [r.id])

    def _run(self, driver: ReaderDriver, reader_ids: list[str]) -> None:
        self.drivers.append(driver)
        for rid in reader_ids:
            self.driver_of[rid] = driver
        driver.start()

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for driver in self.drivers:
            await loop.run_in_executor(None, driver.stop)
        self.drivers.clear()

    # ------------------------------------------------------------------ events in
    async def consume(self, sink: ReaderSink) -> None:
        """Hand every reader event to ``sink`` in arrival order; one failing event does not stop the rest."""
        while True:
            ev = await self.queue.get()
            try:
                await self.dispatch(ev, sink)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("access: handling %s failed", type(ev).__name__)

    async def dispatch(self, ev: ReaderEvent, sink: ReaderSink) -> None:
        match ev:
            case CardRead():
                await sink.card_read(ev.reader, ev.card, ev.at)
            case InputChange():
                await sink.input_changed(ev.reader, ev.number, ev.active)
            case ReaderStatus():
                await sink.reader_status(ev)
            case ReaderError():
                self.error(ev)

    async def set_status(self, ev: ReaderStatus) -> None:
        """A reader went online or offline: its device state (and, for OSDP, whether the channel is secure)."""
        ctx = self._ctx
        self.online[ev.reader] = ev.online
        if self.kind.get(ev.reader) == "osdp":
            ctx.devices.declare(ev.reader, "reader").extra["secure_channel"] = ev.secure
        await ctx.devices.set_state(ev.reader, "reader", ev.online, ev.reason)

    def error(self, ev: ReaderError) -> None:
        self.stats["bad_reads"] += 1
        self._ctx.devices.error(ev.reader, "reader", ev.kind)
        log.info("reader %s: %s", ev.reader, ev.what)

    @property
    def _ctx(self) -> GatewayContext:
        assert self.ctx is not None, "readers not started"
        return self.ctx

    # ------------------------------------------------------------------ commands out
    def has_relay(self, reader: str) -> bool:
        driver = self.driver_of.get(reader)
        return driver is not None and driver.relay

    def output(self, reader: str, number: int, *, on: bool | None = None, pulse_s: float | None = None) -> bool:
        driver = self.driver_of.get(reader)
        return driver is not None and driver.output(reader, number, on=on, pulse_s=pulse_s)

    def led(self, reader: str, color: str, seconds: float) -> None:
        driver = self.driver_of.get(reader)
        if driver is not None:
            driver.led(reader, color, seconds)

    def feedback(self, reader: str, ok: bool, beeps: int = 1) -> None:
        """Grant: green LED and ``beeps``; deny: red LED."""
        driver = self.driver_of.get(reader)
        if driver is None:
            return
        if ok:
            driver.led(reader, "green", 2.0)
            driver.buzzer(reader, beeps)
        else:
            driver.led(reader, "red", 2.0)
