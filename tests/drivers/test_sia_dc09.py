"""SIA DC-09: blocks from an independent encoder (written from the standard, not from our decoder), over real TCP."""

from __future__ import annotations

import asyncio
import os
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.listener import Limits
from drivers.sia_dc09 import (
    BlockError,
    Dc09Message,
    Dc09Receiver,
    Framer,
    Verdict,
    crc16_arc,
    parse_block,
    parse_response,
)

pytestmark = pytest.mark.timeout(90)

KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")


# ---------------------------------------------------------------------- the independent encoder
def ref_crc(data: bytes) -> int:
    """CRC-16/ARC the long way: poly 0x8005, input and output reflected, init 0."""

    def reflect(v: int, width: int) -> int:
        return int(f"{v:0{width}b}"[::-1], 2)

    crc = 0
    for byte in data:
        crc ^= reflect(byte, 8) << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return reflect(crc, 16)


def ref_ts(t: datetime) -> str:
    t = t.astimezone(UTC)
    return "_%02d:%02d:%02d,%02d-%02d-%04d" % (t.hour, t.minute, t.second, t.month, t.day, t.year)


def ref_block(token: str, seq: int, acct: str, data: str | None, *, rcv: str = "", line: str = "0",
              ts: datetime | None = None, key: bytes | None = None, crc_delta: int = 0, len_delta: int = 0,
              stamp: bool = True, acct_in_plain: bool = True) -> bytes:
    """LF crc 0LLL "id" seq Rrcvr Lpref #acct [data] _timestamp CR, per the standard's layout.

    Encrypted: ``pad|#acct|data]_timestamp`` (``acct_in_plain=False``: ``pad|data]...``, as
    pysiaalarm's own encoder and some panels do).
    """
    when = ref_ts(ts or datetime.now(UTC)) if stamp or key else ""
    head = '"' + ("*" if key else "") + token + '"' + "%04d" % seq + (("R" + rcv) if rcv else "") + "L" + line + "#" + acct
    if key is None:
        inner = "" if data is None else "#" + acct + "|" + data
        body = head + "[" + inner + "]" + when
    else:
        inner = "" if data is None else ("#" + acct + "|" + data if acct_in_plain else data)
        plain = "|" + inner + "]" + when
        padn = 16 - len(plain) % 16 if len(plain) % 16 else 0
        plain = "".join(random.choice("XYZxyz0123") for _ in range(padn)) + plain
        enc = Cipher(algorithms.AES(key), modes.CBC(b"\0" * 16)).encryptor()
        ct = enc.update(plain.encode()) + enc.finalize()
        body = head + "[" + ct.hex().upper()
    raw = body.encode()
    crc = (ref_crc(raw) + crc_delta) & 0xFFFF
    return b"\n" + ("%04X" % crc).encode() + ("0%03X" % (len(raw) + len_delta)).encode() + raw + b"\r"


def test_crc_matches_the_catalogue_and_the_reference() -> None:
    from drivers.sia_dc09 import crc

    assert crc16_arc(b"123456789") == 0xBB3D
    assert crc._impl is not crc.crc16_arc_table and crc._impl.__module__ != crc.__name__   # the compiled one
    crc16_arc_table = crc.crc16_arc_table
    assert crc16_arc(b"123456789") == 0xBB3D == ref_crc(b"123456789") == crc16_arc_table(b"123456789")
    for _ in range(200):
        data = os.urandom(random.randint(0, 300))
        assert crc16_arc(data) == ref_crc(data) == crc16_arc_table(data)
        assert crc16_arc(bytearray(data)) == crc16_arc(memoryview(data)) == ref_crc(data)


# ---------------------------------------------------------------------- parsing
def parse(block: bytes, **kw: Any) -> Dc09Message | BlockError:
    assert block[:1] == b"\n" and block[-1:] == b"\r"
    kw.setdefault("now", datetime.now(UTC))
    return parse_block(block[1:-1], **kw)


def test_parses_the_three_formats() -> None:
    m = parse(ref_block("SIA-DCS", 7, "1234", "Nri1/FA012", rcv="A1"))
    assert isinstance(m, Dc09Message)
    assert (m.id_token, m.seq, m.receiver, m.account, m.payload) == ("SIA-DCS", "0007", "A1", "1234", "Nri1/FA012")
    m = parse(ref_block("ADM-CID", 8, "ABC123", "1110 01 012"))
    assert isinstance(m, Dc09Message) and m.payload == "1110 01 012" and m.account == "ABC123"
    m = parse(ref_block("NULL", 9, "1234", None))
    assert isinstance(m, Dc09Message) and m.id_token == "NULL" and m.data == ""
    m = parse(ref_block("ADM-CID", 10, "1234", "1110 01 012", stamp=False))   # timestamp optional in clear
    assert isinstance(m, Dc09Message) and m.timestamp is None


