"""The demo's alarm panels: what ``estate-gateway simulate`` sends to each alarm receiver.

A real panel on a quiet estate mostly says nothing: link tests, a periodic test report, now and
then a trouble (mains lost for a minute, a low battery) and its restore, rarely an intrusion,
and a fire only when there is one. The demo used to raise an alarm every few minutes, so the duty
view filled with faults nobody caused. Here each panel runs a slow :data:`MIX` (see
:func:`timeline`, a pure schedule) and raises anything else only when asked through the demo
control (``estate-gateway demo alarm fire``, :mod:`drivers.sim.control`).

Every event goes into the panel's queue and is sent in order until the receiver takes it (a DC-09
ACK, a GB/T 26875.3 confirm, a Contact ID line written), as a real panel buffers while the line is
down; link tests and heartbeats go out only while the queue is empty.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from drivers import gb26875 as gb
from drivers.contact_id import format_line
from drivers.sia_dc09 import load_key
from drivers.sim.alarm_panel import Dc09Panel, GbSender, send_contact_id_lines

log = logging.getLogger(__name__)

#: the Contact ID event code a control request raises, by kind (DC-09 ADM-CID and printed lines)
CID_BY_KIND = {"fire": 110, "smoke": 111, "panic": 120, "burglary": 130, "fault": 300, "supervisory": 200,
               "test": 601}
#: the GB/T 26875.3 component status bit a control request sets, by kind
GB_BY_KIND = {"fire": gb.BIT_FIRE, "fault": 2, "supervisory": 4}
_FIRE_ZONE = re.compile(r"smoke|fire|heat|detector|call point|烟|火|感温|手报", re.I)


@dataclass(frozen=True)
class MixItem:
    """One kind of thing a quiet panel reports by itself: about every ``mean_s`` (exponential), restored
    ``restore_s`` later (None: a report with no restore), with one of ``codes`` (Contact ID)."""

    kind: str
    mean_s: float
    codes: tuple[int, ...]
    restore_s: tuple[float, float] | None = None
    periodic: bool = False   # every ``mean_s`` exactly (a periodic test), not at random


#: the demo's quiet estate: an hourly periodic test, a trouble every two hours or so (restored within
#: minutes), an intrusion about twice a day; fire, panic, smoke and supervisory only when asked
MIX: tuple[MixItem, ...] = (
    MixItem("test", 3600.0, (602,), periodic=True),
    MixItem("fault", 2 * 3600.0, (301, 302, 350, 380), (60.0, 240.0)),
    MixItem("burglary", 12 * 3600.0, (130, 134), (30.0, 120.0)),
)


@dataclass(frozen=True)
class Planned:
    at: float           # seconds after the start
    kind: str
    code: int
    restore: bool


def timeline(mix: tuple[MixItem, ...], rng: random.Random, first_s: float = 60.0) -> Iterator[Planned]:
    """The endless, time-ordered schedule of ``mix`` (pure: the same ``rng`` seed, the same schedule)."""
    # (when, tie-break, a restore that is due, or the item whose next report is due)
    heap: list[tuple[float, int, Planned | MixItem]] = []
    for n, item in enumerate(mix):
        heap.append((first_s if item.periodic else rng.expovariate(1.0 / item.mean_s), n, item))
    heapq.heapify(heap)
    n = len(heap)
    while heap:
        t, _, due = heapq.heappop(heap)
        if isinstance(due, Planned):
            yield due
            continue
        code = rng.choice(due.codes)
        back = t
        if due.restore_s is not None:
            back = t + rng.uniform(*due.restore_s)
            heapq.heappush(heap, (back, n, Planned(back, due.kind, code, True)))
        # the next one of a kind comes after this one's restore: one open trouble at a time
        heapq.heappush(heap, (back + (due.mean_s if due.periodic else rng.expovariate(1.0 / due.mean_s)), n + 1, due))
        n += 2
        yield Planned(t, due.kind, code, False)


# ---------------------------------------------------------------------- the wire of each protocol
@dataclass
class Outgoing:
    """One event in a panel's queue; what goes on the wire is fixed when it is queued (a DC-09 retry is the
    same block: same sequence number, same timestamp)."""

    kind: str
    zone: int
    restore: bool
    code: int = 0
    wire: Any = None
    done: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Link(Protocol):
    kinds: tuple[str, ...]
    max_zone: int

    def prepare(self, ev: Outgoing) -> None: ...

    async def deliver(self, ev: Outgoing) -> str: ...

    async def poll(self) -> None: ...

    async def close(self) -> None: ...


class Dc09Link:
    """A SIA DC-09 panel sending Contact ID events (ADM-CID) and NULL link tests."""

    kinds = tuple(CID_BY_KIND)
    max_zone = 999   # Contact ID: three digits

    def __init__(self, panel: Dc09Panel) -> None:
        self.panel = panel

    def prepare(self, ev: Outgoing) -> None:
        code = ev.code or CID_BY_KIND[ev.kind]
        ev.code = code
        ev.wire = (self.panel.next_seq(), datetime.now(UTC), f"{3 if ev.restore else 1}{code:03d} 01 {ev.zone:03d}")

    async def deliver(self, ev: Outgoing) -> str:
        seq, ts, payload = ev.wire
        return await self.panel.send("ADM-CID", payload, seq=seq, ts=ts, max_tries=1)

    async def poll(self) -> None:
        await self.panel.send("NULL", max_tries=1)

    async def close(self) -> None:
        await self.panel.close()


class ContactIdLink:
    """A receiver printing Contact ID lines to the gateway over a serial-to-TCP converter."""

    kinds = tuple(CID_BY_KIND)
    max_zone = 999

    def __init__(self, host: str, port: int, account: str) -> None:
        self.host, self.port, self.account = host, port, account

    def prepare(self, ev: Outgoing) -> None:
        ev.code = ev.code or CID_BY_KIND[ev.kind]
        ev.wire = format_line(self.account, 3 if ev.restore else 1, ev.code, 1, ev.zone)

    async def deliver(self, ev: Outgoing) -> str:
        await send_contact_id_lines(self.host, self.port, [ev.wire])
        return "written"

    async def poll(self) -> None:
        return None  # a printer line has no link test; the hourly periodic test (602) keeps it alive

    async def close(self) -> None:
        return None


class GbLink:
    """A GB/T 26875.3 transmission device: each component's whole status word, and heartbeats."""

    kinds = tuple(GB_BY_KIND)
    max_zone = 0xFFFFFFFF   # a component's 4-byte address

    def __init__(self, sender: GbSender) -> None:
        self.sender = sender
        self.status: dict[int, int] = {}

    def prepare(self, ev: Outgoing) -> None:
        bit = 1 << GB_BY_KIND[ev.kind]
        word = self.status.get(ev.zone, 1 << gb.BIT_RUNNING)
        word = word & ~bit if ev.restore else word | bit
        self.status[ev.zone] = word
        ev.wire = word

    async def deliver(self, ev: Outgoing) -> str:
        frame = await self.sender.send_component(ev.zone, ev.wire, "smoke detector" if ev.kind == "fire" else "")
        return "confirmed" if frame.command == gb.CMD_CONFIRM else f"command {frame.command}"

    async def poll(self) -> None:
        await self.sender.send(b"")   # the heartbeat: a send-data frame with no application data

    async def close(self) -> None:
        await self.sender.close()


