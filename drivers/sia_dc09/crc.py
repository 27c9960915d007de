"""CRC-16/ARC, the checksum of every DC-09 block (and of every answer).

Kept apart because it is the hot spot of the receive path: it runs twice per block (check on
receipt, compute for the answer). It is computed by ``fastcrc`` (a compiled CRC library, a
dependency): ~0.1 us a block. The table loops it replaced cost far more inside the daemon than in
a micro-benchmark: the two-bytes-a-lookup table (64 Ki ints, ~2.5 MB) was out of the CPU caches
whenever a block came, 14 % of the event loop's time per block in a profile of ten panels (issue
20). The byte-at-a-time table below stays as the fallback where no wheel of fastcrc installs, and as
the reference the tests hold fastcrc to.
"""

from __future__ import annotations

from collections.abc import Callable


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc16_arc_table(data: bytes) -> int:
    """CRC-16/ARC in Python, a byte a lookup (check value of b"123456789" is 0xBB3D)."""
    t = _CRC_TABLE
    crc = 0
    for b in data:
        crc = (crc >> 8) ^ t[(crc ^ b) & 0xFF]
    return crc


def _compiled() -> Callable[[bytes], int] | None:
    try:
        from fastcrc import crc16
    except ImportError:   # pragma: no cover - no wheel for this platform: the table
        return None
    arc: Callable[[bytes], int] = crc16.arc
    return arc if arc(b"123456789") == 0xBB3D else None


_impl: Callable[[bytes], int] | None = None


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC as DC-09 specifies: ``crc16_arc(b"123456789") == 0xBB3D``.

    fastcrc is loaded at the first block, not with the module: its library (all of its CRCs, ~0.7 MB
    resident) stays out of a gateway that never hears a DC-09 panel (the idle-memory aim, issue 20)."""
    global _impl
    if _impl is None:
        _impl = _compiled() or crc16_arc_table
    return _impl(data)
