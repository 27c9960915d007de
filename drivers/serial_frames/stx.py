"""EM4100 tags through STX/ETX-framed ASCII readers: RDM6300-style modules and Innovations ID-xxLA.

* ``rdm6300`` (RDM6300/RDM630, Seeed 125 kHz UART module, 7941E and most EM4100 modules):
  ``STX(02) + 10 hex + 2 hex checksum + ETX(03)``, 14 bytes, repeated while the tag is held.
* ``id12la`` (Innovations ID-2LA/ID-12LA/ID-20LA in ASCII mode):
  ``STX(02) + 10 hex + 2 hex checksum + CR(0D) LF(0A) + ETX(03)``, 16 bytes, once per tag.

The 10 hex digits are the tag's 5 data bytes (version/customer byte + 32-bit id); the checksum
is the XOR of those 5 bytes. Either way the card id is the 40 bits: ``"40:<10 hex>"``, so one
tag reads the same on both kinds. The parser never raises; after any refusal it resynchronises
on the next STX, and a frame cut short (an ETX or a new STX too early) is refused at once
instead of waiting for bytes that will not come.
"""

from __future__ import annotations

from drivers.cards import em4100_card_id
from drivers.serial_frames.result import ParserStats, Result, shown

STX, ETX, CR, LF = 0x02, 0x03, 0x0D, 0x0A
HEX = frozenset(b"0123456789abcdefABCDEF")
BODY = 12                       # 10 hex data + 2 hex checksum
RDM6300_TAIL = bytes([ETX])
ID12LA_TAIL = bytes([CR, LF, ETX])
TAILS = {"rdm6300": (RDM6300_TAIL,), "id12la": (ID12LA_TAIL,), "stx": (RDM6300_TAIL, ID12LA_TAIL)}


def xor5(data: bytes) -> int:
    x = 0
    for b in data[:5]:
        x ^= b
    return x


def em4100_frame(raw5: bytes, tail: bytes = RDM6300_TAIL) -> bytes:
    """Build a valid frame (simulators, tests); ``tail=ID12LA_TAIL`` for the ID-xxLA form."""
    return bytes([STX]) + (raw5 + bytes([xor5(raw5)])).hex().upper().encode() + tail


def id12la_frame(raw5: bytes) -> bytes:
    return em4100_frame(raw5, ID12LA_TAIL)


class StxParser:
    """Streaming parser for ``rdm6300``, ``id12la`` or both (``stx``) frames."""

    def __init__(self, framing: str = "rdm6300") -> None:
        self.tails = TAILS[framing]
        self.framing = framing
        self.buf = bytearray()
        self.stats = ParserStats()
        self.skipping = False  # the rest of a refused frame (up to its ETX) is not refused again

    def feed(self, data: bytes) -> list[Result]:
        self.buf += data
        out: list[Result] = []
        while self.buf:
            start = self.buf.find(STX)
            if start != 0:
                junk = bytes(self.buf if start < 0 else self.buf[:start])
                if self.skipping and ETX in junk:  # the refused frame ends at its ETX; what follows is news
                    del self.buf[: junk.index(ETX) + 1]
                    self.skipping = False
                    continue
                if not self.skipping:
                    out.append(self.stats.refuse("garbage", f"{len(junk)} bytes outside a frame: {shown(junk)}"))
                    self.skipping = True
                del self.buf[: len(junk)]
                continue
            taken = self.frame(out)
            if taken == 0:
                break
            del self.buf[:taken]
        return out

    def frame(self, out: list[Result]) -> int:
        """Decode the frame at the front of ``buf`` into ``out``; how many bytes it took (0 = need more)."""
        buf = self.buf
        self.skipping = True  # until this frame is seen whole
        cut = next((i for i in range(1, min(len(buf), 1 + BODY)) if buf[i] in (STX, ETX, CR, LF)), None)
        if cut is not None:  # the frame ends (or a new one starts) before its 12 characters
            out.append(self.stats.refuse("framing", f"frame cut short: {shown(bytes(buf[:cut + 1]))}"))
            self.skipping = buf[cut] in (CR, LF)  # an ETX ended it, an STX starts the next one
            return cut + (buf[cut] != STX)
        if len(buf) < 1 + BODY:
            return 0
        for tail in self.tails:
            if len(buf) < 1 + BODY + len(tail) and bytes(buf[1 + BODY:]) == tail[: len(buf) - 1 - BODY]:
                return 0  # this tail may still complete
            if bytes(buf[1 + BODY: 1 + BODY + len(tail)]) == tail:
                out.append(self.decode(bytes(buf[1: 1 + BODY])))
                self.skipping = False  # a whole frame, good or bad, ends at its tail
                return 1 + BODY + len(tail)
        want = " or ".join(shown(t) for t in self.tails)
        out.append(self.stats.refuse("framing", f"no {want} after 12 characters ({self.framing}): "
                                                f"{shown(bytes(buf[:1 + BODY + 3]))}"))
        return 1  # not a frame here: look for the next STX

    def decode(self, body: bytes) -> Result:
        if not all(b in HEX for b in body):
            return self.stats.refuse("framing", f"not hex: {shown(body)}")
        raw = bytes.fromhex(body.decode("ascii"))
        if xor5(raw) != raw[5]:
            return self.stats.refuse("checksum", f"checksum {raw[5]:02X}, the data's XOR is {xor5(raw):02X}: "
                                                 f"{shown(body)}")
        return self.stats.accept(em4100_card_id(raw[:5]))
