"""SIA DC-09 (ANSI/SIA DC-09) receiver: framing, CRC, AES, ACK/NAK/DUH, and an asyncio TCP server.

A block on the wire::

    LF  CRC(4 hex)  0LLL(length, 3 hex)  "ID"  seq(4 dec)  [Rrcvr]  Lpref  #acct  [data]  [x..]  [_HH:MM:SS,MM-DD-YYYY]  CR

* ``CRC`` is CRC-16/ARC (poly 0x8005 reflected = 0xA001, init 0) over everything from the first
  ``"`` up to (not including) the CR; ``LLL`` is the byte length of that same span.
* ``ID`` is ``SIA-DCS``, ``ADM-CID`` or ``NULL`` (a supervision poll); a leading ``*``
  (``"*SIA-DCS"``) means the part after ``[`` is AES-CBC (zero IV) encrypted and hex encoded.
  Its plain text is ``pad | data ] [x..] _timestamp``: random pad bytes (never ``|[]``) so the
  length is a multiple of 16, then the data without its ``#acct`` (the header has it).
* The timestamp is UTC. Encrypted blocks must carry one; any timestamp outside
  ``[-40 s, +20 s]`` of the receiver's clock is refused with NAK (replay protection).

Answers: ``ACK`` (same seq/receiver/line/account, encrypted when the block was) only after the
handler returned -- i.e. after the gateway committed the event, because the panel resends
anything not ACKed; ``NAK`` (seq 0000, carries the receiver's time so the panel can correct
its clock) for CRC/length/timestamp errors and when the handler failed; ``DUH`` for what
we do not understand (unknown ID token, unknown account, encrypted without a key).

One module a layer: :mod:`.crc` (the checksum), :mod:`.framing` (LF..CR on the wire, stream
cutting), :mod:`.crypto` (keys, AES, pad), :mod:`.blocks` (parse and build blocks and answers),
:mod:`.receiver` (the TCP server). What the payload *means* (SIA-DCS and ADM-CID codes) is
:mod:`drivers.contact_id`. No gateway imports: protocol only.
"""

from __future__ import annotations

from drivers.sia_dc09.blocks import (
    KNOWN_IDS,
    TS_FORMAT,
    WINDOW_FUTURE_S,
    WINDOW_PAST_S,
    BlockError,
    Dc09Message,
    Verdict,
    build_block,
    build_response,
    format_timestamp,
    now_utc,
    parse_block,
    parse_response,
    parse_timestamp,
)
from drivers.sia_dc09.crc import crc16_arc
from drivers.sia_dc09.crypto import PAD_ALPHABET, aes_decrypt, aes_encrypt, decrypt_tail, encrypt_tail, load_key
from drivers.sia_dc09.framing import CR, LF, MAX_BLOCK, Framer, frame
from drivers.sia_dc09.receiver import Dc09Receiver, Handler, ReceiverStats

__all__ = [
    "CR", "KNOWN_IDS", "LF", "MAX_BLOCK", "PAD_ALPHABET", "TS_FORMAT", "WINDOW_FUTURE_S", "WINDOW_PAST_S",
    "BlockError", "Dc09Message", "Dc09Receiver", "Framer", "Handler", "ReceiverStats", "Verdict",
    "aes_decrypt", "aes_encrypt", "build_block", "build_response", "crc16_arc", "decrypt_tail", "encrypt_tail",
    "format_timestamp", "frame", "load_key", "now_utc", "parse_block", "parse_response", "parse_timestamp",
]
