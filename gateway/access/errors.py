"""The access area's refusals, as :mod:`gateway.errors` classes (HTTP status by class, MQTT ``ok:false``).

Each keeps the code and status the API has always answered: a spec that does not fit the site is
422, a card that exists or was revoked and a door already waiting for a swipe are 409, an unknown
card, door or enrolment is 404, a door whose reader is offline is 409.
"""

from __future__ import annotations

from drivers.cards import CardFormatError, normalize_card_id
from gateway.errors import Conflict, Invalid, NotFound


class BadSpec(Invalid):
    """A card/enrolment spec that does not fit the site (unknown door in its scope, worker rules, times)."""


class CardConflict(Conflict):
    """``card_exists``, ``card_revoked``, ``enrolment_pending``: the register's state refuses it."""


class UnknownDoor(NotFound):
    """No such door here (``not_found`` on an unlock; ``unknown_door`` for an enrolment's door)."""


class ReaderOffline(Conflict):
    """The door's reader is offline: an unlock could not reach the lock."""

    default_code = "reader_offline"


class OutputOffline(Conflict):
    """The relay board driving the door's lock does not answer."""

    default_code = "output_offline"


class FireActive(Conflict):
    """A relock asked while a fire holding the door is still active (not restored): needs ``confirm: true``."""

    default_code = "fire_active"


class NotReleased(Conflict):
    """A relock of a door nothing keeps released."""

    default_code = "not_released"


def card_key(card: str) -> str:
    """The canonical id of a card a person typed; ``invalid_card`` (422) if it is not one."""
    try:
        return normalize_card_id(card)
    except CardFormatError as exc:
        raise Invalid("invalid_card", str(exc)) from None