def test_encrypted_blocks() -> None:
    m = parse(ref_block("SIA-DCS", 3, "1234", "Nri1/FA012", key=KEY), keys=lambda a: KEY)
    assert isinstance(m, Dc09Message) and m.encrypted and m.payload == "Nri1/FA012"
    assert m.data == "#1234|Nri1/FA012"
    m = parse(ref_block("SIA-DCS", 3, "1234", "Nri1/FA012", key=KEY, acct_in_plain=False), keys=lambda a: KEY)
    assert isinstance(m, Dc09Message) and m.payload == "Nri1/FA012"
    m = parse(ref_block("NULL", 4, "1234", None, key=KEY), keys=lambda a: KEY)
    assert isinstance(m, Dc09Message) and m.id_token == "NULL"
    e = parse(ref_block("SIA-DCS", 3, "1234", "Nri1/FA012", key=KEY))          # no key here
    assert isinstance(e, BlockError) and e.verdict is Verdict.DUH
    e = parse(ref_block("SIA-DCS", 3, "1234", "Nri1/FA012", key=KEY), keys=lambda a: bytes(16))   # wrong key
    assert isinstance(e, BlockError) and e.verdict is Verdict.DUH


@pytest.mark.parametrize("kw,verdict", [
    ({"crc_delta": 1}, Verdict.NAK),
    ({"len_delta": 1}, Verdict.NAK),
    ({"len_delta": -1}, Verdict.NAK),
    ({"ts": -60}, Verdict.NAK),
    ({"ts": 30}, Verdict.NAK),
])
def test_refused_blocks(kw: dict[str, Any], verdict: Verdict) -> None:
    if "ts" in kw:   # relative to now at run time, not at collection
        kw = {"ts": datetime.now(UTC) + timedelta(seconds=kw["ts"])}
    e = parse(ref_block("ADM-CID", 5, "1234", "1110 01 012", **kw), plain_window=True)
    assert isinstance(e, BlockError) and e.verdict is verdict


def test_plain_blocks_skip_the_window_unless_asked_encrypted_ones_never() -> None:
    old = datetime.now(UTC) - timedelta(hours=8)     # a panel on local time
    assert isinstance(parse(ref_block("ADM-CID", 5, "1234", "1110 01 012", ts=old)), Dc09Message)
    e = parse(ref_block("ADM-CID", 5, "1234", "1110 01 012", ts=old), plain_window=True)
    assert isinstance(e, BlockError) and e.verdict is Verdict.NAK
    e = parse(ref_block("ADM-CID", 5, "1234", "1110 01 012", ts=old, key=KEY), keys=lambda a: KEY)
    assert isinstance(e, BlockError) and e.verdict is Verdict.NAK and (e.seq, e.account) == ("0005", "1234")


def test_time_window_edges() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    for delta, ok in [(-39, True), (19, True), (-41, False), (21, False)]:
        m = parse(ref_block("NULL", 1, "1234", None, ts=now + timedelta(seconds=delta), key=KEY), now=now,
                  keys=lambda a: KEY)
        assert isinstance(m, Dc09Message) is ok, delta


def test_unknown_format_and_account_are_duh() -> None:
    e = parse(ref_block("SIA-XYZ", 1, "1234", "N"))
    assert isinstance(e, BlockError) and e.verdict is Verdict.DUH
    e = parse(ref_block("ADM-CID", 1, "9999", "1110 01 012"), accounts=["1234"])
    assert isinstance(e, BlockError) and e.verdict is Verdict.DUH


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300))
def test_parser_never_raises(data: bytes) -> None:
    res = parse_block(data, keys=lambda a: KEY, now=datetime.now(UTC), accounts=["1234"])
    assert isinstance(res, (Dc09Message, BlockError))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=20), st.integers(1, 50))
def test_framer_never_raises_and_finds_blocks_among_noise(noise: list[bytes], chunk: int) -> None:
    good = ref_block("ADM-CID", 1, "1234", "1110 01 012")
    stream = b"".join(n.replace(b"\n", b"") + good for n in noise) or good
    f = Framer()
    out: list[bytes] = []
    for i in range(0, len(stream), chunk):
        out += f.feed(stream[i:i + chunk])
    assert out.count(good[1:-1]) == max(1, len(noise))
    assert all(b"\n" not in b and b"\r" not in b for b in out)


@settings(max_examples=150, deadline=None)
@given(seq=st.integers(1, 9999), acct=st.from_regex(r"[0-9A-F]{3,16}", fullmatch=True),
       zone=st.integers(0, 999), code=st.sampled_from(["FA", "BA", "PA", "YT"]), enc=st.booleans())
