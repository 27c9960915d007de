"""The outer layer of a DC-09 block: ``LF CRC 0LLL "..." CR``, both ways, in both CRC forms.

The standard CRC is four hex characters. Panels in the field (Lupusec, OPAX, Trikdis in
DC-09 2012 mode) send it as **two raw bytes** (big-endian) instead -- so a CRC byte may
itself be 0x0A or 0x0D. :class:`Framer` therefore looks at where the length field sits
(``0LLL"`` at offset 5 = hex CRC, at offset 3 = binary CRC) before it looks for the CR,
and never splits a block at a CRC byte. Answers go back in the form the block came in.

:func:`frame` wraps content for the wire; :class:`Framer` cuts a TCP byte stream back into
the bodies between LF and CR (several per read, one split over reads), dropping and counting
noise -- a misbehaving panel costs bytes, never a stuck connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.sia_dc09.crc import crc16_arc

LF, CR = 0x0A, 0x0D
MAX_BLOCK = 1024          # bytes between LF and CR; anything longer is garbage
_QUOTE, _ZERO = 0x22, 0x30


def frame(content: str | bytes, *, binary_crc: bool = False) -> bytes:
    """Wrap the span from ``"`` to the end with LF, CRC (4 hex, or 2 raw bytes), length and CR."""
    raw = content.encode("ascii") if isinstance(content, str) else content
    crc = crc16_arc(raw)
    head = crc.to_bytes(2, "big") if binary_crc else b"%04X" % crc
    return b"\n" + head + b"0%03X" % len(raw) + raw + b"\r"


def binary_crc_at(buf: bytes | bytearray, start: int = 0) -> bool | None:
    """Is the block at ``buf[start]`` (its LF, or its first CRC byte when ``start`` is past the LF)
    in the two-byte CRC form? None while too few bytes are there to tell."""
    if len(buf) < start + 10:
        if len(buf) >= start + 8 and buf[start + 3] == _ZERO and buf[start + 7] == _QUOTE:
            return True
        return None
    if buf[start + 5] == _ZERO and buf[start + 9] == _QUOTE:
        return False
    return buf[start + 3] == _ZERO and buf[start + 7] == _QUOTE


@dataclass
class Framer:
    """Cuts a byte stream into LF...CR blocks: several per read, one split over reads.

    Bytes outside a block (a panel's trailing NULs, noise) and over-long blocks are dropped
    and counted (``garbage``).
    """

    max_block: int = MAX_BLOCK
    buf: bytearray = field(default_factory=bytearray)
    garbage: int = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out: list[bytes] = []
        buf = self.buf
        while True:
            start = buf.find(b"\n")
            if start < 0:
                self.garbage += len(buf)
                buf.clear()
                return out
            if start:
                self.garbage += start
                del buf[:start]
            # past a binary CRC's two bytes (they may be LF or CR); every real block has 10+ bytes
            binary = binary_crc_at(buf)
            if binary is None:
                return out
            scan = 3 if binary else 1
            end = buf.find(b"\r", scan)
            nxt = buf.find(b"\n", scan)
            if nxt > 0 and (end < 0 or nxt < end):
                self.garbage += nxt     # a new LF before the CR: the first start was noise
                del buf[:nxt]
                continue
            if end < 0:
                if len(buf) > self.max_block + 2:
                    self.garbage += len(buf)
                    buf.clear()
                return out
            out.append(bytes(buf[1:end]))
            del buf[: end + 1]
