"""OSDP packets off the wire, and why a secure-channel handshake failed.

libosdp reports *that* a PD is offline, not *why* (the reason is only in its log).
:class:`FrameTap` reads the CP's own traffic (commands written, replies read) to
tell "no reply" from "secure channel refused": the PD answered osdp_CHLNG with a
cryptogram we rejected (key mismatch), NAKed the handshake, or reported in
osdp_PDCAP that it has no secure channel at all. Pure: bytes in, words out.
"""

from __future__ import annotations

from dataclasses import dataclass

# OSDP command/reply codes the secure-channel diagnosis looks at (OSDP 2.2, annex)
SOM = 0x53
CMD_POLL, CMD_ID, CMD_CAP, CMD_KEYSET, CMD_CHLNG, CMD_SCRYPT = 0x60, 0x61, 0x62, 0x75, 0x76, 0x77
REPLY_ACK, REPLY_NAK, REPLY_PDID, REPLY_PDCAP, REPLY_CCRYPT, REPLY_RMAC_I = 0x40, 0x41, 0x45, 0x46, 0x76, 0x78
CAP_COMMUNICATION_SECURITY = 9
NAK_SC_UNSUPPORTED = 5     # the PD does not support the security block received
NAK_SC_REQUIRED = 6        # communication security conditions not met: the PD refuses plain commands


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """OSDP's CRC-16 (CCITT polynomial 0x1021, initial value 0x1D0F), sent low byte first."""
    crc = 0x1D0F
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ b]
    return crc


@dataclass(frozen=True)
class Packet:
    """One intact OSDP packet: address byte (bit 7 set on replies), control byte, code, data, security block type.

    ``sec_type`` is 0 without a security block; 0x15-0x18 are secure-channel messages (0x17/0x18:
    data encrypted, left as it came).
    """

    addr: int
    ctrl: int
    code: int
    data: bytes
    sec_type: int = 0


def packets(buf: bytearray) -> list[Packet]:
    """Take every complete, intact OSDP packet off the front of ``buf``.

    Bytes before a start-of-message, and packets whose CRC/checksum does not hold, are dropped;
    an incomplete packet stays in ``buf``.
    """
    out: list[Packet] = []
    while True:
        start = buf.find(SOM)
        if start < 0:
            buf.clear()
            return out
        del buf[:start]
        if len(buf) < 6:
            return out
        length = buf[2] | (buf[3] << 8)
        if not 7 <= length <= 1440:
            del buf[:1]
            continue
        if len(buf) < length:
            return out
        pkt, ctrl = bytes(buf[:length]), buf[4]
        if ctrl & 0x04:
            ok = crc16(pkt[:-2]) == (pkt[-2] | (pkt[-1] << 8))
            body_end = length - 2
        else:
            ok = (sum(pkt) & 0xFF) == 0
            body_end = length - 1
        if not ok:
            del buf[:1]
            continue
        del buf[:length]
        pos, sec_type = 5, 0
        if ctrl & 0x08:  # security block: length, type, data
            sec_type = pkt[6] if length > 6 else 0
            pos += pkt[5] if length > 5 else 0
            if sec_type >= 0x15:
                body_end -= 4  # MAC
        if pos < body_end:
            out.append(Packet(pkt[1], ctrl, pkt[pos], pkt[pos + 1:body_end], sec_type))


def parse_frames(buf: bytearray) -> list[tuple[int, int, bytes]]:
    """:func:`packets` as ``(address byte, code, data)``: what the handshake diagnosis needs."""
    return [(p.addr, p.code, p.data) for p in packets(buf)]


@dataclass
class _Handshake:
    """What one PD did in the current connection attempt (set by :class:`FrameTap`)."""

    step: str = ""            # "" | id | cap | chlng | ccrypt | scrypt | rmac | online | nak
    crypt_rejected: bool = False  # the CP did not go on to osdp_SCRYPT after the PD's osdp_CCRYPT
    nak_code: int = 0
    nak_to: str = ""          # the step the NAK answered
    sc_capable: bool | None = None  # from osdp_PDCAP (None: not reported)
    replied: bool = False     # the PD answered anything in this attempt


class FrameTap:
    """Follows the secure-channel handshake per PD address from the CP's own traffic.

    An attempt starts when the CP sends osdp_ID. Passive and best effort: it never changes a
    byte, and a garbled packet is simply not seen (libosdp decides; this only explains).
    """

    def __init__(self) -> None:
        self.tx = bytearray()
        self.rx = bytearray()
        self.pds: dict[int, _Handshake] = {}

    def wrote(self, data: bytes) -> None:
        self.tx += data
        for addr, code, _ in parse_frames(self.tx):
            if addr & 0x80 or addr == 0x7F:
                continue  # an echo of a reply, or a broadcast
            if code == CMD_ID:
                self.pds[addr] = _Handshake(step="id")
                continue
            hs = self.pds.setdefault(addr, _Handshake())
            if hs.step == "ccrypt" and code != CMD_SCRYPT:
                hs.crypt_rejected = True  # libosdp could not verify the PD's cryptogram
            if code == CMD_CAP:
                hs.step = "cap"
            elif code == CMD_CHLNG:
                hs.step = "chlng"
            elif code == CMD_SCRYPT:
                hs.step = "scrypt"
            elif code != CMD_KEYSET:
                hs.step = "online"

    def read(self, data: bytes) -> None:
        self.rx += data
        for addr, code, body in parse_frames(self.rx):
            if not addr & 0x80:
                continue  # our own command echoed by a half-duplex converter
            hs = self.pds.setdefault(addr & 0x7F, _Handshake())
            hs.replied = True
            if code == REPLY_NAK:
                hs.nak_to, hs.step = hs.step, "nak"
                hs.nak_code = body[0] if body else 0
            elif code == REPLY_PDCAP:
                for i in range(0, len(body) - 2, 3):
                    if body[i] == CAP_COMMUNICATION_SECURITY:
                        hs.sc_capable = bool(body[i + 1] & 0x01)
                if hs.sc_capable is None:
                    hs.sc_capable = False  # not listed: no secure channel
            elif code == REPLY_CCRYPT:
                hs.step = "ccrypt"
            elif code == REPLY_RMAC_I:
                hs.step = "rmac"

    def why(self, address: int, secure_expected: bool) -> str:
        """Why the PD at ``address`` is not (securely) online, from its last attempt ("" = no idea)."""
        hs = self.pds.get(address)
        if hs is None or not hs.replied:
            return ""
        if secure_expected:
            if hs.sc_capable is False and hs.step in ("cap", "online"):
                return "reader does not support the secure channel (osdp_PDCAP); a plain link is not allowed " \
                       "while scbk_file is set"
            if hs.step == "ccrypt" or hs.crypt_rejected:
                return "key mismatch: the reader's cryptogram does not verify with our SCBK"
            if hs.step == "nak" and hs.nak_to == "scrypt":
                return f"key mismatch: the reader could not verify our cryptogram (NAK {hs.nak_code} to osdp_SCRYPT)"
            if hs.step == "nak" and hs.nak_to == "chlng":
                return f"the reader refused the secure channel handshake (NAK {hs.nak_code} to osdp_CHLNG)"
        elif hs.step == "nak" and hs.nak_code in (NAK_SC_UNSUPPORTED, NAK_SC_REQUIRED):
            return f"the reader requires a secure channel (NAK {hs.nak_code}): set scbk_file"
        return ""


