"""OSDP control panel: card reads, door contacts, relays, LED and buzzer on an RS-485 bus.

One :class:`OsdpBus` per port drives every reader (PD) on it through libosdp's
``ControlPanel``. The port is a pyserial URL (``serial_for_url``), so the same
code drives ``/dev/ttyUSB0`` and ``socket://host:port`` (an RS-485-to-TCP
converter, or the simulator). The blocking side runs in one thread which
refreshes the CP every few milliseconds, watches the online/secure-channel masks,
and hands typed events to the asyncio loop. Protocol only: no gateway imports.

Why our own refresh loop rather than ``ControlPanel.start()``: the stock loop
sleeps 20 ms per turn, which adds up to ~150 ms from a swipe to the relay; 5 ms
keeps it near one OSDP poll period (~50 ms). It also lets us re-enable a PD
that went offline: libosdp otherwise waits minutes before retrying one.

Secure channel: a PD with an SCBK (16 bytes) is driven with
``EnforceSecure`` (no silent downgrade to plain text). ``install_mode`` makes the CP
first talk to a factory-fresh reader with the default key (SCBK-D) and send it
the new SCBK (osdp_KEYSET); turn it off once the reader has it. libosdp cannot
enforce in install mode (its fallback after a failed SCBK-D handshake is a plain
link), so the bus does: a PD with an SCBK that is online without a secure channel
is reported offline, disabled, and its card reads and inputs are dropped.

libosdp reports *that* a PD is offline, not *why* (the reason is only in its log).
:class:`_FrameTap` reads the CP's own traffic (commands written, replies read) to
tell "no reply" from "secure channel refused": the PD answered osdp_CHLNG with a
cryptogram we rejected (key mismatch), NAKed the handshake, or reported in
osdp_PDCAP that it has no secure channel at all.

A crashing bus thread never leaves the doors dead: an unexpected exception out of
the refresh loop is logged with its traceback, counted in ``stats["crashes"]``,
every PD on the bus is reported offline (``driver crashed: ...; restarting in N s``),
and after 1, 2, 4 ... 60 s (back to 1 s once it ran :data:`HEALTHY_S`) the port is
reopened, the control panel rebuilt, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from drivers.cards import CardFormatError, card_id
from drivers.restart import run_with_restarts

log = logging.getLogger(__name__)

REFRESH_S = 0.002
STATUS_EVERY_S = 0.1
RETRY_OFFLINE_S = 2.0
REOPEN_S = 1.0
STARTUP_GRACE_S = 3.0
LINE_DEAD_S = 1.5
STABLE_CHECKS = 3
CRASH_BACKOFF_MIN_S = 1.0  # first restart after a crash of the bus thread
CRASH_BACKOFF_MAX_S = 60.0
HEALTHY_S = 60.0           # a loop that ran this long without crashing starts its backoff afresh

# osdp_OUT control codes (OSDP 2.2, 6.9)
OUT_OFF = 1                # permanent off, abort timed operation
OUT_ON = 2                 # permanent on, abort timed operation
OUT_TEMP_ON = 5            # temporary on for timer_count x 100 ms, then back to the permanent state

# OSDP command/reply codes the secure-channel diagnosis looks at (OSDP 2.2, annex)
SOM = 0x53
CMD_POLL, CMD_ID, CMD_CAP, CMD_KEYSET, CMD_CHLNG, CMD_SCRYPT = 0x60, 0x61, 0x62, 0x75, 0x76, 0x77
REPLY_ACK, REPLY_NAK, REPLY_PDID, REPLY_PDCAP, REPLY_CCRYPT, REPLY_RMAC_I = 0x40, 0x41, 0x45, 0x46, 0x76, 0x78
CAP_COMMUNICATION_SECURITY = 9
NAK_SC_UNSUPPORTED = 5     # the PD does not support the security block received
NAK_SC_REQUIRED = 6        # communication security conditions not met: the PD refuses plain commands


# ---------------------------------------------------------------------- typed events
@dataclass(frozen=True)
class CardRead:
    """A card was presented at ``reader`` (the PD's key); ``card`` is the canonical id."""

    reader: str
    card: str
    bits: int
    at: float = 0.0  # time.monotonic() when the CP received it


@dataclass(frozen=True)
class InputChange:
    """Input ``number`` of ``reader`` changed (``active``: contact open for a door contact)."""

    reader: str
    number: int
    active: bool


@dataclass(frozen=True)
class ReaderStatus:
    """The PD went online or offline; ``secure`` = secure channel active."""

    reader: str
    online: bool
    secure: bool = False
    reason: str = ""


@dataclass(frozen=True)
class ReaderError:
    """Something counted, not fatal (a malformed card read, a port error)."""

    reader: str
    what: str


OsdpEvent = Union[CardRead, InputChange, ReaderStatus, ReaderError]


@dataclass(frozen=True)
class PdSpec:
    """One reader on the bus: our key for it, its OSDP address, and its SCBK (None = plain).

    ``key_source`` names where the SCBK came from (the scbk_file), for the offline reason.
    """

    key: str
    address: int
    scbk: bytes | None = None
    install_mode: bool = False
    key_source: str = ""


def load_scbk(path: str | Path) -> bytes:
    """A secure channel key file: 32 hex digits (whitespace ignored)."""
    text = "".join(Path(path).read_text(encoding="ascii").split())
    key = bytes.fromhex(text)
    if len(key) != 16:
        raise ValueError(f"{path}: SCBK must be 16 bytes (32 hex digits), got {len(key)}")
    return key


# ---------------------------------------------------------------------- secure-channel diagnosis
def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """OSDP's CRC-16 (CCITT polynomial 0x1021, initial value 0x1D0F), sent low byte first."""
    crc = 0x1D0F
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ b]
    return crc


