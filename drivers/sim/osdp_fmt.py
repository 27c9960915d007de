"""Simulated readers that send card data as characters (osdp_FMT), which libosdp's PD no longer does.

libosdp 3.1+ drops a CardRead event in ``CardFormat.ASCII`` ("deprecated. Ignoring"), yet readers
in the field still answer a poll with osdp_FMT. To put such a reply on the wire, the simulator
lets the libosdp PD answer the CP's osdp_POLL as usual and swaps its plain osdp_ACK for an
osdp_FMT with the same address, control byte (sequence number, CRC or checksum) and a queued
payload: reader number, read direction, character count, characters. Only plain-text replies are
swapped (a secure-channel reply is encrypted with keys inside libosdp).
"""

from __future__ import annotations

from collections import defaultdict, deque

from drivers.osdp.frames import SOM, crc16, parse_frames

CMD_POLL, REPLY_ACK, REPLY_FMT = 0x60, 0x40, 0x51


def fmt_payload(chars: bytes, *, reader_no: int = 0, direction: int = 0, count: int | None = None) -> bytes:
    """osdp_FMT data: reader number, read direction, character count (default: the characters'), characters."""
    n = len(chars) if count is None else count
    return bytes([reader_no & 0xFF, direction & 0xFF, n & 0xFF]) + chars


def reply_packet(addr: int, ctrl: int, code: int, data: bytes) -> bytes:
    """A plain reply packet from PD ``addr`` with the CRC or checksum its control byte asks for."""
    body = bytes([SOM, 0x80 | addr, 0, 0, ctrl & 0x07, code]) + data
    length = len(body) + (2 if ctrl & 0x04 else 1)
    body = body[:2] + length.to_bytes(2, "little") + body[4:]
    if ctrl & 0x04:
        crc = crc16(body)
        return body + bytes([crc & 0xFF, crc >> 8])
    return body + bytes([(-sum(body)) & 0xFF])


class FmtInjector:
    """Queues osdp_FMT payloads per PD address and swaps them in for the PD's next ACK to a poll."""

    def __init__(self) -> None:
        self.queued: dict[int, deque[bytes]] = defaultdict(deque)
        self.last_cmd: dict[int, int] = {}
        self._rx = bytearray()

    def queue(self, address: int, payload: bytes) -> None:
        self.queued[address].append(payload)

    def commands(self, data: bytes) -> None:
        """Follow what the CP sends: the last command code per PD address."""
        self._rx += data
        for addr, code, _ in parse_frames(self._rx):
            if not addr & 0x80:
                self.last_cmd[addr & 0x7F] = code

    def outgoing(self, data: bytes) -> bytes:
        """A PD's write: its plain ACK to a poll becomes the next queued osdp_FMT, if any."""
        start = data.find(SOM)
        if start < 0 or len(data) < start + 7:
            return data
        pkt = data[start:]
        addr, ctrl, code = pkt[1] & 0x7F, pkt[4], pkt[5]
        length = pkt[2] | (pkt[3] << 8)
        if (not pkt[1] & 0x80 or ctrl & 0x08 or code != REPLY_ACK or length != len(pkt)
                or self.last_cmd.get(addr) != CMD_POLL or not self.queued.get(addr)):
            return data
        return data[:start] + reply_packet(addr, ctrl, REPLY_FMT, self.queued[addr].popleft())
