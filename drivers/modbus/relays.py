"""A Modbus relay board: door locks on coils, kept in the state the gateway wants and read back.

Why a desired-state loop rather than fire-and-forget writes: a board that was unplugged, lost power
or rebooted comes back with its coils off -- a door held released for a fire would lock again without
anyone knowing. :class:`RelayBoard` keeps what each coil should be (on, off, or on until a pulse ends),
writes whatever differs from what the board last confirmed, and reads the coils back every
``verify_s`` to catch a board that forgot. While the board does not answer it is offline (reported
once through ``on_status``) and retried; every coil is written again once it answers.

Only the two functions every relay board has are used: Write Single Coil (05; 0xFF00 on, 0x0000 off)
and Read Coils (01). Pulses are timed here, not with a vendor's "flash" registers, so one driver fits
any board: a pulse is "on now, off at its end", the OSDP output's semantics. Protocol only: no
gateway imports.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from drivers.asyncwait import wait_set
from drivers.modbus.errors import ModbusError, ModbusFramingError
from drivers.modbus.transport import ModbusBus
from drivers.reasons import BUS_ERROR, NONE, Reason

#: how often the coils are read back (a rebooted board is noticed, and re-driven, within this)
VERIFY_S = 2.0
#: retry a silent board after this long, doubling up to RETRY_MAX_S (a new command retries at once)
RETRY_S = 0.5
RETRY_MAX_S = 5.0
#: Read Coils reads at most this many coils in one request (Modbus limit 2000)
MAX_READ = 2000

StatusHook = Callable[[bool, Reason], Awaitable[None]]


class RelayBus(ModbusBus):
    """A Modbus bus with the coil functions a relay board needs (one request at a time, as for meters)."""

    def close_now(self) -> None:
        """Close the link without waiting (the gateway is stopping)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def write_coil(self, address: int, on: bool, device_id: int) -> None:
        """Write Single Coil (05): 0xFF00 = on, 0x0000 = off."""
        async with self._lock:
            client = await self._ready()
            await self._call(client.write_coil(address, on, device_id=device_id))

    async def read_coils(self, address: int, count: int, device_id: int) -> list[bool]:
        """Read Coils (01): ``count`` states from ``address``."""
        async with self._lock:
            client = await self._ready()
            rr = await self._call(client.read_coils(address, count=count, device_id=device_id))
            bits = list(rr.bits)
            if len(bits) < count:
                self.stats.failures += 1
                raise ModbusFramingError(f"asked {count} coils, got {len(bits)}")
            return [bool(b) for b in bits[:count]]


@dataclass
class Coil:
    """One coil: what it should be, until when (a pulse), and what the board last confirmed."""

    on: bool = False
    until: float | None = None      # monotonic end of a pulse
    written: bool | None = None     # None = unknown (never written, or the board was away)


class RelayBoard:
    """One board (a device id on a bus) driving ``coils``; :meth:`run` keeps it in step, forever."""

    def __init__(self, bus: RelayBus, device_id: int, coils: Iterable[int], *, verify_s: float = VERIFY_S,
                 on_status: StatusHook | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.device_id = device_id
        self.coils: dict[int, Coil] = {c: Coil() for c in sorted(set(coils))}
        if not self.coils:
            raise ValueError("a relay board needs at least one coil")
        self.verify_s = verify_s
        self.on_status = on_status
        self.clock = clock
        self.online: bool | None = None
        self.reason: Reason = NONE
        self.writes = 0
        self._verify_at = 0.0
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ commands (from the loop, never blocking)
    def set(self, coil: int, *, on: bool | None = None, pulse_s: float | None = None) -> None:
        """On for ``pulse_s`` seconds, or permanently ``on`` / off; written by :meth:`run` at once."""
        c = self.coils[coil]
        if pulse_s is not None:
            c.on, c.until = True, self.clock() + pulse_s
        else:
            c.on, c.until = bool(on), None
        self._wake.set()

    def wanted(self, coil: int) -> bool:
        return self.coils[coil].on

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        """Write what differs, read back every ``verify_s``; offline and retried while the board is silent."""
        retry = RETRY_S
        while True:
            self._wake.clear()   # before the pass: a command given during it wakes the next one
            try:
                again = await self.cycle()
                await self._report(True, NONE)
                retry = RETRY_S
                wait = 0.0 if again else self._next_deadline() - self.clock()
            except ModbusError as exc:
                for c in self.coils.values():
                    c.written = None          # unknown now: everything is written again when it answers
                self._verify_at = 0.0
                await self._report(False, BUS_ERROR(kind=exc.kind, error=exc))
                wait, retry = retry, min(retry * 2, RETRY_MAX_S)
            await self._sleep(wait)

    async def cycle(self) -> bool:
        """One pass: end due pulses, write coils that differ, read back when due. True = run again now."""
        now = self.clock()
        for c in self.coils.values():
            if c.until is not None and now >= c.until:
                c.on, c.until = False, None
        for address, c in self.coils.items():
            if c.written is not c.on:
                want = c.on
                await self.bus.write_coil(address, want, self.device_id)
                self.writes += 1
                c.written = want
        if now < self._verify_at:
            return False
        self._verify_at = now + self.verify_s
        return await self._verify()

    async def _verify(self) -> bool:
        """Read the coils back; a coil the board lost is marked unknown (rewritten next pass)."""
        lo, hi = min(self.coils), max(self.coils)
        drifted = False
        for start in range(lo, hi + 1, MAX_READ):
            count = min(MAX_READ, hi + 1 - start)
            if not any(start <= a < start + count for a in self.coils):
                continue
            states = await self.bus.read_coils(start, count, self.device_id)
            for address, c in self.coils.items():
                if start <= address < start + count and states[address - start] is not c.written:
                    c.written = None
                    drifted = True
        return drifted

    def _next_deadline(self) -> float:
        ends = [c.until for c in self.coils.values() if c.until is not None]
        return min([self._verify_at, *ends])

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0 or self._wake.is_set():
            return
        await wait_set(self._wake, seconds)

    async def _report(self, online: bool, reason: Reason) -> None:
        if self.online is online:
            return
        self.online, self.reason = online, reason
        if self.on_status is not None:
            await self.on_status(online, reason)


__all__ = ["RelayBoard", "RelayBus", "Coil", "VERIFY_S"]