# ---------------------------------------------------------------------- one panel
class DemoPanel:
    """One receiver's simulated panel: the queue, the link tests, the quiet mix."""

    def __init__(self, receiver: str, link: Link, zones: dict[int, str], *, poll_s: float,
                 mix: tuple[MixItem, ...] = MIX, seed: int | None = None) -> None:
        self.receiver, self.link, self.zones, self.poll_s = receiver, link, zones, poll_s
        self.mix = tuple(m for m in mix if m.kind in link.kinds)   # GB/T 26875.3: its heartbeats are its tests
        self.rng = random.Random(seed)
        self.queue: asyncio.Queue[Outgoing] = asyncio.Queue()
        self.retry_s = 1.0

    @property
    def kinds(self) -> tuple[str, ...]:
        return self.link.kinds

    def zone_for(self, kind: str) -> int:
        """The zone a request without one is about: 0 (the panel) for a trouble or a test, a detector's zone
        for fire and smoke, another configured zone (else 99, an unnamed one) for the rest."""
        if kind in ("fault", "test"):
            return 0
        fire = kind in ("fire", "smoke")
        for zone, name in self.zones.items():
            if bool(_FIRE_ZONE.search(name)) == fire:
                return zone
        return next(iter(self.zones), 1) if fire else 99

    def send(self, kind: str, zone: int, restore: bool = False, code: int = 0) -> Outgoing:
        """Queue an event; its ``done`` future says how the receiver took it."""
        if kind not in self.kinds:
            raise ValueError(f"{self.receiver} cannot report {kind!r}: one of {', '.join(self.kinds)}")
        if not 0 <= zone <= self.link.max_zone:
            raise ValueError(f"zone {zone}: {self.receiver} reports zones 0 to {self.link.max_zone}")
        ev = Outgoing(kind, zone, restore, code)
        self.link.prepare(ev)
        self.queue.put_nowait(ev)
        return ev

    async def run(self) -> None:
        """Send the queue forever (link tests when idle), and run the mix beside it."""
        mix = asyncio.create_task(self._mix())
        try:
            await self._sender()
        finally:
            mix.cancel()
            await self.link.close()

    async def _sender(self) -> None:
        while True:
            try:
                ev = await asyncio.wait_for(self.queue.get(), self.poll_s)
            except TimeoutError:
                await self._quietly(self.link.poll())
                continue
            while True:
                try:
                    answer = await self.link.deliver(ev)
                except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
                    log.debug("panel %s: %s; resending", self.receiver, exc)
                    await self.link.close()
                    await asyncio.sleep(self.retry_s)
                    continue
                except Exception as exc:   # a bug of ours, not the line's: drop this event, keep the panel
                    log.exception("panel %s: cannot send %s", self.receiver, ev.kind)
                    answer = f"not sent ({exc})"
                if not ev.done.done():
                    ev.done.set_result(answer)
                break

    async def _quietly(self, coro: Any) -> None:
        try:
            await coro
        except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
            log.debug("panel %s: link test failed: %s", self.receiver, exc)
            await self.link.close()

    async def _mix(self) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for planned in timeline(self.mix, self.rng):
            await asyncio.sleep(max(0.0, t0 + planned.at - loop.time()))
            self.send(planned.kind, self.zone_for(planned.kind), planned.restore, planned.code)


