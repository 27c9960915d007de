"""SIA DC-09 (ANSI/SIA DC-09) receiver: framing, CRC, AES, SIA-DCS data, ACK/NAK/DUH, an asyncio TCP server.

A block on the wire::

    LF  CRC  0LLL  "ID"  seq  [Rrcvr]  Lpref  #acct  [data]  [x..]  [_HH:MM:SS,MM-DD-YYYY]  CR

* ``CRC`` is CRC-16/ARC over everything from the first ``"`` up to (not including) the CR --
  four hex characters, or two raw bytes from panels that send it so (answered in kind);
  ``LLL`` is the byte length of that same span.
* ``ID`` is ``SIA-DCS``, ``ADM-CID`` or ``NULL`` (a supervision poll); a leading ``*``
  (``"*SIA-DCS"``) means the part after ``[`` is AES-CBC (zero IV) encrypted and hex encoded:
  ``pad | data ] [x..] _timestamp``, pad bytes of any value, data as an unencrypted block has it.
* The timestamp is UTC. Encrypted blocks must carry one within ``[-40 s, +20 s]`` of the
  receiver's clock (replay protection); for plain blocks that check is the receiver's choice.

Answers: ``ACK`` (same seq/R/L/account, encrypted when the block was) only after the handler
returned -- i.e. after the gateway committed the event, because the panel resends anything not
ACKed; ``NAK`` (seq 0000, carries the receiver's time so the panel can correct its clock) for
CRC/length/timestamp errors and when the handler failed; ``DUH`` for what we do not understand
(unknown ID token, unknown account, encrypted without a key, unreadable data).

One module a layer: :mod:`.crc` (the checksum), :mod:`.framing` (LF..CR on the wire, both CRC
forms, stream cutting), :mod:`.crypto` (keys, AES, pad), :mod:`.header` (frame check, lenient
header), :mod:`.blocks` (a block's parse and verdict), :mod:`.answers` (ACK/NAK/DUH and panel
blocks), :mod:`.sia_dcs` (the syntax of SIA-DCS data), :mod:`.receiver` (the TCP server).
What codes *mean* is :mod:`drivers.contact_id`'s. No gateway imports: protocol only.
"""

from __future__ import annotations

from drivers.sia_dc09.answers import build_block, build_response, parse_response, to_binary_crc
from drivers.sia_dc09.blocks import (
    KNOWN_IDS,
    PLAIN_REFUSED,
    TS_FORMAT,
    WINDOW_FUTURE_S,
    WINDOW_PAST_S,
    BlockError,
    Dc09Message,
    Verdict,
    format_timestamp,
    now_utc,
    parse_block,
    parse_timestamp,
)
from drivers.sia_dc09.crc import crc16_arc
from drivers.sia_dc09.crypto import (
    PAD_ALPHABET,
    KeyFormat,
    KeyRing,
    aes_decrypt,
    aes_encrypt,
    decrypt,
    encrypt_tail,
    load_key,
    split_plain,
)
from drivers.sia_dc09.framing import CR, LF, MAX_BLOCK, Framer, frame
from drivers.sia_dc09.receiver import Dc09Receiver, Handler, ReceiverStats
from drivers.sia_dc09.sia_dcs import SiaDcsData, SiaDcsError, SiaDcsEvent
from drivers.sia_dc09.sia_dcs import parse as parse_sia_dcs

__all__ = [
    "CR", "KNOWN_IDS", "LF", "MAX_BLOCK", "PAD_ALPHABET", "PLAIN_REFUSED", "TS_FORMAT", "WINDOW_FUTURE_S", "WINDOW_PAST_S",
    "BlockError", "Dc09Message", "Dc09Receiver", "Framer", "Handler", "KeyFormat", "KeyRing", "ReceiverStats",
    "SiaDcsData", "SiaDcsError", "SiaDcsEvent", "Verdict",
    "aes_decrypt", "aes_encrypt", "build_block", "build_response", "crc16_arc", "decrypt", "encrypt_tail",
    "format_timestamp", "frame", "load_key", "now_utc", "parse_block", "parse_response", "parse_sia_dcs",
    "parse_timestamp", "split_plain", "to_binary_crc",
]
