"""Readers and converters that send one card per text line (CR, LF or CR LF terminated).

Interpretations of a line (the ``framing`` of the reader):

* ``wiegand``: a Wiegand-to-serial converter that passes the whole frame: the bits
  (``"0110…"``, first bit first) or the canonical id (``"26:0a1b2c40"``). 26/34/37-bit frames
  must pass their parity.
* ``wiegand-hex``: a converter that checks the parity and sends only the data bits in hex
  (e.g. ``"XXYYZZ"`` + CR for Wiegand 26): 6, 8 or 9 digits are the data of a 26, 34 or 37-bit
  frame, which is rebuilt with its parity bits (``wiegand_bits`` fixes the frame instead).
* ``wiegand-decimal``: the same data bits as a decimal number (``"0000123478"``); the frame
  is ``wiegand_bits`` (26 unless set).
* ``line``: a reader that prints the card as text (a decimal or hex number): the characters
  are the card, ``"ascii:<hex of the characters>"``, as an OSDP reader delivering characters.

A rebuilt Wiegand frame gets the id an OSDP reader or a bit-string converter delivers for the
same card. Parsers never raise; a line they cannot use is refused with its reason and counted.
"""

from __future__ import annotations

from collections.abc import Callable

from drivers.cards import (
    CARD_ID_RE,
    WIEGAND_FORMATS,
    CardFormatError,
    ascii_card_id,
    card_id_from_bitstring,
    normalize_card_id,
    parse_card_id,
    wiegand_parity_ok,
    wiegand_wrap,
)
from drivers.serial_frames.result import MAX_LINE, ParserStats, Result, shown

#: Wiegand frame by its data width in hex digits (6 hex = 24 data bits = H10301 ...)
HEX_DIGITS_FORMAT = {6: "H10301", 8: "H10306", 9: "H10304"}
FORMAT_BY_BITS = {spec[0]: name for name, spec in WIEGAND_FORMATS.items()}
HEXDIGITS = frozenset("0123456789abcdefABCDEF")
FRAME_BYTES = b" \t\x02\x03"  # blanks, and STX/ETX some converters put around a line


def text_of(line: bytes) -> str | None:
    """The printable ASCII of a line, or None if it holds anything else (noise, a wrong baud rate)."""
    line = line.strip(FRAME_BYTES)
    if not line or any(b < 0x20 or b > 0x7E for b in line):
        return None
    return line.decode("ascii")


def wiegand_line(stats: ParserStats, text: str) -> Result:
    """``0110…`` or ``26:0a1b2c40``: the whole frame; known lengths must pass parity."""
    try:
        card = card_id_from_bitstring(text) if set(text) <= {"0", "1"} else normalize_card_id(text)
        bits, value = parse_card_id(card)
    except CardFormatError as exc:
        return stats.refuse("garbage", f"not Wiegand bits or a card id: {shown(text.encode())} ({exc})")
    fmt = FORMAT_BY_BITS.get(bits)
    if fmt is not None and not wiegand_parity_ok(fmt, value):
        return stats.refuse("parity", f"{fmt} parity does not hold: {card}")
    return stats.accept(card)


def wiegand_hex_line(stats: ParserStats, text: str, bits: int = 0) -> Result:
    """The data bits in hex; the frame comes from ``bits`` or else from the number of digits."""
    if not set(text) <= HEXDIGITS:
        return stats.refuse("garbage", f"not hex: {shown(text.encode())}")
    fmt = FORMAT_BY_BITS.get(bits) if bits else HEX_DIGITS_FORMAT.get(len(text))
    if fmt is None:
        return stats.refuse("framing", f"{len(text)} hex digits are not the data of a 26, 34 or 37-bit frame "
                                       f"(6, 8 or 9 digits; or set wiegand_bits): {shown(text.encode())}")
    return _wrapped(stats, fmt, int(text, 16), text)


def wiegand_decimal_line(stats: ParserStats, text: str, bits: int = 0) -> Result:
    """The data bits as a decimal number of a ``bits``-bit frame (26 unless set)."""
    if not text.isdigit() or len(text) > 20:
        return stats.refuse("garbage", f"not a decimal number: {shown(text.encode())}")
    return _wrapped(stats, FORMAT_BY_BITS[bits or 26], int(text), text)


def _wrapped(stats: ParserStats, fmt: str, data: int, text: str) -> Result:
    try:
        return stats.accept(wiegand_wrap(fmt, data))
    except CardFormatError:
        width = WIEGAND_FORMATS[fmt][0] - 2
        return stats.refuse("framing", f"{text} does not fit the {width} data bits of {fmt}")


def text_line(stats: ParserStats, text: str) -> Result:
    """The characters are the card (a reader printing a number)."""
    try:
        return stats.accept(ascii_card_id(text.encode("ascii")))
    except CardFormatError as exc:
        return stats.refuse("framing", str(exc))


def auto_line(stats: ParserStats, text: str) -> Result:
    """A whole Wiegand frame (26 bits or more of 0/1, or a canonical id) as ``wiegand``; anything else as text."""
    bitstring = set(text) <= {"0", "1"} and len(text) >= 26
    if bitstring or CARD_ID_RE.match(text.lower()):
        return wiegand_line(stats, text)
    return text_line(stats, text)


def interpreter(framing: str, wiegand_bits: int = 0) -> Callable[[ParserStats, str], Result]:
    """The line interpretation of ``framing`` (``wiegand``, ``wiegand-hex``, ``wiegand-decimal``, ``line``, ``auto``)."""
    if framing == "wiegand-hex":
        return lambda stats, text: wiegand_hex_line(stats, text, wiegand_bits)
    if framing == "wiegand-decimal":
        return lambda stats, text: wiegand_decimal_line(stats, text, wiegand_bits)
    return {"wiegand": wiegand_line, "line": text_line, "auto": auto_line}[framing]


def next_line(buf: bytearray) -> bytes | None:
    """Take the next CR/LF-terminated line off ``buf`` (None: no complete line yet)."""
    ends = [i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0]
    if not ends:
        return None
    idx = min(ends)
    line = bytes(buf[:idx])
    del buf[: idx + 1]
    return line


class LineParser:
    """Lines off a serial port, each read by one interpretation (see the module docstring)."""

    def __init__(self, framing: str = "wiegand", wiegand_bits: int = 0) -> None:
        self.interpret = interpreter(framing, wiegand_bits)
        self.buf = bytearray()
        self.stats = ParserStats()

    def feed(self, data: bytes) -> list[Result]:
        self.buf += data
        out: list[Result] = []
        while (line := next_line(self.buf)) is not None:
            if line.strip(FRAME_BYTES):
                out.append(self.parse_line(line))
        if len(self.buf) > MAX_LINE:
            out.append(self.stats.refuse("overlong", f"no line end in {len(self.buf)} bytes: {shown(bytes(self.buf))}"))
            self.buf.clear()
        return out

    def parse_line(self, line: bytes) -> Result:
        text = text_of(line)
        if text is None:
            return self.stats.refuse("garbage", f"not a text line: {shown(line)}")
        return self.interpret(self.stats, text)


class WiegandLineParser(LineParser):
    """Lines from a Wiegand-to-serial converter: ``0101...`` or ``26:0a1b2c40`` (the ``wiegand`` framing)."""

    def __init__(self) -> None:
        super().__init__("wiegand")
