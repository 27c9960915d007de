"""Alarms: panels' signals -> alarms a person acknowledges; escalation, panel supervision, fire linkage, handover.

Why it is built this way:

* **Nothing missed.** Every signal from a panel is committed (alarm row + ``alarm.*`` event +
  the panel log row, one transaction) *before* the panel gets its ACK / confirm. A DC-09 block
  retried after a crash is recognised by (receiver, account, sequence, content digest) --
  appended to ``alarm_blocks``, looked up in memory (``dedupe.py``) -- and ACKed again without a
  second alarm.
* **Every alarm is seen by a person.** Lifecycle ``raised -> acknowledged`` (operator, with a
  note) and ``restored`` (from the panel) in either order; ``closed`` once both happened
  (a test alarm closes on acknowledgement alone). Unacknowledged alarms emit
  ``alarm.escalated`` after ``[alarms] escalate_s[kind]`` and again each interval after.
* **Panels are supervised.** Any valid message refreshes a panel's liveness; silence past
  ``supervision_s`` raises a ``fault`` alarm and marks the receiver offline.
* **Fire linkage works offline.** A fire/smoke alarm holds its zone's doors released through
  ``ctx.door_holds`` until it closes; holds still owed are re-applied at start.
* **Handover.** ``GET /handover`` gathers what is still open from every area;
  ``POST /handover`` records it (audited) and emits ``shift.handover``.

One asyncio loop owns the in-memory state (liveness); all durable state is in SQLite
(:mod:`.store`). The package's modules are listed in :mod:`.component`.
"""

from __future__ import annotations

from gateway.alarms.component import AlarmsComponent
from gateway.alarms.errors import AlarmAlreadyAcknowledged, AlarmNotFound, UnknownState
from gateway.alarms.handover import HANDOVER_EVENTS, HANDOVER_EVENTS_MAX
from gateway.alarms.lifecycle import Outcome
from gateway.alarms.models import AckIn, HandoverIn
from gateway.alarms.signals import Signal, cid_signal, signals_from_dc09, signals_from_gb

__all__ = ["HANDOVER_EVENTS", "HANDOVER_EVENTS_MAX", "AckIn", "AlarmAlreadyAcknowledged", "AlarmNotFound", "AlarmsComponent", "HandoverIn", "Outcome", "Signal",
           "UnknownState", "cid_signal", "signals_from_dc09", "signals_from_gb"]
