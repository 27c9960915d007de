"""The lifecycle's decisions as pure functions: disposition order, restore/ack/close, fire doors, escalation, shifts."""

from __future__ import annotations

import pytest

from gateway.alarms import rules
from gateway.alarms.signals import SILENT_CODE, Signal

pytestmark = pytest.mark.timeout(10)


def sig(**kw: object) -> Signal:
    base: dict[str, object] = {"receiver": "r", "account": "1", "code": "130", "zone": 1, "kind": "burglary"}
    return Signal(**{**base, **kw})  # type: ignore[arg-type]


def test_disposition_order_informational_then_restore_then_raise() -> None:
    assert rules.disposition(sig()) == "raise"
    assert rules.disposition(sig(restore=True)) == "restore"
    assert rules.disposition(sig(informational=True)) == "log"
    assert rules.disposition(sig(informational=True, restore=True)) == "log"   # informational wins


def test_silence_alarm_only_ends_by_its_own_restore() -> None:
    assert rules.restores_silence_only(sig(code=SILENT_CODE, kind="fault", restore=True))
    assert not rules.restores_silence_only(sig(code="301", kind="fault", restore=True))


def test_unmatched_restores_are_logged_except_gb_clear_bits() -> None:
    assert rules.logs_unmatched_restore(sig(code="130", restore=True))
    assert not rules.logs_unmatched_restore(sig(code="GB-fire", restore=True))


def test_restore_closes_only_an_acknowledged_alarm() -> None:
    assert rules.state_after_restore(acknowledged=True) == "closed"
    assert rules.state_after_restore(acknowledged=False) == "restored"


@pytest.mark.parametrize(("state", "kind", "closes"), [
    ("raised", "burglary", False), ("restored", "burglary", True), ("raised", "test", True),
    ("restored", "fire", True), ("raised", "fire", False),
])
def test_acknowledgement_closes_restored_and_test_alarms(state: str, kind: str, closes: bool) -> None:
    assert rules.closes_on_ack(state, kind) is closes


def test_escalation_limits_merge_over_defaults() -> None:
    limits = rules.escalation_limits({"fire": 0.3, "burglary": 0})
    assert limits["fire"] == 0.3 and limits["burglary"] == 0 and limits["fault"] == 900


@pytest.mark.parametrize(("hhmm", "shift"), [
    ("08:29", "night"), ("08:30", "day"), ("12:00", "day"), ("18:29", "day"), ("18:30", "night"), ("00:00", "night"),
])
def test_shift_at(hhmm: str, shift: str) -> None:
    assert rules.shift_at(hhmm, "08:30", "18:30") == shift
