"""The byte pipe of one simulated PD: its own copy of the shared bus in, the shared socket out.

Every PD on an RS-485 bus hears every byte; here each gets its own receive buffer, filled by the
simulator's thread, and writes straight to the one TCP connection. A PD configured without a
secure channel has its osdp_PDCAP rewritten on the way out (libosdp's PD always offers one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drivers.osdp.frames import CAP_COMMUNICATION_SECURITY, REPLY_PDCAP, SOM, crc16

if TYPE_CHECKING:  # pragma: no cover - typing only
    from drivers.sim.osdp_reader import OsdpReaderSim, SimPd


def _without_sc_capability(data: bytes) -> bytes:
    """Rewrite an osdp_PDCAP reply so it reports no communication security (compliance 0), CRC fixed."""
    start = data.find(SOM)
    if start < 0 or len(data) < start + 8 or data[start + 4] & 0x0C != 0x04 or data[start + 5] != REPLY_PDCAP:
        return data  # not a plain, CRC-checked PDCAP (libosdp writes one whole packet per call)
    pkt = bytearray(data[start:])
    length = pkt[2] | (pkt[3] << 8)
    if length != len(pkt):
        return data
    for i in range(6, length - 2 - 2, 3):
        if pkt[i] == CAP_COMMUNICATION_SECURITY:
            pkt[i + 1] = 0
    crc = crc16(bytes(pkt[:-2]))
    pkt[-2:] = bytes([crc & 0xFF, crc >> 8])
    return bytes(data[:start]) + bytes(pkt)


class PdChannel:
    """libosdp Channel of one PD: reads its own copy of the bus, writes to the shared socket."""

    def __new__(cls, *a: Any, **kw: Any) -> Any:  # build the subclass lazily (import osdp on use)
        from osdp import Channel

        class Impl(Channel):
            def __init__(self, sim: OsdpReaderSim, pd: SimPd) -> None:
                super().__init__()
                self.sim, self.simpd = sim, pd

            def read(self, max_bytes: int) -> bytes:
                buf = self.simpd.rx
                out = bytes(buf[:max_bytes])
                del buf[:max_bytes]
                return out

            def write(self, data: bytes) -> int:
                if not self.simpd.sc_capable:
                    data = _without_sc_capability(data)
                return self.sim._send(data)

            def flush(self) -> None:
                self.simpd.rx.clear()

        return Impl(*a, **kw)
