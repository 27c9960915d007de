"""Door access: card register, offline decisions, doors, enrolment by swipe, permission sync.

The gateway is the door controller. Readers (OSDP, serial ASCII, Wiegand
converters) hand card reads to one asyncio consumer; it decides from the local
SQLite register -- with or without the central system -- records the decision
as an event, and only then drives the relay, LED and buzzer.

Decision order (deny on any doubt): unknown -> revoked -> not yet valid / expired
-> outside schedule -> not permitted at this door -> anti-passback -> grant
(:func:`gateway.access.rules.decide`).

Card holder names live in the register (and the HTTP API for staff) only: never
in events, logs or MQTT. Events carry the unit and the holder kind.

Modules, one concern each: ``models`` (requests, commands, answers, the Door),
``rules`` (pure decisions, scope, schedule, worker and fee rules), ``register``
(all SQL, migrations), ``readers`` (drivers -> typed events), ``decisions``
(a swipe -> decision -> relay), ``doors`` (contact, held-open, unlocks, holds),
``cards`` (issue, change in place, revoke, fees), ``enrolment`` (provisioning at
the door: only unknown cards are taken), ``sync`` (central's deltas, snapshots and
occupants, with per-card results), ``privacy`` (holder-name sweep), ``errors``,
and ``component`` (wires them).
"""

from gateway.access.component import AccessComponent
from gateway.access.errors import BadSpec
from gateway.access.models import (
    ApplyArgs,
    CardIn,
    CardSpec,
    Door,
    DoorUnlockArgs,
    EnrolmentIn,
    SnapshotArgs,
    UnlockIn,
    Window,
)
from gateway.access.rules import decide, door_in_scope, door_serves_unit, in_schedule, normalize_scope

__all__ = ["AccessComponent", "ApplyArgs", "BadSpec", "CardIn", "CardSpec", "Door", "DoorUnlockArgs",
           "EnrolmentIn", "SnapshotArgs", "UnlockIn", "Window", "decide", "door_in_scope", "door_serves_unit",
           "in_schedule", "normalize_scope"]
