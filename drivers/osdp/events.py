"""libosdp's event dicts -> the reader event vocabulary (:mod:`drivers.reader`).

Runs in the CP thread, inside libosdp's callback: it must never raise, so a malformed event
becomes a :class:`~drivers.reader.ReaderError` instead.
"""

from __future__ import annotations

import time
from typing import Any

from drivers.cards import CardFormatError, card_id
from drivers.osdp.pd import PdState
from drivers.reader import CardRead, InputChange, ReaderError, ReaderEvent


def translate(st: PdState, event: dict[str, Any], stats: dict[str, int]) -> list[ReaderEvent]:
    """What ``event`` from ``st`` means to the gateway (counted in ``stats``)."""
    try:
        from osdp import Event, StatusReportType

        kind = event.get("event")
        if kind == Event.CardRead:
            return [card_read(st, event, stats)]
        if kind == Event.Status and event.get("type") == StatusReportType.Input:
            return input_changes(st, bytes(event.get("report", b"")))
    except Exception as exc:  # a malformed event must not stop the bus
        return [ReaderError(st.spec.key, f"event: {exc}")]
    return []


def card_read(st: PdState, event: dict[str, Any], stats: dict[str, int]) -> ReaderEvent:
    data = bytes(event.get("data", b""))
    bits = int(event.get("length", len(data) * 8))
    try:
        card = card_id(bits, data)
    except CardFormatError as exc:
        stats["bad_card_reads"] += 1
        return ReaderError(st.spec.key, f"card read: {exc}")
    stats["card_reads"] += 1
    return CardRead(st.spec.key, card, bits, time.monotonic())


def input_changes(st: PdState, report: bytes) -> list[ReaderEvent]:
    """One :class:`InputChange` per input that differs from the last report (all of them on the first)."""
    old = st.inputs
    st.inputs = report
    return [InputChange(st.spec.key, i, bool(value)) for i, value in enumerate(report)
            if old is None or i >= len(old) or bool(old[i]) != bool(value)]
