"""Garbage on the line: whatever bytes come back, a bus read ends in a typed ModbusError or valid registers."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.modbus import ModbusBus, ModbusError
from drivers.modbus.transport import ModbusFramingError


async def _exchange(framing: str, reply: bytes) -> list[int] | ModbusError:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(260)
            writer.write(reply)
            await writer.drain()
            await reader.read(260)  # hold the connection until the client gives up
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bus = ModbusBus(framing, f"127.0.0.1:{port}", timeout_s=0.05, retries=0)
    try:
        return await bus.read("holding", 0, 4, 1)
    except ModbusError as exc:
        return exc
    finally:
        await bus.close()
        server.close()


@given(st.sampled_from(["tcp", "rtu-over-tcp"]), st.binary(max_size=40))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_replies_give_typed_errors(framing: str, reply: bytes) -> None:
    out = asyncio.run(_exchange(framing, reply))
    if isinstance(out, list):
        assert len(out) == 4 and all(0 <= r <= 0xFFFF for r in out)
    else:
        assert isinstance(out, ModbusError)


def test_bytes_without_a_valid_frame_are_a_framing_error() -> None:
    out = asyncio.run(_exchange("rtu-over-tcp", b"\x01\x03\x08" + b"\x00" * 8 + b"\xde\xad"))
    assert isinstance(out, ModbusFramingError)
