"""OSDP card data -> card ids: osdp_RAW (bits) and osdp_FMT (characters), from libosdp and off the wire.

* **osdp_RAW** (reply 0x50): reader number, format code (0x00 = raw bit array, format not
  specified; 0x01 = Wiegand "P/data/P"), bit count (2 bytes, LSB first), the bits left-justified,
  MSB first. Id ``"<bits>:<hex>"``; the format code does not change it (the same bits are the same
  card, whichever way the reader labels them). libosdp's ``CardFormat.Unspecified`` / ``Wiegand``.
* **osdp_FMT** (reply 0x51): reader number, read direction (0 forward, 1 reverse), character
  count, the characters. Its length is a count of *characters*, not bits: taken as bits it would
  give ``"10:..."`` for ten characters, and two cards sharing their first bits the same id. Id
  ``"ascii:<hex of the characters>"`` (:func:`drivers.cards.ascii_card_id`), reversed reads put
  back in order. The count byte is checked against the characters the packet carries; a count
  2 or 3 higher (a reader counting START, END, CKSUM; libosdp issue #206) is accepted, as the
  packet length is CRC-protected and authoritative.

osdp_FMT is deprecated since OSDP 2.2.2 and libosdp 3.1+ neither sends nor parses it (its CP logs
"Ignoring deprecated response osdp_FMT" and treats it as an ACK). Readers in the field still send
it, so :class:`FmtTap` reads it off the bytes the CP receives. Only a plain-text reader's osdp_FMT
can be used this way: under the secure channel its data is encrypted with session keys that live
inside libosdp, and an unverified MAC must never open a door (see :func:`drivers.osdp.events.fmt_read`).
Pure: bytes and dicts in, ids out; errors are :class:`~drivers.cards.CardFormatError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivers.cards import CardFormatError, ascii_card_id, card_id
from drivers.osdp.frames import packets

REPLY_RAW, REPLY_FMT = 0x50, 0x51
RAW_UNSPECIFIED, RAW_WIEGAND = 0x00, 0x01   # osdp_RAW format codes
LIBOSDP_RAW_FORMATS = (0, 1)                 # osdp.CardFormat.Unspecified, .Wiegand
LIBOSDP_ASCII = 2                            # osdp.CardFormat.ASCII
FMT_EXTRA_COUNTS = (0, 2, 3)                 # a count of the characters, or with START/END(/CKSUM) counted
TAP_KEEP = 64                                # osdp_FMT reads held until the bus takes them


def raw_card(bits: int, data: bytes) -> str:
    """osdp_RAW's bits as a card id; the data must hold exactly the bytes ``bits`` needs."""
    if len(data) != (bits + 7) // 8:
        raise CardFormatError(f"osdp_RAW: {bits} bits need {(bits + 7) // 8} bytes, got {len(data)}")
    return card_id(bits, data)


def fmt_card(direction: int, count: int, chars: bytes) -> str:
    """osdp_FMT's characters as a card id (reverse reads put back in order)."""
    if direction not in (0, 1):
        raise CardFormatError(f"osdp_FMT: read direction {direction} (0 forward, 1 reverse)")
    if count - len(chars) not in FMT_EXTRA_COUNTS:
        raise CardFormatError(f"osdp_FMT: character count {count} but {len(chars)} characters")
    return ascii_card_id(chars[::-1] if direction == 1 else chars)


def decode_raw_reply(body: bytes) -> tuple[int, str]:
    """An osdp_RAW reply's data -> (reader number, card id)."""
    if len(body) < 4:
        raise CardFormatError(f"osdp_RAW: {len(body)} bytes, the header alone is 4")
    return body[0], raw_card(body[2] | (body[3] << 8), body[4:])


def decode_fmt_reply(body: bytes) -> tuple[int, str]:
    """An osdp_FMT reply's data -> (reader number, card id)."""
    if len(body) < 3:
        raise CardFormatError(f"osdp_FMT: {len(body)} bytes, the header alone is 3")
    return body[0], fmt_card(body[1], body[2], body[3:])


def event_card(event: dict[str, Any]) -> tuple[str, int]:
    """A libosdp CardRead event -> (card id, bit count; 0 for characters)."""
    fmt = int(event.get("format", 0))
    data = bytes(event.get("data", b""))
    if fmt == LIBOSDP_ASCII:  # libosdp gives the characters as data, with no length (a count, not bits)
        return fmt_card(int(event.get("direction", 0)), len(data), data), 0
    if fmt not in LIBOSDP_RAW_FORMATS:
        raise CardFormatError(f"card read in format {fmt}: not raw bits (0, 1) or characters (2)")
    bits = int(event["length"]) if "length" in event else len(data) * 8
    return raw_card(bits, data), bits


@dataclass(frozen=True)
class FmtRead:
    """An osdp_FMT reply seen on the bus: the PD address, its data, and its security block type (0 = plain)."""

    address: int
    data: bytes
    sec_type: int = 0


class FmtTap:
    """osdp_FMT replies off the bytes the CP receives (libosdp ignores them); :meth:`take` hands them over.

    A reply repeated with the same sequence number and bytes is the PD answering a repeated poll,
    not a second swipe: it is taken once.
    """

    def __init__(self) -> None:
        self.rx = bytearray()
        self.last: dict[int, bytes] = {}
        self.found: list[FmtRead] = []

    def read(self, data: bytes) -> None:
        self.rx += data
        for pkt in packets(self.rx):
            if not pkt.addr & 0x80:
                continue  # a command (our own, echoed by a half-duplex converter)
            address = pkt.addr & 0x7F
            key = bytes([pkt.ctrl & 0x0B, pkt.code]) + pkt.data
            repeated = self.last.get(address) == key
            self.last[address] = key
            if pkt.code == REPLY_FMT and not repeated and len(self.found) < TAP_KEEP:
                self.found.append(FmtRead(address, pkt.data, pkt.sec_type))

    def take(self) -> list[FmtRead]:
        found, self.found = self.found, []
        return found
