"""CJ/T 188 framing: ``[FE..] 68 T A0..A6 C L DI0 DI1 SER data CS 16``, BCD helpers, a resynchronising stream parser.

Why it is shaped like this:

* **Address.** Seven BCD bytes, ``A0`` (the lowest) first on the wire; shown and configured as the 14 digits
  printed on the meter, high byte first (wire ``44 33 22 11 00 33 78`` is meter ``78330011223344``).
* **Wake-up.** Battery meters sleep: a request is sent after a run of ``FE`` bytes, and replies come with
  any number of ``FE`` in front. The parser skips them.
* **DI order.** The standard sends the data identifier low byte first (901F as ``1F 90``), but many meters and
  tools send and answer ``90 1F``. :func:`parse_frame` accepts both: a DI that is not a known identifier while
  its byte swap is one is read swapped (``Frame.di_swapped``), so callers always see ``0x901F``.
* **Checksum.** ``CS`` is the sum mod 256 of every byte from ``68`` to the end of the data.

Protocol only: bytes in, frames out. Bad bytes raise :class:`FrameError` (a ``ValueError``), never anything else.
"""

from __future__ import annotations

from dataclasses import dataclass

START, END, PREAMBLE = 0x68, 0x16, 0xFE
C_READ, C_READ_REPLY, C_READ_ADDRESS, C_WRITE, C_WRITE_REPLY = 0x01, 0x81, 0x03, 0x04, 0x84
DI_CURRENT, DI_READ_ADDRESS, DI_VALVE, DI_WRITE_ADDRESS = 0x901F, 0x810A, 0xA017, 0xA018
#: data identifiers of CJ/T 188-2004 (read: 901F current data, 907F meter time, D120..D12B history, 8102..8106
#: parameters, 810A address; write: A010..A019, A017 valve control, A018 address)
KNOWN_DIS = frozenset({0x901F, 0x902F, 0x903F, 0x904F, 0x907F, 0x810A, *range(0x8102, 0x8107),
                       *range(0xD120, 0xD12C), *range(0xA010, 0xA01A)})
BROADCAST = "AAAAAAAAAAAAAA"
MAX_DATA = 100


class FrameError(ValueError):
    """Bytes that are not a valid CJ/T 188 frame or reply (bad checksum, length, end byte, BCD, unit...)."""


class IncompleteFrame(FrameError):
    """Not enough bytes yet."""


@dataclass(frozen=True)
class Frame:
    meter_type: int
    address: str          # 14 digits, high byte first, as printed on the meter
    control: int
    di: int               # normalised: 0x901F whichever order it came in; 0 when the frame has no DI
    ser: int
    payload: bytes = b""  # data after DI and SER
    di_swapped: bool = False

    @property
    def is_reply(self) -> bool:
        return bool(self.control & 0x80)

    @property
    def is_error(self) -> bool:
        return bool(self.control & 0x40)


# ---------------------------------------------------------------------- BCD and addresses
def bcd_encode(value: int, nbytes: int) -> bytes:
    """Unsigned integer -> BCD, low byte first."""
    if value < 0 or value >= 10 ** (2 * nbytes):
        raise ValueError(f"{value} does not fit {nbytes} BCD bytes")
    digits = f"{value:0{2 * nbytes}d}"
    return bytes(int(digits[i:i + 2], 16) for i in range(0, 2 * nbytes, 2))[::-1]


def bcd_decode(data: bytes) -> int:
    """BCD low byte first -> integer; FrameError on a non-decimal nibble."""
    text = data[::-1].hex()
    if not text.isdigit():
        raise FrameError(f"not BCD: {data.hex(' ')}")
    return int(text) if text else 0


def address_bytes(address: str) -> bytes:
    """The 14 printed digits (hex digits allowed: AA is the wildcard) -> the 7 wire bytes, A0 first."""
    if len(address) != 14:
        raise ValueError(f"a CJ/T 188 address is 14 digits, got {address!r}")
    try:
        return bytes.fromhex(address)[::-1]
    except ValueError:
        raise ValueError(f"a CJ/T 188 address is 14 hex/BCD digits, got {address!r}") from None


