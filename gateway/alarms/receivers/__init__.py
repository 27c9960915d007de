"""Alarm receivers, one module per protocol behind :class:`AlarmReceiver` (see :mod:`.base`).

To add a protocol: write a module with an :class:`AlarmReceiver` subclass that turns its
messages into signals and hands them to its host before answering, and add it to
:data:`RECEIVERS` (and to ``AlarmReceiverConfig.protocol`` in the config).
"""

from __future__ import annotations

from gateway.alarms.receivers.base import AlarmReceiver, ReceiverHost
from gateway.alarms.receivers.contact_id import ContactIdAlarmReceiver
from gateway.alarms.receivers.dc09 import Dc09AlarmReceiver
from gateway.alarms.receivers.gb26875 import Gb26875AlarmReceiver

#: configured ``protocol`` -> the receiver class that speaks it
RECEIVERS: dict[str, type[AlarmReceiver]] = {
    cls.protocol: cls for cls in (Dc09AlarmReceiver, ContactIdAlarmReceiver, Gb26875AlarmReceiver)
}

__all__ = ["RECEIVERS", "AlarmReceiver", "ContactIdAlarmReceiver", "Dc09AlarmReceiver", "Gb26875AlarmReceiver",
           "ReceiverHost"]