def parse_frames(buf: bytearray) -> list[tuple[int, int, bytes]]:
    """Take every complete, intact OSDP packet off the front of ``buf``: ``(address byte, code, data)``.

    The address byte keeps bit 7 (set on replies). Bytes before a start-of-message, and packets
    whose CRC/checksum does not hold, are dropped; an incomplete packet stays in ``buf``.
    Data of a secure-channel packet stays encrypted (only the handshake's plain parts are used).
    """
    out: list[tuple[int, int, bytes]] = []
    while True:
        start = buf.find(SOM)
        if start < 0:
            buf.clear()
            return out
        del buf[:start]
        if len(buf) < 6:
            return out
        length = buf[2] | (buf[3] << 8)
        if not 7 <= length <= 1440:
            del buf[:1]
            continue
        if len(buf) < length:
            return out
        pkt, ctrl = bytes(buf[:length]), buf[4]
        if ctrl & 0x04:
            ok = crc16(pkt[:-2]) == (pkt[-2] | (pkt[-1] << 8))
            body_end = length - 2
        else:
            ok = (sum(pkt) & 0xFF) == 0
            body_end = length - 1
        if not ok:
            del buf[:1]
            continue
        del buf[:length]
        pos = 5
        if ctrl & 0x08:  # security block: length, type, data
            sec_type = pkt[6] if length > 6 else 0
            pos += pkt[5] if length > 5 else 0
            if sec_type >= 0x15:
                body_end -= 4  # MAC
        if pos < body_end:
            out.append((pkt[1], pkt[pos], pkt[pos + 1:body_end]))


@dataclass
class _Handshake:
    """What one PD did in the current connection attempt (set by :class:`_FrameTap`)."""

    step: str = ""            # "" | id | cap | chlng | ccrypt | scrypt | rmac | online | nak
    crypt_rejected: bool = False  # the CP did not go on to osdp_SCRYPT after the PD's osdp_CCRYPT
    nak_code: int = 0
    nak_to: str = ""          # the step the NAK answered
    sc_capable: bool | None = None  # from osdp_PDCAP (None: not reported)
    replied: bool = False     # the PD answered anything in this attempt


