"""What the alarm area refuses, as domain errors (HTTP status and MQTT ``ok:false`` follow from the class)."""

from __future__ import annotations

from gateway.alarms.rules import STATES
from gateway.errors import Conflict, Invalid, NotFound


class AlarmNotFound(NotFound):
    """No alarm with this id (404 ``not_found``)."""

    def __init__(self, alarm_id: int) -> None:
        super().__init__("not_found", f"no alarm {alarm_id}")
        self.alarm_id = alarm_id


class AlarmAlreadyAcknowledged(Conflict):
    """An alarm is acknowledged once (409 ``already_acknowledged``)."""

    def __init__(self, alarm_id: int) -> None:
        super().__init__("already_acknowledged", f"alarm {alarm_id} is already acknowledged")
        self.alarm_id = alarm_id


class UnknownState(Invalid, ValueError):
    """The alarm list filter is not one of open, unacknowledged, all or a lifecycle state (422 ``bad_state``)."""

    def __init__(self, state: str) -> None:
        super().__init__("bad_state", f"state must be one of open, unacknowledged, all, {', '.join(STATES)}")
        self.state = state
