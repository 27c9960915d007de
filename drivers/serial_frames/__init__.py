"""What serial card readers send, per ``framing``: STX frames of EM4100 readers, Wiegand converter lines, text.

| framing | the wire | card id |
|---|---|---|
| ``rdm6300`` | ``STX`` + 10 hex + 2 hex XOR checksum + ``ETX`` | ``40:<10 hex>`` |
| ``id12la`` | ``STX`` + 10 hex + 2 hex XOR checksum + ``CR LF ETX`` | ``40:<10 hex>`` |
| ``wiegand`` | a line of bits ``0110…`` or ``26:0a1b2c40`` (parity checked) | those bits |
| ``wiegand-hex`` | a line of the Wiegand data bits in hex, parity stripped | the frame, parity rebuilt |
| ``wiegand-decimal`` | the same as a decimal number (``wiegand_bits``, 26 unless set) | the frame, parity rebuilt |
| ``line`` | a line of printable characters (a reader printing a number) | ``ascii:<hex of the characters>`` |
| ``auto`` | any of ``rdm6300``/``id12la`` frames, ``wiegand`` lines, else ``line`` | as those |

Every parser is pure (``feed(bytes) -> list[CardSeen | BadFrame]``: what the bytes say, before anyone
knows which reader sent them), never raises on input, keeps its buffer bounded, and counts what it
refuses in ``stats``. The driver that runs a port is :mod:`drivers.ascii_reader`. No gateway imports.
"""

from __future__ import annotations

from drivers.serial_frames.auto import AutoParser
from drivers.serial_frames.lines import LineParser, WiegandLineParser
from drivers.serial_frames.result import BadFrame, CardSeen, ParserStats, Result
from drivers.serial_frames.stx import ID12LA_TAIL, RDM6300_TAIL, StxParser, em4100_frame, id12la_frame

FRAMINGS = ("auto", "rdm6300", "id12la", "wiegand", "wiegand-hex", "wiegand-decimal", "line")
#: the framing of a reader that sets none: what each serial driver read before framings existed
DEFAULT_FRAMING = {"serial-ascii": "rdm6300", "wiegand-serial": "wiegand"}

Parser = StxParser | LineParser | AutoParser


def make_parser(framing: str, wiegand_bits: int = 0) -> Parser:
    """The parser of ``framing`` (see the table above); ValueError for an unknown one."""
    if framing in ("rdm6300", "id12la"):
        return StxParser(framing)
    if framing == "auto":
        return AutoParser()
    if framing == "wiegand":
        return WiegandLineParser()
    if framing in FRAMINGS:
        return LineParser(framing, wiegand_bits)
    raise ValueError(f"unknown reader framing {framing!r} (one of {', '.join(FRAMINGS)})")


__all__ = ["DEFAULT_FRAMING", "FRAMINGS", "ID12LA_TAIL", "RDM6300_TAIL", "AutoParser", "BadFrame", "CardSeen",
           "LineParser", "Parser", "ParserStats", "Result", "StxParser", "WiegandLineParser", "em4100_frame",
           "id12la_frame", "make_parser"]
