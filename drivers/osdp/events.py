"""libosdp's event dicts, and osdp_FMT replies read off the wire, -> the reader event vocabulary.

Runs in the CP thread (inside libosdp's callback, or the bus loop): it must never raise, so a
malformed event becomes a :class:`~drivers.reader.ReaderError` instead. Card data formats and
their ids: :mod:`drivers.osdp.cardread`.
"""

from __future__ import annotations

import time
from typing import Any

from drivers.cards import CardFormatError
from drivers.osdp.cardread import FmtRead, decode_fmt_reply, event_card
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
    try:
        card, bits = event_card(event)
    except (CardFormatError, KeyError, TypeError, ValueError) as exc:
        stats["bad_card_reads"] += 1
        return ReaderError(st.spec.key, f"card read: {exc}", "format")
    stats["card_reads"] += 1
    return CardRead(st.spec.key, card, bits, time.monotonic())


FMT_UNDECODABLE = ("osdp_FMT card read under the secure channel cannot be decoded (its data is encrypted inside "
                   "libosdp, which drops osdp_FMT as deprecated since OSDP 2.2.2): set the reader to report osdp_RAW")


def fmt_read(st: PdState, read: FmtRead, stats: dict[str, int]) -> ReaderEvent | None:
    """An osdp_FMT reply seen on the wire (libosdp ignores it); None = dropped (counted).

    Only a plain-text reader's read is used. A reader with an SCBK is trusted only through the
    secure channel libosdp verifies: its plain-text osdp_FMT is dropped like any plain report
    of a keyed reader, and an encrypted one is refused with the reason (its MAC is not ours to check).
    """
    if st.spec.scbk is not None and read.sec_type == 0:
        stats["plain_dropped"] += 1
        return None
    if read.sec_type != 0:
        stats["bad_card_reads"] += 1
        return ReaderError(st.spec.key, FMT_UNDECODABLE, "format")
    try:
        _reader_no, card = decode_fmt_reply(read.data)
    except CardFormatError as exc:
        stats["bad_card_reads"] += 1
        return ReaderError(st.spec.key, f"card read: {exc}", "format")
    stats["card_reads"] += 1
    return CardRead(st.spec.key, card, 0, time.monotonic())


def input_changes(st: PdState, report: bytes) -> list[ReaderEvent]:
    """One :class:`InputChange` per input that differs from the last report (all of them on the first)."""
    old = st.inputs
    st.inputs = report
    return [InputChange(st.spec.key, i, bool(value)) for i, value in enumerate(report)
            if old is None or i >= len(old) or bool(old[i]) != bool(value)]
