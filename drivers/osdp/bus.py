"""The OSDP control panel of one port: a thread that refreshes libosdp and watches its readers.

Why our own refresh loop rather than ``ControlPanel.start()``: the stock loop
sleeps 20 ms per turn, which adds up to ~150 ms from a swipe to the relay; 2 ms
keeps it near one OSDP poll period (~50 ms). It also lets us re-enable a PD
that went offline: libosdp otherwise waits minutes before retrying one.

osdp_FMT card reads (characters) are read off the wire by the channel's tap, since libosdp
ignores them; the CP runs with ``IgnoreUnsolicited`` so such a reply does not take the reader
offline (:mod:`drivers.osdp.cardread`).

Secure channel: libosdp cannot enforce it in install mode (its fallback after a failed
SCBK-D handshake is a plain link), so the bus does: a PD with an SCBK that is online
without a secure channel is reported offline, disabled, and its card reads, inputs and
commands are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from drivers.osdp.channel import SerialChannel
from drivers.osdp.commands import buzzer_command, led_command, output_command
from drivers.osdp.events import fmt_read, translate
from drivers.osdp.pd import PdSpec, PdState, offline_reason
from drivers.reader import ReaderEvent, ReaderStatus
from drivers.reasons import NONE, Reason
from drivers.restart import Backoff, run_with_restarts

log = logging.getLogger(__package__)  # "drivers.osdp", as before the split into modules

REFRESH_S = 0.002
STATUS_EVERY_S = 0.1
RETRY_OFFLINE_S = 2.0
STARTUP_GRACE_S = 3.0
LINE_DEAD_S = 1.5
STABLE_CHECKS = 3
CRASH_BACKOFF_MIN_S = 1.0  # first restart after a crash of the bus thread
CRASH_BACKOFF_MAX_S = 60.0
HEALTHY_S = 60.0           # a loop that ran this long without crashing starts its backoff afresh
KEYED_PLAIN = "key mismatch: the reader accepted neither our SCBK nor the install-mode default key (SCBK-D)"


class OsdpBus:
    """All PDs on one port (a :class:`~drivers.reader.ReaderDriver`); events go to ``queue`` on ``loop``."""

    relay = True

    def __init__(self, url: str, baud: int, pds: list[PdSpec], loop: asyncio.AbstractEventLoop,
                 queue: asyncio.Queue[ReaderEvent], *, refresh_s: float = REFRESH_S) -> None:
        if not pds:
            raise ValueError("an OSDP bus needs at least one PD")
        self.url = url
        self.baud = baud
        self.loop = loop
        self.queue = queue
        self.refresh_s = refresh_s
        self.channel = SerialChannel(url, baud)
        self.pds = {spec.key: PdState(spec, i) for i, spec in enumerate(pds)}
        self._by_index = {st.index: st for st in self.pds.values()}
        self._by_address = {st.spec.address: st for st in self.pds.values()}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self.cp: Any = None
        self.backoff = Backoff(CRASH_BACKOFF_MIN_S, CRASH_BACKOFF_MAX_S, HEALTHY_S)
        self.stats = {"card_reads": 0, "bad_card_reads": 0, "commands": 0, "commands_refused": 0,
                      "plain_dropped": 0, "crashes": 0}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.cp = self._make_cp()
        self._thread = threading.Thread(target=self._run, name=f"osdp-{self.url}", daemon=True)
        self._thread.start()

    def _make_cp(self) -> Any:
        from osdp import ControlPanel, LibFlag, LogLevel, PDInfo

        infos = []
        for st in sorted(self.pds.values(), key=lambda s: s.index):
            # an osdp_FMT card read (deprecated, still sent by readers in the field) answers a poll with a reply
            # libosdp does not expect: without this flag it takes the reader offline for every such swipe
            flags = [LibFlag.IgnoreUnsolicited]
            if st.spec.scbk is not None:
                flags.append(LibFlag.InstallMode if st.spec.install_mode else LibFlag.EnforceSecure)
            infos.append(PDInfo(st.spec.address, self.channel, scbk=st.spec.scbk, name=st.spec.key[:16],
                                flags=flags))
        return ControlPanel(infos, log_level=LogLevel.Error, event_handler=self._on_event)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.channel.close()

    # ------------------------------------------------------------------ the CP thread
    def _run(self) -> None:
        """The thread: :meth:`_serve` until stopped; a crash is reported and the bus rebuilt with backoff."""
        run_with_restarts(self._serve, stop=self._stop, on_crash=self._crashed, what=f"osdp: bus {self.url}", log=log,
                          stats=self.stats, rebuild=self._rebuild, backoff=self.backoff)

    def _crashed(self, reason: Reason) -> None:
        """Every PD on the bus is offline with ``reason``; drop the control panel and close the port."""
        with self._lock:
            cp, self.cp = self.cp, None  # commands are refused until the bus is rebuilt
            self.channel.close()
            now = time.monotonic()
            for st in self.pds.values():
                st.online, st.secure = False, False
                st.pending, st.pending_checks = None, 0
                st.inputs = None
                st.offline_since = now
                st.reason = reason
                self._put(ReaderStatus(st.spec.key, False, False, reason))
        if cp is not None:
            try:
                cp.teardown()
            except Exception as exc:
                log.debug("osdp: teardown after crash: %s", exc)

    def _rebuild(self) -> None:
        """A fresh port and control panel after a crash; the PDs start from INIT."""
        with self._lock:
            self.channel.close()
            self.channel = SerialChannel(self.url, self.baud)
            self.cp = self._make_cp()
            now = time.monotonic()
            for st in self.pds.values():
                st.offline_since = st.last_retry = now  # give the handshake time before knocking
                st.refused = ""
        log.info("osdp: bus %s restarted after a crash", self.url)

    def _serve(self) -> None:
        ctx = self.cp.ctx
        next_status = 0.0
        self._started = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                ctx.refresh()
                self._fmt_reads()
                now = time.monotonic()
                if now >= next_status:
                    next_status = now + STATUS_EVERY_S
                    self._check_status(ctx, now)
            time.sleep(self.refresh_s)

    # ------------------------------------------------------------------ online / offline (CP thread, lock held)
    def _check_status(self, ctx: Any, now: float) -> None:
        online_mask = ctx.status()
        sc_mask = ctx.sc_status()
        down = self.channel.down_since
        line_dead = down is not None and now - down > LINE_DEAD_S
        for st in self.pds.values():
            # a dead line means every PD on it is gone, well before libosdp's retries give up
            online = bool(online_mask & (1 << st.index)) and not line_dead
            secure = bool(sc_mask & (1 << st.index))
            if online and not secure and st.spec.scbk is not None:
                # libosdp fell back to plain text (install mode only: EnforceSecure never does). Not from us:
                # stop polling it now; the retry below tries the handshake again.
                st.refused = KEYED_PLAIN
                log.debug("osdp: %s came up without a secure channel; refused", st.spec.key)
                self._knock(ctx, st, enable=False)
                online = False
            if st.online is None and not online and now - self._started < STARTUP_GRACE_S:
                continue  # still coming up: not news yet
            if not self._settle(st, online, secure, now):
                continue
            if not online and now - st.offline_since > RETRY_OFFLINE_S and now - st.last_retry > RETRY_OFFLINE_S:
                self._retry(ctx, st, now)

    def _settle(self, st: PdState, online: bool, secure: bool, now: float) -> bool:
        """Report a change once it held for STABLE_CHECKS checks; False while one is still settling."""
        if online == st.online and not (online and secure != st.secure):
            st.pending, st.pending_checks = None, 0
            return True
        # a change must hold for STABLE_CHECKS checks: a PD being re-enabled flickers
        if st.pending != (online, secure):
            st.pending, st.pending_checks = (online, secure), 1
        else:
            st.pending_checks += 1
        if st.pending_checks < STABLE_CHECKS and st.online is not None:
            return False
        st.pending_checks = 0
        st.online, st.secure = online, secure
        if online:
            st.inputs = None  # report the contact afresh once it speaks again
            st.reason = NONE
            self._put(ReaderStatus(st.spec.key, True, secure))
        else:
            st.offline_since = now
            st.reason = offline_reason(st, self.channel)
            if st.reason.startswith("OSDP"):
                log.error("osdp: %s offline: %s", st.spec.key, st.reason)
            self._put(ReaderStatus(st.spec.key, False, False, st.reason))
        return True

    def _retry(self, ctx: Any, st: PdState, now: float) -> None:
        if st.online is False:
            # the attempt that just ended may tell more (a reader swapped, a line cut since)
            reason = offline_reason(st, self.channel)
            if reason != st.reason:
                st.reason = reason
                self._put(ReaderStatus(st.spec.key, False, False, reason))
        # libosdp parks an offline PD for minutes; knock it back to INIT now
        st.last_retry = now
        st.refused = ""
        self._knock(ctx, st)

    def _knock(self, ctx: Any, st: PdState, *, enable: bool = True) -> None:
        """Disable the PD (libosdp stops talking to it) and, with ``enable``, start it afresh from INIT."""
        try:
            if ctx.is_pd_enabled(st.index):
                ctx.disable_pd(st.index)
                ctx.refresh()
            if enable:
                ctx.enable_pd(st.index)
        except Exception as exc:  # pragma: no cover - depends on the PD's state
            log.debug("osdp: re-enable %s: %s", st.spec.key, exc)

    # ------------------------------------------------------------------ events (CP thread)
    def _on_event(self, pd_index: int, event: dict[str, Any]) -> int:
        """libosdp's callback (CP thread, lock held): translate and hand over; never raise."""
        try:
            # osdp.ControlPanel also queues every event for get_event(), which we never call: drain it
            while True:
                self.cp.event_queue[pd_index].get_nowait()
        except Exception:
            pass
        st = self._by_index.get(pd_index)
        if st is None:
            return 0
        if st.spec.scbk is not None and not self.cp.ctx.sc_status() & (1 << st.index):
            self.stats["plain_dropped"] += 1  # a keyed reader's plain-text report is not trusted
            return 0
        for ev in translate(st, event, self.stats):
            self._put(ev)
        return 0

    def _fmt_reads(self) -> None:
        """osdp_FMT card reads the channel saw (libosdp ignores them), translated (CP thread, lock held)."""
        for read in self.channel.fmt.take():
            st = self._by_address.get(read.address)
            ev = fmt_read(st, read, self.stats) if st is not None else None
            if ev is not None:
                self._put(ev)

    def _put(self, ev: ReaderEvent) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, ev)
        except RuntimeError:  # loop closed while stopping
            pass

    # ------------------------------------------------------------------ commands (any thread)
    def is_online(self, key: str) -> bool:
        return bool(self.pds[key].online)

    def _submit(self, key: str, cmd: dict[str, Any]) -> bool:
        st = self.pds[key]
        with self._lock:
            cp = self.cp
            if cp is None:  # not started, or rebuilding after a crash
                return False
            if st.spec.scbk is not None and not cp.ctx.sc_status() & (1 << st.index):
                self.stats["commands_refused"] += 1  # never drive a keyed reader's relay in plain text
                return False
            try:
                ok = cp.ctx.submit_command(st.index, cmd)
            except Exception as exc:
                log.warning("osdp: command to %s refused: %s", key, exc)
                ok = False
        self.stats["commands" if ok else "commands_refused"] += 1
        return bool(ok) or ok is None

    def output(self, reader: str, number: int, *, on: bool | None = None, pulse_s: float | None = None) -> bool:
        """Drive a relay: ``pulse_s`` = on for that long (max 25.5 s per command); or permanent ``on``."""
        return self._submit(reader, output_command(number, on=on, pulse_s=pulse_s))

    def led(self, reader: str, color: str, seconds: float = 2.0) -> bool:
        """Show ``color`` (green, red, amber, ...) for ``seconds``, then back to the reader's idle colour."""
        return self._submit(reader, led_command(color, seconds))

    def buzzer(self, reader: str, times: int = 1, on_s: float = 0.1) -> bool:
        """Beep ``times`` (osdp_BUZ)."""
        return self._submit(reader, buzzer_command(times, on_s))
