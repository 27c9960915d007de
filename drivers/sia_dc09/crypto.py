"""DC-09 AES: keys (hex or ASCII), AES-CBC with a zero IV, and the pad of an encrypted block.

An encrypted block's text after ``[`` is hex of AES-CBC(``pad | data ] [x..] _timestamp``),
where ``data`` is what an unencrypted block carries (``#1234|Nri1/FA012``). The pad makes the
length a multiple of 16. Its bytes may be **any** value -- panels send binary pads, ASCII pads,
pads with ``[`` or ``]`` in them, or (pysiaalarm, Hikvision) zeros without any ``|`` -- so the
plain text is kept as bytes and the pad is found, never decoded (see :func:`split_plain`).

Keys are configured either as hex (32/48/64 digits: Hikvision, most receivers' "hex key") or
as the 16/24/32 ASCII characters themselves (Ajax, pysiaalarm, dc09-spt): ``key_format`` says
which. ``cryptography`` is imported on first use: it costs ~6 MB of RSS and most panels send
plain blocks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

PAD_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
KeyFormat = Literal["hex", "ascii"]

#: after the pad: data (no brackets), "]", extended data blocks, an optional timestamp
_TAIL = re.compile(rb"[^\[\]]*\](?:\[[^\[\]]*\])*(?:_\d\d:\d\d:\d\d,\d\d-\d\d-\d{4})?\Z")
#: a NULL block's plain text with no "|" at all: pad, "]", [ext], timestamp
_BARE_TAIL = re.compile(rb"\](?:\[[^\[\]]*\])*(?:_\d\d:\d\d:\d\d,\d\d-\d\d-\d{4})?\Z")


def load_key(text: str, key_format: KeyFormat = "hex") -> bytes:
    """A DC-09 AES key from its configured text: hex digits, or the ASCII characters themselves."""
    text = text.strip()
    if key_format == "ascii":
        try:
            key = text.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("DC-09 ASCII key must be plain ASCII characters") from None
        if len(key) not in (16, 24, 32):
            raise ValueError("DC-09 ASCII key must be 16, 24 or 32 characters")
        return key
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError("DC-09 hex key is not hex (set key_format = \"ascii\" for a key typed as text)") from None
    if len(key) not in (16, 24, 32):
        raise ValueError("DC-09 AES key must be 16, 24 or 32 bytes (32, 48 or 64 hex digits)")
    return key


@dataclass(frozen=True)
class KeyRing:
    """AES keys of one receiver: ``default`` for every account, ``accounts`` (upper case) per account."""

    default: bytes | None = None
    accounts: Mapping[str, bytes] = field(default_factory=dict)

    def for_account(self, account: str) -> bytes | None:
        return self.accounts.get(account.upper(), self.default) if self.accounts else self.default

    def __bool__(self) -> bool:
        return self.default is not None or bool(self.accounts)


#: one Cipher per key, reused (each block still gets its own encryptor/decryptor context): building it
#: is 6 of the 11 us a decryption takes, twice per encrypted block (the block, the ACK)
_CIPHERS: dict[bytes, Any] = {}


def _aes_cbc(key: bytes) -> Any:
    cipher = _CIPHERS.get(key)
    if cipher is None:
        # imported on first use: cryptography costs ~6 MB of RSS, and most panels send plain blocks
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        if len(_CIPHERS) >= 256:   # a site has a few keys; bounded anyway
            _CIPHERS.clear()
        cipher = _CIPHERS[key] = Cipher(algorithms.AES(key), modes.CBC(bytes(16)))
    return cipher


def aes_encrypt(key: bytes, plain: bytes) -> bytes:
    enc = _aes_cbc(key).encryptor()
    return enc.update(plain) + enc.finalize()


def aes_decrypt(key: bytes, cipher: bytes) -> bytes:
    dec = _aes_cbc(key).decryptor()
    return dec.update(cipher) + dec.finalize()


def _pad_for(length: int) -> bytes:
    n = (-length) % 16
    rnd = os.urandom(n)
    return bytes(PAD_ALPHABET[b % len(PAD_ALPHABET)] for b in rnd)


def encrypt_tail(key: bytes, tail: str | bytes) -> str:
    """``tail`` = what follows the pad's ``|`` (``#1234|...]_timestamp`` or ``]_timestamp``) -> upper hex."""
    raw = tail.encode("latin-1") if isinstance(tail, str) else tail
    body = b"|" + raw
    return aes_encrypt(key, _pad_for(len(body)) + body).hex().upper()


def decrypt(key: bytes, hex_text: bytes | str) -> bytes | None:
    """The plain bytes of an encrypted block's text after ``[``, or None (not hex, not whole blocks)."""
    try:
        raw = bytes.fromhex(hex_text.decode("ascii") if isinstance(hex_text, bytes) else hex_text)
    except (ValueError, UnicodeDecodeError):
        return None
    if not raw or len(raw) % 16:
        return None
    return aes_decrypt(key, raw)


def split_plain(plain: bytes, account: str = "") -> tuple[bytes, bytes] | None:
    """(pad, rest after the pad's ``|``) of decrypted plain text, or None when no layout fits.

    The pad is at most 16 bytes and may contain anything, ``|`` included, so: the standard
    layout first (``|#acct|`` right after the pad), then the first ``|`` in reach whose rest
    has the shape of data (``...]`` [x..] [timestamp]). A plain text with no ``|`` at all but
    that shape (pad then ``]``, as Hikvision's ``*NULL`` and pysiaalarm's encoder send) is a
    block without data: its rest starts at the ``]``.
    """
    if account:
        at = plain.find(b"|#" + account.encode("ascii", "replace") + b"|", 0, 18 + len(account))
        if at >= 0 and _TAIL.match(plain, at + 1):
            return plain[:at], plain[at + 1:]
    at = plain.find(b"|")
    while 0 <= at <= 17:
        if _TAIL.match(plain, at + 1):
            return plain[:at], plain[at + 1:]
        at = plain.find(b"|", at + 1)
    m = _BARE_TAIL.search(plain, 0)
    if m is not None and m.start() <= 17 and b"|" not in plain[m.start():]:
        return plain[:m.start()], plain[m.start():]
    return None