# ---------------------------------------------------------------------- from the config
def _target(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return ("127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host.strip("[]")), int(port)


def panel_for(rc: Any, cfg: Any, *, seed: int | None = None) -> DemoPanel | None:
    """The demo panel of one ``[[alarm_receivers]]`` that listens on TCP; None for the others."""
    if not rc.listen or rc.protocol not in ("sia-dc09", "contact-id-serial", "gb26875"):
        return None
    host, port = _target(rc.listen)
    account = (rc.accounts or ["1234"])[0]
    zones = {z.zone: z.name for z in cfg.alarm_zones if z.receiver == rc.id}
    supervision = getattr(rc, "supervision_s", None)
    link: Link
    if rc.protocol == "sia-dc09":
        key = load_key(cfg.resolve(rc.key_file).read_text(), rc.key_format) if rc.key_file else None
        link = Dc09Link(Dc09Panel(host, port, account=account, key=key))
        poll_s = supervision / 3 if supervision else 30.0   # a third of supervision_s: a late poll is no fault
    elif rc.protocol == "gb26875":
        link, poll_s = GbLink(GbSender(host, port)), 25.0    # heartbeats every 20-30 s (GB/T 26875.3 practice)
    else:
        link, poll_s = ContactIdLink(host, port, account), 3600.0
    return DemoPanel(rc.id, link, zones, poll_s=poll_s, seed=seed)


async def serve_for_config(cfg: Any, hub: Any = None) -> None:
    """For ``estate-gateway simulate``: a demo panel per receiver that listens on TCP, each put in ``hub.panels``
    (by receiver id) for the demo control."""
    panels = [p for p in (panel_for(rc, cfg) for rc in cfg.alarm_receivers) if p is not None]
    for p in panels:
        if hub is not None:
            hub.panels[p.receiver] = p
        log.info("simulated %s panel for receiver %s (zones %s)", type(p.link).__name__.removesuffix("Link"),
                 p.receiver, ", ".join(map(str, p.zones)) or "none configured")
    if not panels:
        await asyncio.Event().wait()
    await asyncio.gather(*(p.run() for p in panels))


__all__ = ["CID_BY_KIND", "GB_BY_KIND", "MIX", "DemoPanel", "MixItem", "Planned", "panel_for", "serve_for_config", "timeline"]
