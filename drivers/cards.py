"""Card ids: the canonical raw form, and decoding of the common formats with their checks.

A card is matched on what the reader *delivers*, not on a number printed on it:
``"<bit count>:<hex of the raw bits, MSB first, padded to whole bytes>"`` (e.g.
``"26:0a1b2c40"``). The same card reads the same at every door, whichever decimal
"number" each reader model would show. Known formats are decoded as well
(``facility``, ``number``) for people, never for matching.

Some readers deliver *characters*, not bits: OSDP osdp_FMT (card data as ASCII, its length a
count of characters) and serial readers that print a number per line. Their id is
``"ascii:<hex of the characters>"`` (``"ascii:30303031323137343936"`` for ``0001217496``). The
prefix is not a bit count, so a character id can never equal a bit id: 10 characters are not
read as 10 bits (the OSDP bug of taking the character count for a bit count), nor as 80 bits
of the same bytes.

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
ASCII_ID_RE = re.compile(r"^ascii:((?:[0-9a-f]{2})+)$")
ASCII_PREFIX = "ascii:"
MAX_BITS = 1024
MAX_CHARS = 255  # osdp_FMT's character count is one byte


class CardFormatError(ValueError):
    """Input that is not a card id / frame (counted by the driver, never crashes it)."""


@dataclass(frozen=True)
class DecodedCard:
    """What a card id means, for people: the format, facility and number, and whether parity held."""

    card: str
    bits: int
    format: str | None          # "H10301", "H10306", "H10304", "EM4100", "ASCII" or None (kept raw)
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
    """Split and validate a canonical *bit* id; returns (bit count, value). Raises CardFormatError.

    A character id (``ascii:...``) is refused here: it has no bit count (see :func:`ascii_chars`).
    """
    m = CARD_ID_RE.match(card.strip().lower()) if isinstance(card, str) else None
    if not m:
        if isinstance(card, str) and card.strip().lower().startswith(ASCII_PREFIX):
            raise CardFormatError(f"{card[:40]!r} is a character id, not a bit id")
        raise CardFormatError(f"card id must look like '26:0a1b2c40' or 'ascii:3132', got {str(card)[:60]!r}")
    bits, hexpart = int(m.group(1)), m.group(2)
    if bits > MAX_BITS or len(hexpart) != 2 * ((bits + 7) // 8):
        raise CardFormatError(f"card id {card!r}: {bits} bits need {2 * ((bits + 7) // 8)} hex digits")
    raw = int(hexpart, 16)
    spare = len(hexpart) * 4 - bits
    if raw & ((1 << spare) - 1):
        raise CardFormatError(f"card id {card!r} has bits set past bit {bits}")
    return bits, raw >> spare


def normalize_card_id(card: str) -> str:
    """Lower-case, validated canonical id, bit or character (what the register stores)."""
    if is_ascii_id(card):
        return ascii_card_id(ascii_chars(card))
    bits, value = parse_card_id(card)
    nbytes = (bits + 7) // 8
    return f"{bits}:{value << (nbytes * 8 - bits):0{nbytes * 2}x}"


# ---------------------------------------------------------------------- character ids
def is_ascii_id(card: object) -> bool:
    return isinstance(card, str) and card.strip().lower().startswith(ASCII_PREFIX)


def ascii_card_id(chars: bytes) -> str:
    """The id of card data a reader delivered as characters (osdp_FMT, a text line)."""
    if not 1 <= len(chars) <= MAX_CHARS:
        raise CardFormatError(f"character card data must be 1..{MAX_CHARS} characters, got {len(chars)}")
    return ASCII_PREFIX + bytes(chars).hex()


def ascii_chars(card: str) -> bytes:
    """The characters of a character id (``ascii:3132`` -> ``b"12"``). Raises CardFormatError."""
    m = ASCII_ID_RE.match(card.strip().lower()) if isinstance(card, str) else None
    if not m or len(m.group(1)) > 2 * MAX_CHARS:
        raise CardFormatError(f"character id must look like 'ascii:3132' (1..{MAX_CHARS} characters as hex), "
                              f"got {str(card)[:60]!r}")
    return bytes.fromhex(m.group(1))


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
    bits, _even, _odd, fac, num = WIEGAND_FORMATS[fmt]
    if not (0 <= facility < 1 << fac[1] and 0 <= number < 1 << num[1]):
        raise CardFormatError(f"facility/number out of range for {fmt}")
    data = (facility << (bits - 1 - fac[0] - fac[1])) | (number << (bits - 1 - num[0] - num[1]))
    return wiegand_wrap(fmt, data)


def wiegand_wrap(fmt: str, data: int) -> str:
    """The canonical id of a Wiegand frame whose data bits (parity stripped) are ``data``.

    Wiegand-to-serial converters check the parity and send only the data bits; the frame
    they read is rebuilt with its parity bits, so the card gets the id an OSDP reader or a
    bit-string converter delivers for it.
    """
    bits, even, odd, _fac, _num = WIEGAND_FORMATS[fmt]
    if not 0 <= data < 1 << (bits - 2):
        raise CardFormatError(f"{fmt} carries {bits - 2} data bits; the value does not fit")
    value = data << 1
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
    """Decode a canonical id: known formats get facility/number and a parity verdict; others stay raw.

    A character id is ``format: "ASCII"``, ``bits: 0``, and its characters as ``number`` when they
    are decimal digits (the number printed on many fobs).
    """
    if is_ascii_id(card):
        chars = ascii_chars(card)
        number = int(chars) if chars.isdigit() and int(chars) < 1 << 63 else None
        return DecodedCard(ascii_card_id(chars), 0, "ASCII", None, number, True)
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
