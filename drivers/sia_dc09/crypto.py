"""DC-09 AES: keys, AES-CBC with a zero IV, and the random pad of an encrypted block's data.

An encrypted block's text after ``[`` is hex of AES-CBC(``pad | data ] [x..] _timestamp``):
random pad bytes (never ``|[]``) so the length is a multiple of 16. ``cryptography`` is
imported on first use: it costs ~6 MB of RSS and most panels send plain blocks.
"""

from __future__ import annotations

import os
from typing import Any

PAD_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def load_key(text: str) -> bytes:
    """A DC-09 key as hex (32/48/64 hex digits = AES-128/192/256)."""
    key = bytes.fromhex(text.strip())
    if len(key) not in (16, 24, 32):
        raise ValueError("DC-09 AES key must be 16, 24 or 32 bytes (32, 48 or 64 hex digits)")
    return key


def _aes_cbc(key: bytes) -> Any:
    # imported on first use: cryptography costs ~6 MB of RSS, and most panels send plain blocks
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    return Cipher(algorithms.AES(key), modes.CBC(bytes(16)))


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


def encrypt_tail(key: bytes, tail: str) -> str:
    """``tail`` = what follows ``|`` in the plain data (``...]_timestamp``) -> uppercase hex."""
    body = b"|" + tail.encode("ascii")
    return aes_encrypt(key, _pad_for(len(body)) + body).hex().upper()


def decrypt_tail(key: bytes, hex_text: str) -> str | None:
    """The plain text after the pad's ``|`` of an encrypted block, or None."""
    try:
        raw = bytes.fromhex(hex_text)
    except ValueError:
        return None
    if not raw or len(raw) % 16:
        return None
    try:
        plain = aes_decrypt(key, raw).decode("ascii")
    except (UnicodeDecodeError, ValueError):
        return None
    _pad, bar, rest = plain.partition("|")
    return rest if bar else None