class _FrameTap:
    """Follows the secure-channel handshake per PD address from the CP's own traffic.

    An attempt starts when the CP sends osdp_ID. Passive and best effort: it never changes a
    byte, and a garbled packet is simply not seen (libosdp decides; this only explains).
    """

    def __init__(self) -> None:
        self.tx = bytearray()
        self.rx = bytearray()
        self.pds: dict[int, _Handshake] = {}

    def wrote(self, data: bytes) -> None:
        self.tx += data
        for addr, code, _ in parse_frames(self.tx):
            if addr & 0x80 or addr == 0x7F:
                continue  # an echo of a reply, or a broadcast
            if code == CMD_ID:
                self.pds[addr] = _Handshake(step="id")
                continue
            hs = self.pds.setdefault(addr, _Handshake())
            if hs.step == "ccrypt" and code != CMD_SCRYPT:
                hs.crypt_rejected = True  # libosdp could not verify the PD's cryptogram
            if code == CMD_CAP:
                hs.step = "cap"
            elif code == CMD_CHLNG:
                hs.step = "chlng"
            elif code == CMD_SCRYPT:
                hs.step = "scrypt"
            elif code != CMD_KEYSET:
                hs.step = "online"

    def read(self, data: bytes) -> None:
        self.rx += data
        for addr, code, body in parse_frames(self.rx):
            if not addr & 0x80:
                continue  # our own command echoed by a half-duplex converter
            hs = self.pds.setdefault(addr & 0x7F, _Handshake())
            hs.replied = True
            if code == REPLY_NAK:
                hs.nak_to, hs.step = hs.step, "nak"
                hs.nak_code = body[0] if body else 0
            elif code == REPLY_PDCAP:
                for i in range(0, len(body) - 2, 3):
                    if body[i] == CAP_COMMUNICATION_SECURITY:
                        hs.sc_capable = bool(body[i + 1] & 0x01)
                if hs.sc_capable is None:
                    hs.sc_capable = False  # not listed: no secure channel
            elif code == REPLY_CCRYPT:
                hs.step = "ccrypt"
            elif code == REPLY_RMAC_I:
                hs.step = "rmac"

    def why(self, address: int, secure_expected: bool) -> str:
        """Why the PD at ``address`` is not (securely) online, from its last attempt ("" = no idea)."""
        hs = self.pds.get(address)
        if hs is None or not hs.replied:
            return ""
        if secure_expected:
            if hs.sc_capable is False and hs.step in ("cap", "online"):
                return "reader does not support the secure channel (osdp_PDCAP); a plain link is not allowed " \
                       "while scbk_file is set"
            if hs.step == "ccrypt" or hs.crypt_rejected:
                return "key mismatch: the reader's cryptogram does not verify with our SCBK"
            if hs.step == "nak" and hs.nak_to == "scrypt":
                return f"key mismatch: the reader could not verify our cryptogram (NAK {hs.nak_code} to osdp_SCRYPT)"
            if hs.step == "nak" and hs.nak_to == "chlng":
                return f"the reader refused the secure channel handshake (NAK {hs.nak_code} to osdp_CHLNG)"
        elif hs.step == "nak" and hs.nak_code in (NAK_SC_UNSUPPORTED, NAK_SC_REQUIRED):
            return f"the reader requires a secure channel (NAK {hs.nak_code}): set scbk_file"
        return ""


# ---------------------------------------------------------------------- channel
def _channel_base() -> type:
    from osdp import Channel

    return Channel


