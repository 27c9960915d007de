"""The outer layer of a DC-09 block: ``LF CRC(4 hex) 0LLL(3 hex) "..." CR``, both ways.

:func:`frame` wraps a block's content for the wire; :class:`Framer` cuts a TCP byte stream
back into the bodies between LF and CR (several per read, one split over reads), dropping
and counting noise, so a misbehaving panel costs bytes, never a stuck connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.sia_dc09.crc import crc16_arc

LF, CR = 0x0A, 0x0D
MAX_BLOCK = 1024          # bytes between LF and CR; anything longer is garbage


def frame(content: str) -> bytes:
    """Wrap the span from ``"`` to the end with LF, CRC, length and CR."""
    raw = content.encode("ascii")
    return b"\n" + f"{crc16_arc(raw):04X}0{len(raw):03X}".encode() + raw + b"\r"


@dataclass
class Framer:
    """Cuts a byte stream into LF...CR blocks: several per read, one split over reads.

    Bytes outside a block and over-long blocks are dropped and counted (``garbage``).
    """

    max_block: int = MAX_BLOCK
    buf: bytearray = field(default_factory=bytearray)
    garbage: int = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out: list[bytes] = []
        while True:
            start = self.buf.find(b"\n")
            if start < 0:
                self.garbage += len(self.buf)
                self.buf.clear()
                return out
            if start:
                self.garbage += start
                del self.buf[:start]
            end = self.buf.find(b"\r", 1)
            nxt = self.buf.find(b"\n", 1)
            if nxt > 0 and (end < 0 or nxt < end):
                self.garbage += nxt     # a new LF before the CR: the first start was noise
                del self.buf[:nxt]
                continue
            if end < 0:
                if len(self.buf) > self.max_block + 2:
                    self.garbage += len(self.buf)
                    self.buf.clear()
                return out
            out.append(bytes(self.buf[1:end]))
            del self.buf[: end + 1]
