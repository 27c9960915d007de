"""What every card reader driver is to the gateway: one protocol, one event vocabulary.

Why one: the OSDP bus and the serial ASCII/Wiegand readers used to speak two event languages, and
the gateway told them apart with ``isinstance`` chains. Now a driver is handed one asyncio queue and
puts these four events on it, tagged with the reader id the gateway configured; the gateway handles
them the same way whatever the wire. Protocol only: no gateway imports.

Drivers run their blocking port in a thread and hand events to the loop with
``loop.call_soon_threadsafe``; commands (``output``, ``led``, ``buzzer``) may be called from any
thread and return whether the command was sent (a serial reader has no relay, LED or buzzer it
can drive: it returns False, and says so with ``relay = False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from drivers.reasons import NONE, Reason


@dataclass(frozen=True)
class CardRead:
    """A card was presented at ``reader``; ``card`` is the canonical id (``"26:0a1b2c40"``)."""

    reader: str
    card: str
    bits: int = 0
    at: float = 0.0  # time.monotonic() when the driver received it


@dataclass(frozen=True)
class InputChange:
    """Input ``number`` of ``reader`` changed (``active``: contact open for a door contact)."""

    reader: str
    number: int
    active: bool


@dataclass(frozen=True)
class ReaderStatus:
    """The reader (or its port) went online or offline; ``secure`` = OSDP secure channel active."""

    reader: str
    online: bool
    secure: bool = False
    reason: Reason = NONE


@dataclass(frozen=True)
class ReaderError:
    """Something counted, not fatal: a bad frame, a malformed card read.

    ``kind`` is the short label for metrics (``checksum``, ``parity``, ``protocol``...), ``what`` the words.
    """

    reader: str
    what: str
    kind: str = "protocol"


ReaderEvent = CardRead | InputChange | ReaderStatus | ReaderError


class ReaderDriver(Protocol):
    """A running driver for one or more readers (an OSDP bus drives every reader on its port)."""

    #: True when ``output`` can move a lock (OSDP); a serial reader only reads cards
    relay: bool
    #: counters; ``crashes`` counts restarts of the driver thread (shown on /metrics)
    stats: dict[str, int]

    def start(self) -> None:
        """Spawn the driver thread; events go to the queue the driver was built with."""

    def stop(self) -> None:
        """Stop the thread and close the port (blocking: call it in an executor)."""

    def output(self, reader: str, number: int, *, on: bool | None = None, pulse_s: float | None = None) -> bool:
        """Drive relay ``number``: on for ``pulse_s`` seconds, or permanently ``on``/off."""

    def led(self, reader: str, color: str, seconds: float = 2.0) -> bool:
        """Show ``color`` (green, red, amber...) for ``seconds``."""

    def buzzer(self, reader: str, times: int = 1, on_s: float = 0.1) -> bool:
        """Beep ``times``."""