class SerialChannel(_channel_base()):  # type: ignore[misc]
    """libosdp Channel over a pyserial URL; reopens the port after errors (unplugged converter).

    Never raises into libosdp: errors are remembered and reported by the bus thread.
    """

    def __init__(self, url: str, baud: int) -> None:
        super().__init__()
        self.url = url
        self.baud = baud
        self.port: Any = None
        self.last_error = ""
        self.errors = 0
        #: monotonic time the line went down (None while it is up)
        self.down_since: float | None = None
        self._next_open = 0.0
        self.tap = _FrameTap()

    def _ensure(self) -> Any:
        if self.port is not None:
            return self.port
        now = time.monotonic()
        if now < self._next_open:
            return None
        self._next_open = now + REOPEN_S
        import serial

        try:
            self.port = serial.serial_for_url(self.url, baudrate=self.baud, timeout=0, write_timeout=1)
        except (serial.SerialException, OSError, ValueError) as exc:
            self._fail(f"open {self.url}: {exc}")
        return self.port

    def _fail(self, what: str) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("osdp: %s", what)
        else:
            log.debug("osdp: %s", what)
        self.last_error = what
        self.errors += 1
        self.close()

    def read(self, max_bytes: int) -> bytes:
        port = self._ensure()
        if port is None:
            return b""
        try:
            data = port.read(max_bytes) or b""
            if data:
                self.tap.read(data)
            if data and self.down_since is not None:
                log.info("osdp: %s answers again", self.url)
                self.down_since = None
                self.last_error = ""
            return data
        except Exception as exc:
            self._fail(f"read {self.url}: {exc}")
            return b""

    def write(self, buf: bytes) -> int:
        port = self._ensure()
        if port is None:
            return len(buf)  # the bytes are lost on a dead line, like on a cut RS-485 pair
        try:
            n = port.write(buf) or 0
            self.tap.wrote(bytes(buf[:n]))
            return n
        except Exception as exc:
            self._fail(f"write {self.url}: {exc}")
            return len(buf)

    def flush(self) -> None:
        port = self.port
        if port is not None:
            try:
                port.reset_input_buffer()
            except Exception:
                pass

    def close(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            except Exception:
                pass
            self.port = None


# ---------------------------------------------------------------------- the bus
@dataclass
class _PdState:
    spec: PdSpec
    index: int
    online: bool | None = None
    secure: bool = False
    offline_since: float = 0.0
    inputs: bytes | None = None
    last_retry: float = 0.0
    pending: tuple[bool, bool] | None = None
    pending_checks: int = 0
    reason: str = ""          # the offline reason last reported
    refused: str = ""         # set when the bus itself refused the link in this attempt
    extra: dict[str, Any] = field(default_factory=dict)


class OsdpBus:
    """All PDs on one port; ``start()`` spawns the CP thread, events go to ``queue`` on ``loop``."""

    def __init__(self, url: str, baud: int, pds: list[PdSpec], loop: asyncio.AbstractEventLoop,
                 queue: "asyncio.Queue[OsdpEvent]", *, refresh_s: float = REFRESH_S) -> None:
        if not pds:
            raise ValueError("an OSDP bus needs at least one PD")
        self.url = url
        self.baud = baud
        self.loop = loop
        self.queue = queue
        self.refresh_s = refresh_s
        self.channel = SerialChannel(url, baud)
        self.pds = {spec.key: _PdState(spec, i) for i, spec in enumerate(pds)}
        self._by_index = {st.index: st for st in self.pds.values()}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self.cp: Any = None
        self.backoff_min_s = CRASH_BACKOFF_MIN_S
        self.backoff_max_s = CRASH_BACKOFF_MAX_S
        self.healthy_s = HEALTHY_S
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
            flags = []
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
                          stats=self.stats, rebuild=self._rebuild, backoff_min_s=self.backoff_min_s,
                          backoff_max_s=self.backoff_max_s, healthy_s=self.healthy_s)

    def _crashed(self, reason: str) -> None:
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
                now = time.monotonic()
                if now >= next_status:
                    next_status = now + STATUS_EVERY_S
                    self._check_status(ctx, now)
            time.sleep(self.refresh_s)

    def _check_status(self, ctx: Any, now: float) -> None:
        online_mask = ctx.status()
        sc_mask = ctx.sc_status()
        down = self.channel.down_since
        line_dead = down is not None and now - down > LINE_DEAD_S
        for st in self.pds.values():
            # a dead line means every PD on it is gone, well before libosdp's retries give up
            link = bool(online_mask & (1 << st.index)) and not line_dead
            secure = bool(sc_mask & (1 << st.index))
            if link and not secure and st.spec.scbk is not None:
                # libosdp fell back to plain text (install mode only: EnforceSecure never does). Not from us:
                # stop polling it now; the retry below tries the handshake again.
                st.refused = ("key mismatch: the reader accepted neither our SCBK nor the install-mode default "
                              "key (SCBK-D)")
                log.debug("osdp: %s came up without a secure channel; refused", st.spec.key)
                self._knock(ctx, st, enable=False)
                link = False
            online = link
            if st.online is None and not online and now - self._started < STARTUP_GRACE_S:
                continue  # still coming up: not news yet
            if online != st.online or (online and secure != st.secure):
                # a change must hold for STABLE_CHECKS checks: a PD being re-enabled flickers
                if st.pending != (online, secure):
                    st.pending, st.pending_checks = (online, secure), 1
                else:
                    st.pending_checks += 1
                if st.pending_checks < STABLE_CHECKS and st.online is not None:
                    continue
                st.pending_checks = 0
                st.online, st.secure = online, secure
                if online:
                    st.inputs = None  # report the contact afresh once it speaks again
                    st.reason = ""
                    self._put(ReaderStatus(st.spec.key, True, secure))
                else:
                    st.offline_since = now
                    st.reason = self._offline_reason(st)
                    if st.reason.startswith("OSDP"):
                        log.error("osdp: %s offline: %s", st.spec.key, st.reason)
                    self._put(ReaderStatus(st.spec.key, False, False, st.reason))
            else:
                st.pending, st.pending_checks = None, 0
            if not online and now - st.offline_since > RETRY_OFFLINE_S and now - st.last_retry > RETRY_OFFLINE_S:
                if st.online is False:
                    # the attempt that just ended may tell more (a reader swapped, a line cut since)
                    reason = self._offline_reason(st)
                    if reason != st.reason:
                        st.reason = reason
                        self._put(ReaderStatus(st.spec.key, False, False, reason))
                # libosdp parks an offline PD for minutes; knock it back to INIT now
                st.last_retry = now
                st.refused = ""
                self._knock(ctx, st)

    def _knock(self, ctx: Any, st: _PdState, *, enable: bool = True) -> None:
        """Disable the PD (libosdp stops talking to it) and, with ``enable``, start it afresh from INIT."""
        try:
            if ctx.is_pd_enabled(st.index):
                ctx.disable_pd(st.index)
                ctx.refresh()
            if enable:
                ctx.enable_pd(st.index)
        except Exception as exc:  # pragma: no cover - depends on the PD's state
            log.debug("osdp: re-enable %s: %s", st.spec.key, exc)

    def _offline_reason(self, st: _PdState) -> str:
        """Why ``st`` is offline, as specific as the bus traffic allows."""
        if self.channel.down_since is not None and self.channel.last_error:
            return self.channel.last_error
        keyed = st.spec.scbk is not None
        seen = self.channel.tap.why(st.spec.address, keyed)
        why = seen if seen.startswith("reader does not support") else (st.refused or seen)
        if why and keyed:
            where = f"check scbk_file {st.spec.key_source}" if st.spec.key_source else "check the reader's scbk_file"
            if why.startswith("key mismatch") and not st.spec.install_mode:
                where += "; a factory-fresh reader needs install_mode = true once"
            return f"OSDP secure channel refused: {why} ({where})"
        if why:
            return f"OSDP plain link refused: {why}"
        return self.channel.last_error or "no reply"

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
        try:
            kind = event.get("event")
            from osdp import Event, StatusReportType

            if kind == Event.CardRead:
                self._card(st, event)
            elif kind == Event.Status and event.get("type") == StatusReportType.Input:
                self._inputs(st, bytes(event.get("report", b"")))
        except Exception as exc:  # a malformed event must not stop the bus
            self._put(ReaderError(st.spec.key, f"event: {exc}"))
        return 0

    def _card(self, st: _PdState, event: dict[str, Any]) -> None:
        data = bytes(event.get("data", b""))
        bits = int(event.get("length", len(data) * 8))
        try:
            card = card_id(bits, data)
        except CardFormatError as exc:
            self.stats["bad_card_reads"] += 1
            self._put(ReaderError(st.spec.key, f"card read: {exc}"))
            return
        self.stats["card_reads"] += 1
        self._put(CardRead(st.spec.key, card, bits, time.monotonic()))

    def _inputs(self, st: _PdState, report: bytes) -> None:
        old = st.inputs
        st.inputs = report
        for i, value in enumerate(report):
            if old is None or i >= len(old) or bool(old[i]) != bool(value):
                self._put(InputChange(st.spec.key, i, bool(value)))

    def _put(self, ev: OsdpEvent) -> None:
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

    def output(self, key: str, number: int, *, on: bool | None = None, pulse_s: float | None = None) -> bool:
        """Drive a relay: ``pulse_s`` = on for that long (max 25.5 s per command); or permanent ``on``."""
        from osdp import Command

        if pulse_s is not None:
            ticks = max(1, min(255, round(pulse_s * 10)))
            cmd = {"command": Command.Output, "output_no": number, "control_code": OUT_TEMP_ON, "timer_count": ticks}
        else:
            cmd = {"command": Command.Output, "output_no": number, "control_code": OUT_ON if on else OUT_OFF,
                   "timer_count": 0}
        return self._submit(key, cmd)

    def led(self, key: str, color: str, seconds: float = 2.0) -> bool:
        """Show ``color`` (green, red, amber, ...) for ``seconds``, then back to the reader's idle colour."""
        from osdp import Command, CommandLEDColor

        code = getattr(CommandLEDColor, color.capitalize(), CommandLEDColor.Red)
        ticks = max(1, min(255, round(seconds * 10)))
        return self._submit(key, {"command": Command.LED, "reader": 0, "led_number": 0, "control_code": 1,
                                  "on_color": code, "off_color": CommandLEDColor.Black, "on_count": ticks,
                                  "off_count": 0, "temporary": True, "timer_count": ticks})

    def buzz(self, key: str, times: int = 1, on_s: float = 0.1) -> bool:
        """Beep ``times`` (osdp_BUZ: tone on/off in 100 ms units)."""
        from osdp import Command

        ticks = max(1, min(255, round(on_s * 10)))
        return self._submit(key, {"command": Command.Buzzer, "reader": 0, "control_code": 2, "on_count": ticks,
                                  "off_count": ticks, "rep_count": max(1, min(255, times))})
