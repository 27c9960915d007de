"""Modbus for meters: profiles (typed fields, byte/word order), read planning, bus transports.

Protocol only: nothing here knows about the gateway.
"""

from drivers.modbus.errors import (
    ModbusConnectionError,
    ModbusError,
    ModbusExceptionReply,
    ModbusFramingError,
    ModbusTimeout,
)
from drivers.modbus.plan import ReadBlock, decode_plan, plan_reads
from drivers.modbus.profile import Field, Profile, ProfileError, decode_raw, encode_raw, load_profile
from drivers.modbus.valve import Restrict, Valve

__all__ = ["Field", "ModbusBus", "ModbusConnectionError", "ModbusError", "ModbusExceptionReply",
           "ModbusFramingError", "ModbusTimeout", "Profile", "ProfileError", "ReadBlock", "Restrict", "Valve",
           "decode_plan", "decode_raw", "encode_raw", "load_profile", "plan_reads"]


def __getattr__(name: str) -> object:
    """``ModbusBus`` loads pymodbus on first use: a gateway without meters never pays for it."""
    if name == "ModbusBus":
        from drivers.modbus.transport import ModbusBus

        return ModbusBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
