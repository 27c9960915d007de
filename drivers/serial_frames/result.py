"""What a framing parser makes of the bytes: a card, or a refused frame (with why), and its counters."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_LINE = 300      # a line longer than this is noise, not a card
SHOWN = 40          # bytes of a refused frame quoted in its reason


@dataclass(frozen=True)
class CardSeen:
    """A parser's valid card read: the canonical id."""

    card: str


@dataclass(frozen=True)
class BadFrame:
    """A refused frame: ``what`` is the short kind (checksum, parity, framing, garbage, overlong) counted in
    metrics, ``detail`` the words for the log (not compared: two refusals of one kind are equal)."""

    what: str
    detail: str = field(default="", compare=False)


@dataclass
class ParserStats:
    frames: int = 0
    bad_checksum: int = 0
    bad_parity: int = 0
    garbage: int = 0

    def refuse(self, what: str, detail: str = "") -> BadFrame:
        """Count a refusal of kind ``what`` and return it."""
        if what == "checksum":
            self.bad_checksum += 1
        elif what == "parity":
            self.bad_parity += 1
        else:
            self.garbage += 1
        return BadFrame(what, detail)

    def accept(self, card: str) -> CardSeen:
        self.frames += 1
        return CardSeen(card)


def shown(data: bytes) -> str:
    """Bytes for a log line: printable ASCII as is, the rest as \\xNN, cut at SHOWN bytes."""
    text = "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in data[:SHOWN])
    return text + ("..." if len(data) > SHOWN else "")


Result = CardSeen | BadFrame
