"""How a Modbus request failed, typed so the scheduler can tell a silent meter from a garbled line.

Kept apart from the transport so code that only handles failures does not load pymodbus.
"""

from __future__ import annotations


class ModbusError(Exception):
    """Any failed request; ``kind`` names it for counters and logs."""

    kind = "error"


class ModbusTimeout(ModbusError):
    kind = "timeout"


class ModbusFramingError(ModbusError):
    """Bytes arrived but never a valid frame (bad CRC, noise, truncated)."""

    kind = "framing"


class ModbusExceptionReply(ModbusError):
    kind = "exception"

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message or f"exception reply code {code}")
        self.code = code


class ModbusConnectionError(ModbusError):
    kind = "connection"