def test_round_trip(seq: int, acct: str, zone: int, code: str, enc: bool) -> None:
    block = ref_block("SIA-DCS", seq, acct, f"Nri1/{code}{zone:03d}", key=KEY if enc else None)
    m = parse(block, keys=lambda a: KEY)
    assert isinstance(m, Dc09Message)
    assert (int(m.seq), m.account, m.payload, m.encrypted) == (seq, acct, f"Nri1/{code}{zone:03d}", enc)


# ---------------------------------------------------------------------- over TCP
class Recorder:
    def __init__(self) -> None:
        self.messages: list[Dc09Message] = []
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def __call__(self, msg: Dc09Message) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("store down")
        self.messages.append(msg)


async def exchange(port: int, block: bytes, timeout: float = 5) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(block)
    await w.drain()
    data = await asyncio.wait_for(r.readuntil(b"\r"), timeout)
    w.close()
    return data


def answer(data: bytes) -> tuple[str, str]:
    f = Framer()
    [body] = f.feed(data)
    res = parse_response(body)
    assert res is not None, data
    return res


def with_receiver(fn: Any, **kw: Any) -> None:
    async def main() -> None:
        rec = Recorder()
        idle = kw.pop("idle_timeout_s", None)
        limits = kw.pop("limits", None)
        server = Dc09Receiver("127.0.0.1", 0, rec, **kw)
        if limits is not None:
            server.listener.limits = limits
        if idle is not None:
            server.idle_timeout_s = idle
        port = await server.start()
        task = asyncio.create_task(server.serve_forever())
        try:
            await fn(server, port, rec)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.close()

    asyncio.run(main())


def test_tcp_verdicts() -> None:
    async def body(server: Dc09Receiver, port: int, rec: Recorder) -> None:
        assert answer(await exchange(port, ref_block("ADM-CID", 12, "1234", "1110 01 012"))) == ("ACK", "0012")
        assert answer(await exchange(port, ref_block("ADM-CID", 13, "1234", "1110 01 012", crc_delta=3))) == ("NAK", "0000")
        assert answer(await exchange(port, ref_block("ADM-CID", 14, "1234", "1110 01 012", len_delta=2)))[0] == "NAK"
        old = datetime.now(UTC) - timedelta(minutes=5)
        nak = await exchange(port, ref_block("ADM-CID", 15, "1234", "1110 01 012", ts=old))
        assert answer(nak)[0] == "NAK"
        # the NAK carries the receiver's time so the panel can set its clock
        stamp = nak.decode().rsplit("_", 1)[1].rstrip("\r")
        assert abs((datetime.strptime(stamp, "%H:%M:%S,%m-%d-%Y").replace(tzinfo=UTC)
                    - datetime.now(UTC)).total_seconds()) < 5
        assert answer(await exchange(port, ref_block("SIA-FOO", 16, "1234", "N")))[0] == "DUH"
        assert answer(await exchange(port, ref_block("ADM-CID", 17, "7777", "1110 01 012")))[0] == "DUH"
        # the ACK echoes receiver, line and account
        ack = (await exchange(port, ref_block("NULL", 18, "1234", None, rcv="12", line="3"))).decode()
        assert '"ACK"0018R12L3#1234[]' in ack
        assert [m.seq for m in rec.messages] == ["0012", "0018"]
        assert server.stats.acks == 2 and server.stats.naks == 3 and server.stats.duhs == 2

    with_receiver(body, accounts=["1234"], plain_window=True)


def test_encrypted_over_tcp_gets_an_encrypted_ack() -> None:
    async def body(server: Dc09Receiver, port: int, rec: Recorder) -> None:
        raw = await exchange(port, ref_block("SIA-DCS", 21, "1234", "Nri1/FA012", key=KEY))
        text = raw.decode()
        assert '"*ACK"0021L0#1234[' in text
        hexpart = text.split("[", 1)[1].rstrip("\r")
        dec = Cipher(algorithms.AES(KEY), modes.CBC(b"\0" * 16)).decryptor()
        plain = (dec.update(bytes.fromhex(hexpart)) + dec.finalize()).decode()
        assert plain.split("|", 1)[1].startswith("]_")
        assert rec.messages[0].payload == "Nri1/FA012"

    with_receiver(body, keys=KEY)


