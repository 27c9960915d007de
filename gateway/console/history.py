"""A meter's recent readings for the console's small consumption chart.

Read from the metering area's ``readings`` table (kept for billing pulls, indexed by
meter); from the event log when this gateway has no metering tables. Read-only.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from gateway.store import Store


def meter_history(store: Store, meter: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` readings of a meter, oldest first."""
    try:
        rows = store.query("SELECT read_at, vals FROM readings WHERE meter=? ORDER BY id DESC LIMIT ?",
                           (meter, limit))
        pairs = [(r["read_at"], r["vals"]) for r in rows]
    except sqlite3.OperationalError:
        rows = store.query(
            "SELECT ts, data FROM events WHERE type='meter.reading' AND json_extract(data, '$.meter') = ? "
            "ORDER BY seq DESC LIMIT ?", (meter, limit))
        pairs = [(r["ts"], r["data"]) for r in rows]
    out = []
    for read_at, text in reversed(pairs):
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("values"), dict):  # an event's data
            read_at, data = data.get("read_at") or read_at, data["values"]
        if isinstance(data, dict):
            out.append({"read_at": read_at, "values": data})
    return out
