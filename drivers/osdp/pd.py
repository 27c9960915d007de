"""One reader (PD) on an OSDP bus: how it is configured, what the bus knows of it, why it is offline."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.osdp.channel import SerialChannel
from drivers.reasons import (
    NO_REPLY,
    NONE,
    PLAIN_REFUSED,
    PORT_ERROR,
    SECURE_CHANNEL_FAILED,
    SECURE_CHANNEL_KEY_MISMATCH,
    Reason,
)


@dataclass(frozen=True)
class PdSpec:
    """One reader on the bus: our key for it, its OSDP address, and its SCBK (None = plain).

    ``key_source`` names where the SCBK came from (the scbk_file), for the offline reason.
    """

    key: str
    address: int
    scbk: bytes | None = None
    install_mode: bool = False
    key_source: str = ""


def load_scbk(path: str | Path) -> bytes:
    """A secure channel key file: 32 hex digits (whitespace ignored)."""
    text = "".join(Path(path).read_text(encoding="ascii").split())
    key = bytes.fromhex(text)
    if len(key) != 16:
        raise ValueError(f"{path}: SCBK must be 16 bytes (32 hex digits), got {len(key)}")
    return key


@dataclass
class PdState:
    """What the bus thread knows of one PD (touched only under the bus lock)."""

    spec: PdSpec
    index: int
    online: bool | None = None
    secure: bool = False
    offline_since: float = 0.0
    inputs: bytes | None = None
    last_retry: float = 0.0
    pending: tuple[bool, bool] | None = None
    pending_checks: int = 0
    reason: Reason = NONE     # the offline reason last reported
    refused: str = ""         # set when the bus itself refused the link in this attempt
    extra: dict[str, Any] = field(default_factory=dict)


def offline_reason(st: PdState, channel: SerialChannel) -> Reason:
    """Why ``st`` is offline, as specific as the bus traffic allows (the bus's words stay a detail)."""
    if channel.down_since is not None and channel.last_error:
        return PORT_ERROR(error=channel.last_error)
    keyed = st.spec.scbk is not None
    seen = channel.tap.why(st.spec.address, keyed)
    why = seen if seen.startswith("reader does not support") else (st.refused or seen)
    if why and keyed:
        code = SECURE_CHANNEL_FAILED
        if why.startswith("key mismatch") and not st.spec.install_mode:
            code = SECURE_CHANNEL_KEY_MISMATCH
        return code(detail=why, key_file=st.spec.key_source or "?")
    if why:
        return PLAIN_REFUSED(detail=why)
    return PORT_ERROR(error=channel.last_error) if channel.last_error else NO_REPLY()