def test_ack_waits_for_the_handler_and_failure_naks() -> None:
    async def body(server: Dc09Receiver, port: int, rec: Recorder) -> None:
        rec.gate = asyncio.Event()
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(ref_block("ADM-CID", 30, "1234", "1110 01 012"))
        await w.drain()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(r.readuntil(b"\r"), 0.3)    # not committed yet: no answer
        rec.gate.set()
        assert answer(await asyncio.wait_for(r.readuntil(b"\r"), 5))[0] == "ACK"
        rec.fail = True
        w.write(ref_block("ADM-CID", 31, "1234", "1110 01 012"))
        await w.drain()
        assert answer(await asyncio.wait_for(r.readuntil(b"\r"), 5))[0] == "NAK"
        w.close()

    with_receiver(body)


def test_several_blocks_per_read_and_split_blocks() -> None:
    async def body(server: Dc09Receiver, port: int, rec: Recorder) -> None:
        blocks = b"".join(ref_block("ADM-CID", i, "1234", f"1130 01 {i:03d}") for i in range(1, 6))
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"noise\r" + blocks[:3])
        await w.drain()
        await asyncio.sleep(0.05)
        w.write(blocks[3:])
        await w.drain()
        got = []
        for _ in range(5):
            got.append(answer(await asyncio.wait_for(r.readuntil(b"\r"), 5)))
        assert got == [("ACK", f"{i:04d}") for i in range(1, 6)]
        # byte by byte (a slow sender)
        one = ref_block("ADM-CID", 6, "1234", "1130 01 006")
        for i in range(len(one)):
            w.write(one[i:i + 1])
            await w.drain()
        assert answer(await asyncio.wait_for(r.readuntil(b"\r"), 5)) == ("ACK", "0006")
        w.close()

    with_receiver(body)


def test_100_concurrent_panels_half_sending_garbage() -> None:
    async def body(server: Dc09Receiver, port: int, rec: Recorder) -> None:
        half_open = []
        for _ in range(10):   # connections that send half a block and never finish
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"\n1234" + os.urandom(20))
            half_open.append(w)

        async def good(n: int) -> list[tuple[str, str]]:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            out = []
            for k in range(5):
                w.write(ref_block("ADM-CID", n * 10 + k + 1, "1234", f"1130 01 {n:03d}"))
                await w.drain()
                out.append(answer(await asyncio.wait_for(r.readuntil(b"\r"), 10)))
            w.close()
            return out

        async def bad(n: int) -> None:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(20):
                w.write(os.urandom(random.randint(1, 300)))
                await w.drain()
                await asyncio.sleep(0.005)
            w.close()

        results = await asyncio.gather(*[good(n) for n in range(50)], *[bad(n) for n in range(50)])
        for n, res in enumerate(results[:50]):
            assert res == [("ACK", "%04d" % (n * 10 + k + 1)) for k in range(5)]
        assert len(rec.messages) == 250
        assert server.stats.garbage_bytes > 0
        for w in half_open:
            w.close()
        # still serving
        assert answer(await exchange(port, ref_block("NULL", 1, "1234", None)))[0] == "ACK"

    # 110 connections from one address at once: above the production per-source cap (drivers/listener.py)
    with_receiver(body, limits=Limits(max_per_source=500))


def test_idle_connections_are_closed() -> None:
    async def body(server: Dc09Receiver, port: int, rec: Recorder) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(r.read(), 5) == b""    # the receiver hung up on a silent peer
        w.close()

    with_receiver(body, idle_timeout_s=0.3)


def test_nak_is_the_standard_form_even_for_a_block_with_receiver_and_line() -> None:
    async def body(server: Dc09Receiver, port: int, rec: Recorder) -> None:
        old = datetime.now(UTC) - timedelta(minutes=5)
        nak = await exchange(port, ref_block("NULL", 15, "1234", None, ts=old, rcv="12", line="3", key=KEY))
        assert nak[9:].startswith(b'"NAK"0000R0L0A0[]_')
        duh = await exchange(port, ref_block("NULL", 16, "1234", None, rcv="12", line="3", key=bytes(16)))
        assert duh[9:].startswith(b'"DUH"0016R12L3#1234[]')

    with_receiver(body, keys=KEY)


def test_extended_fields_are_named() -> None:
    """Windows-1252 text in x-data (DC-09 5.5.1.8): the CRC is over those bytes, the text comes out right."""
    raw = ('"SIA-DCS"0003L0#1234[#1234|Nri1/PA501][X006E07.77][Y49N06.66][ITür offen][Qodd]').encode("cp1252")
    m = parse(b"\n" + f"{crc16_arc(raw):04X}0{len(raw):03X}".encode() + raw + b"\r")
    assert isinstance(m, Dc09Message)
    assert m.extended_fields == (("X", "longitude", "006E07.77"), ("Y", "latitude", "49N06.66"),
                                 ("I", "alarm text", "Tür offen"), ("Q", "unknown", "odd"))
