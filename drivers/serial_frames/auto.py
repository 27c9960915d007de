"""``auto``: a port that may carry STX frames (RDM6300 or ID-xxLA) and text lines alike.

For a reader whose exact output is not known: STX frames are decoded as ``rdm6300``/``id12la``
(checksum checked), a line of 26 or more 0/1 digits or a canonical id as ``wiegand`` (parity
checked), and any other printable line as ``line`` (its characters are the card). A line of
digits is therefore *characters* here: a converter that sends Wiegand data bits in hex or
decimal needs ``wiegand-hex`` / ``wiegand-decimal`` to get the frame's bit id.
"""

from __future__ import annotations

from drivers.serial_frames.lines import FRAME_BYTES, LineParser
from drivers.serial_frames.result import MAX_LINE, ParserStats, Result, shown
from drivers.serial_frames.stx import CR, LF, STX, StxParser


class AutoParser:
    def __init__(self) -> None:
        self.buf = bytearray()
        self.stats = ParserStats()
        self.stx = StxParser("stx")
        self.lines = LineParser("auto")
        self.stx.buf = self.buf  # one buffer: a frame and a line may follow each other in any order
        self.stx.stats = self.lines.stats = self.stats

    def feed(self, data: bytes) -> list[Result]:
        self.buf += data
        out: list[Result] = []
        while self.buf:
            if self.buf[0] == STX:
                taken = self.stx.frame(out)
                if taken == 0:
                    break
                del self.buf[:taken]
                continue
            stx = self.buf.find(STX)
            end = min((i for i in (self.buf.find(CR), self.buf.find(LF)) if i >= 0), default=-1)
            if stx > 0 and (end < 0 or stx < end):  # bytes, then a frame: not a line
                junk = bytes(self.buf[:stx])
                if junk.strip(FRAME_BYTES + b"\r\n"):
                    out.append(self.stats.refuse("garbage", f"{len(junk)} bytes before a frame: {shown(junk)}"))
                del self.buf[:stx]
            elif end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 1]
                if line.strip(FRAME_BYTES):
                    out.append(self.lines.parse_line(line))
            else:
                if len(self.buf) > MAX_LINE:
                    out.append(self.stats.refuse("overlong", f"no line end in {len(self.buf)} bytes"))
                    self.buf.clear()
                break
        return out