def di_bytes(di: int, *, high_first: bool = False) -> bytes:
    """A DI on the wire: low byte first (the standard: 901F -> 1F 90), or high byte first (90 1F)."""
    lo, hi = di & 0xFF, (di >> 8) & 0xFF
    return bytes([hi, lo]) if high_first else bytes([lo, hi])


def normalise_di(lo_first: int) -> tuple[int, bool]:
    """The DI read low byte first -> (DI, swapped): a known identifier either way round is recognised."""
    if lo_first in KNOWN_DIS:
        return lo_first, False
    swapped = ((lo_first & 0xFF) << 8) | (lo_first >> 8)
    if swapped in KNOWN_DIS:
        return swapped, True
    return lo_first, False


# ---------------------------------------------------------------------- framing
def build_frame(meter_type: int, address: str, control: int, di: int, ser: int = 0, payload: bytes = b"",
                *, preamble: int = 2, di_high_first: bool = False) -> bytes:
    """One frame, with ``preamble`` wake-up ``FE`` bytes in front."""
    data = di_bytes(di, high_first=di_high_first) + bytes([ser & 0xFF]) + payload
    if len(data) > MAX_DATA:
        raise ValueError("data too long")
    body = bytes([START, meter_type & 0xFF]) + address_bytes(address) + bytes([control & 0xFF, len(data)]) + data
    return bytes([PREAMBLE] * preamble) + body + bytes([sum(body) & 0xFF, END])


def parse_frame(buf: bytes) -> tuple[Frame, int]:
    """Parse the first frame in ``buf`` (after any FE preamble); return it and the bytes used.

    Raises FrameError for a broken frame, and ``IncompleteFrame`` when more bytes are needed.
    """
    i = 0
    while i < len(buf) and buf[i] == PREAMBLE:
        i += 1
    if i >= len(buf):
        raise IncompleteFrame()
    if buf[i] != START:
        raise FrameError(f"expected 68 at offset {i}, got {buf[i]:02x}")
    if len(buf) < i + 11:
        raise IncompleteFrame()
    length = buf[i + 10]
    if length > MAX_DATA:
        raise FrameError(f"bad data length {length}")
    end = i + 11 + length + 2
    if len(buf) < end:
        raise IncompleteFrame()
    body = buf[i:i + 11 + length]
    if (sum(body) & 0xFF) != buf[end - 2]:
        raise FrameError(f"checksum mismatch (frame says {buf[end - 2]:02x}, bytes sum to {sum(body) & 0xFF:02x})")
    if buf[end - 1] != END:
        raise FrameError(f"expected 16 at the end, got {buf[end - 1]:02x}")
    data = body[11:]
    di, swapped = normalise_di(data[0] | (data[1] << 8)) if len(data) >= 2 else (0, False)
    frame = Frame(meter_type=body[1], address=body[2:9][::-1].hex().upper(), control=body[9], di=di,
                  ser=data[2] if len(data) >= 3 else 0, payload=bytes(data[3:]), di_swapped=swapped)
    return frame, end


class StreamParser:
    """Feed serial bytes; get whole frames and errors (resynchronising on the next 68)."""

    def __init__(self, max_buffer: int = 512) -> None:
        self.buf = b""
        self.max_buffer = max_buffer

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        self.buf = (self.buf + data)[-self.max_buffer:]
        out: list[Frame | FrameError] = []
        while self.buf:
            try:
                frame, used = parse_frame(self.buf)
            except IncompleteFrame:
                break
            except FrameError as exc:
                out.append(exc)
                nxt = self.buf.find(bytes([START]), 1)
                self.buf = self.buf[nxt:] if nxt > 0 else b""
                continue
            out.append(frame)
            self.buf = self.buf[used:]
        return out


def leading_preamble(buf: bytes) -> int:
    """How many FE wake-up bytes precede the first 68 (the simulator checks a request was sent with them)."""
    n = 0
    while n < len(buf) and buf[n] == PREAMBLE:
        n += 1
    return n
