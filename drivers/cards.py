"""Card ids: the canonical raw form, and decoding of the common formats with their checks.

A card is matched on what the reader *delivers*, not on a number printed on it:
``"<bit count>:<hex of the raw bits, MSB first, padded to whole bytes>"`` (e.g.
``"26:0a1b2c40"``). The same card reads the same at every door, whichever decimal
"number" each reader model would show. Known formats are decoded as well
(``facility``, ``number``) for people, never for matching.

Formats (bit 0 is the first bit on the wire, the MSB):

* H10301, 26 bit: even parity over bits 1-12 | facility 8 | number 16 | odd parity over bits 13-24
* H10306, 34 bit: even parity over bits 1-16 | facility 16 | number 16 | odd parity over bits 17-32
* H10304, 37 bit: even parity over bits 1-18 | facility 16 | number 19 | odd parity over bits 18-35
* EM4100, 40 bit: version/customer byte | 32-bit id (the ASCII readers' checksum is checked by them)

Nothing here raises on bad input except :class:`CardFormatError` from the parsing
functions, which callers turn into a counted, logged error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CARD_ID_RE = re.compile(r"^([1-9][0-9]{0,3}):([0-9a-f]+)$")
MAX_BITS = 1024


class CardFormatError(ValueError):
    """Input that is not a card id / frame (counted by the driver, never crashes it)."""


@dataclass(frozen=True)
class DecodedCard:
    """What a card id means, for people: the format, facility and number, and whether parity held."""

    card: str
    bits: int
    format: str | None          # "H10301", "H10306", "H10304", "EM4100" or None (kept raw)
    facility: int | None = None
    number: int | None = None
    parity_ok: bool = True

    def as_dict(self) -> dict[str, object]:
        return {"card": self.card, "bits": self.bits, "format": self.format, "facility": self.facility,
                "number": self.number, "parity_ok": self.parity_ok}


# ---------------------------------------------------------------------- canonical ids
def card_id(bits: int, data: bytes) -> str:
    """The canonical id of ``bits`` raw bits left-aligned in ``data`` (as OSDP delivers them).

    Bits past ``bits`` in the last byte are cleared, so padding noise cannot make
    one card look like two.
    """
    if not 1 <= bits <= MAX_BITS:
        raise CardFormatError(f"bit count {bits} out of range 1..{MAX_BITS}")
    nbytes = (bits + 7) // 8
    if len(data) < nbytes:
        raise CardFormatError(f"{bits} bits need {nbytes} bytes, got {len(data)}")
    raw = bytearray(data[:nbytes])
    spare = nbytes * 8 - bits
    if spare:
        raw[-1] &= (0xFF << spare) & 0xFF
    return f"{bits}:{raw.hex()}"


def card_id_from_int(bits: int, value: int) -> str:
    """The canonical id of a ``bits``-bit value (bit ``bits-1`` first on the wire)."""
    if not 1 <= bits <= MAX_BITS or value < 0 or value >> bits:
        raise CardFormatError(f"value does not fit in {bits} bits")
    nbytes = (bits + 7) // 8
    return card_id(bits, (value << (nbytes * 8 - bits)).to_bytes(nbytes, "big"))


def card_id_from_bitstring(text: str) -> str:
    """``"0110..."`` (first bit first) to the canonical id."""
    text = text.strip()
    if not text or len(text) > MAX_BITS or set(text) - {"0", "1"}:
        raise CardFormatError("not a bit string")
    return card_id_from_int(len(text), int(text, 2))


def parse_card_id(card: str) -> tuple[int, int]:
    """Split and validate a canonical id; returns (bit count, value). Raises CardFormatError."""
    m = CARD_ID_RE.match(card.strip().lower()) if isinstance(card, str) else None
    if not m:
        raise CardFormatError(f"card id must look like '26:0a1b2c40', got {card!r}")
    bits, hexpart = int(m.group(1)), m.group(2)
    if bits > MAX_BITS or len(hexpart) != 2 * ((bits + 7) // 8):
        raise CardFormatError(f"card id {card!r}: {bits} bits need {2 * ((bits + 7) // 8)} hex digits")
    raw = int(hexpart, 16)
    spare = len(hexpart) * 4 - bits
    if raw & ((1 << spare) - 1):
        raise CardFormatError(f"card id {card!r} has bits set past bit {bits}")
    return bits, raw >> spare


def normalize_card_id(card: str) -> str:
    """Lower-case, validated canonical id (what the register stores)."""
    bits, value = parse_card_id(card)
    nbytes = (bits + 7) // 8
    return f"{bits}:{value << (nbytes * 8 - bits):0{nbytes * 2}x}"


# ---------------------------------------------------------------------- Wiegand formats
def _bit(value: int, bits: int, i: int) -> int:
    """Bit ``i`` counted from the first bit on the wire."""
    return (value >> (bits - 1 - i)) & 1


def _ones(value: int, bits: int, first: int, last: int) -> int:
    width = last - first + 1
    return ((value >> (bits - 1 - last)) & ((1 << width) - 1)).bit_count()


def _field(value: int, bits: int, first: int, width: int) -> int:
    return (value >> (bits - first - width)) & ((1 << width) - 1)


# name: (bits, even-parity range, odd-parity range, facility (first, width), number (first, width))
WIEGAND_FORMATS: dict[str, tuple[int, tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]] = {
    "H10301": (26, (1, 12), (13, 24), (1, 8), (9, 16)),
    "H10306": (34, (1, 16), (17, 32), (1, 16), (17, 16)),
    "H10304": (37, (1, 18), (18, 35), (1, 16), (17, 19)),
}
_BY_BITS = {spec[0]: name for name, spec in WIEGAND_FORMATS.items()}


def wiegand_parity_ok(fmt: str, value: int) -> bool:
    """Leading bit = even parity over its range, trailing bit = odd parity over its range."""
    bits, even, odd, _fac, _num = WIEGAND_FORMATS[fmt]
    lead = _bit(value, bits, 0)
    trail = _bit(value, bits, bits - 1)
    return (lead + _ones(value, bits, *even)) % 2 == 0 and (trail + _ones(value, bits, *odd)) % 2 == 1


def wiegand_encode(fmt: str, facility: int, number: int) -> str:
    """Build the canonical id of a card in a known format, parity bits set (simulators, tests)."""
    bits, even, odd, fac, num = WIEGAND_FORMATS[fmt]
    if not (0 <= facility < 1 << fac[1] and 0 <= number < 1 << num[1]):
        raise CardFormatError(f"facility/number out of range for {fmt}")
    value = (facility << (bits - fac[0] - fac[1])) | (number << (bits - num[0] - num[1]))
    if _ones(value, bits, *even) % 2:
        value |= 1 << (bits - 1)
    if _ones(value, bits, *odd) % 2 == 0:
        value |= 1
    return card_id_from_int(bits, value)


def em4100_card_id(raw5: bytes) -> str:
    """An EM4100 tag's 5 data bytes (version + 32-bit id) as a canonical 40-bit id."""
    if len(raw5) != 5:
        raise CardFormatError("EM4100 ids are 5 bytes")
    return card_id(40, raw5)


def decode(card: str) -> DecodedCard:
    """Decode a canonical id: known formats get facility/number and a parity verdict; others stay raw."""
    bits, value = parse_card_id(card)
    nbytes = (bits + 7) // 8
    canonical = f"{bits}:{value << (nbytes * 8 - bits):0{nbytes * 2}x}"
    fmt = _BY_BITS.get(bits)
    if fmt is not None:
        _b, _e, _o, fac, num = WIEGAND_FORMATS[fmt]
        return DecodedCard(canonical, bits, fmt, _field(value, bits, *fac), _field(value, bits, *num),
                           wiegand_parity_ok(fmt, value))
    if bits == 40:
        return DecodedCard(canonical, bits, "EM4100", value >> 32, value & 0xFFFFFFFF, True)
    return DecodedCard(canonical, bits, None)
