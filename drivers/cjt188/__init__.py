"""CJ/T 188 (the Chinese household meter protocol) for hot-water, water and heat meters on RS-485.

``frame`` (framing, BCD, both DI byte orders), ``data`` (901F current data, A017 valve control),
``link`` (one bus on a pyserial URL: request/reply with wake-up, timeouts, typed failures).
Protocol only: nothing here knows about the gateway.
"""

from drivers.cjt188.data import (
    HEAT_TYPES,
    UNITS,
    VALVE_CLOSE,
    VALVE_OPEN,
    VALVE_STATES,
    WATER_TYPES,
    CurrentData,
    current_payload,
    current_reply,
    decode_current,
    read_current_request,
    time_bytes,
    valve_reply,
    valve_reply_state,
    valve_request,
)
from drivers.cjt188.frame import (
    BROADCAST,
    C_READ,
    C_READ_ADDRESS,
    C_READ_REPLY,
    C_WRITE,
    C_WRITE_REPLY,
    DI_CURRENT,
    DI_READ_ADDRESS,
    DI_VALVE,
    DI_WRITE_ADDRESS,
    END,
    KNOWN_DIS,
    MAX_DATA,
    PREAMBLE,
    START,
    Frame,
    FrameError,
    IncompleteFrame,
    StreamParser,
    address_bytes,
    bcd_decode,
    bcd_encode,
    build_frame,
    di_bytes,
    leading_preamble,
    normalise_di,
    parse_frame,
)

__all__ = ["BROADCAST", "C_READ", "C_READ_ADDRESS", "C_READ_REPLY", "C_WRITE", "C_WRITE_REPLY", "DI_CURRENT",
           "DI_READ_ADDRESS", "DI_VALVE", "DI_WRITE_ADDRESS", "END", "HEAT_TYPES", "KNOWN_DIS", "MAX_DATA",
           "PREAMBLE", "START", "UNITS", "VALVE_CLOSE", "VALVE_OPEN", "VALVE_STATES", "WATER_TYPES", "CurrentData",
           "Frame", "FrameError", "IncompleteFrame", "StreamParser", "address_bytes", "bcd_decode", "bcd_encode",
           "build_frame", "current_payload", "current_reply", "decode_current", "di_bytes", "leading_preamble",
           "normalise_di", "parse_frame", "read_current_request", "time_bytes", "valve_reply", "valve_reply_state",
           "valve_request"]
