"""Modbus for meters: profiles (typed fields, byte/word order), read planning, bus transports.

Protocol only: nothing here knows about the gateway.
"""

from drivers.modbus.plan import ReadBlock, decode_plan, plan_reads
from drivers.modbus.profile import Field, Profile, ProfileError, Valve, decode_raw, encode_raw, load_profile
from drivers.modbus.transport import (ModbusBus, ModbusConnectionError, ModbusError, ModbusExceptionReply,
                                      ModbusFramingError, ModbusTimeout)

__all__ = ["Field", "ModbusBus", "ModbusConnectionError", "ModbusError", "ModbusExceptionReply",
           "ModbusFramingError", "ModbusTimeout", "Profile", "ProfileError", "ReadBlock", "Valve",
           "decode_plan", "decode_raw", "encode_raw", "load_profile", "plan_reads"]
