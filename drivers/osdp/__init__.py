"""OSDP control panel: card reads, door contacts, relays, LED and buzzer on an RS-485 bus.

One :class:`OsdpBus` per port drives every reader (PD) on it through libosdp's
``ControlPanel``; it implements :class:`drivers.reader.ReaderDriver` and puts the
reader events of :mod:`drivers.reader` on the gateway's queue. The port is a
pyserial URL (``serial_for_url``), so the same code drives ``/dev/ttyUSB0`` and
``socket://host:port`` (an RS-485-to-TCP converter, or the simulator). Protocol
only: no gateway imports.

Modules: ``bus`` (the CP thread, online/offline, commands), ``channel`` (the
self-reopening port libosdp talks through), ``pd`` (one reader's spec, state and
offline reason), ``events`` (libosdp events -> reader events), ``cardread`` (card
data formats: osdp_RAW bits and osdp_FMT characters, and the tap that reads osdp_FMT,
which libosdp ignores, off the wire), ``commands`` (osdp_OUT/LED/BUZ), ``frames`` (CRC,
packet parsing and the secure-channel handshake diagnosis).

Secure channel: a PD with an SCBK (16 bytes) is driven with ``EnforceSecure`` (no
silent downgrade to plain text). ``install_mode`` makes the CP first talk to a
factory-fresh reader with the default key (SCBK-D) and send it the new SCBK
(osdp_KEYSET); turn it off once the reader has it.

A crashing bus thread never leaves the doors dead: an unexpected exception out of
the refresh loop is logged with its traceback, counted in ``stats["crashes"]``,
every PD on the bus is reported offline (``driver crashed: ...; restarting in N s``),
and after 1, 2, 4 ... 60 s (back to 1 s once it ran a minute) the port is
reopened, the control panel rebuilt, and the loop goes on.
"""

from drivers.osdp.bus import OsdpBus
from drivers.osdp.channel import SerialChannel
from drivers.osdp.frames import FrameTap, crc16, parse_frames
from drivers.osdp.pd import PdSpec, load_scbk
from drivers.reader import CardRead, InputChange, ReaderError, ReaderStatus

__all__ = ["CardRead", "FrameTap", "InputChange", "OsdpBus", "PdSpec", "ReaderError", "ReaderStatus",
           "SerialChannel", "crc16", "load_scbk", "parse_frames"]
