"""The catalogue is complete in Chinese: every label, every event the gateway emits, every reason and alarm code.

The Chinese page must not fall back to English anywhere an operator reads (issue 15): a label
missing in Chinese, equal to its English text or without any Chinese in it fails here; so does an
event type the code emits without a name, a refusal reason the contract names without words, and
an alarm code the drivers' tables raise an alarm with but which has no Chinese text. The browser
tests check the rendered pages the same way (tests/console/browser.py: ``english_left``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drivers import cid_codes, sia_code_table
from gateway.api.auth import Principal
from gateway.api.i18n import CATALOGUE, NOT_CHINESE, alarm_texts, catalogue
from gateway.api.i18n_codes import ALARM_TEXT_ZH
from gateway.console import ConsoleComponent

ROOT = Path(__file__).resolve().parents[2]
HAN = re.compile(r"[\u3400-\u9fff]")
SLOT = re.compile(r"\{(\w+)\}")

#: event types of the contract (CONTRACT.md section 3) and those the areas added since
CONTRACT_EVENTS = """
access.granted access.denied door.opened door.closed door.held_open door.forced door.unlocked door.relocked
card.issued card.revoked card.verified card.fee_due card.updated
meter.reading meter.billing_reading meter.billing_missing meter.offline meter.online meter.anomaly meter.valve
meter.fault meter.fault_cleared meter.valve_mismatch meter.valve_mismatch_cleared
alarm.raised alarm.acknowledged alarm.restored alarm.escalated alarm.closed device.offline device.online
gateway.started gateway.outbox_near_full gateway.test shift.handover shift.handover_missed shift.handover_missed_cleared
""".split()  # noqa: SIM905 - reads as the contract's list
#: access.denied reasons (CONTRACT.md), door.unlocked reasons, revocation reasons (POST /cards/{card}/revoke)
DENIED = ("unknown", "revoked", "expired", "not_yet_valid", "outside_schedule", "not_permitted", "anti_passback")
UNLOCK = ("operator", "fire", "schedule", "card")
REVOKE = ("lost", "stolen", "moved_out", "damaged", "other")


def test_every_label_has_chinese_of_its_own() -> None:
    bad = [k for k, (zh, en) in CATALOGUE.items() if k not in NOT_CHINESE and (zh == en or not HAN.search(zh))]
    assert bad == [], f"labels without a Chinese text of their own: {bad}"
    assert all(zh.strip() and en.strip() for zh, en in CATALOGUE.values())


def test_slots_are_the_same_in_both_languages() -> None:
    bad = [k for k, (zh, en) in CATALOGUE.items() if set(SLOT.findall(zh)) != set(SLOT.findall(en))]
    assert bad == []


def emitted_types() -> set[str]:
    """Event types the gateway's code emits by name (``emit("x.y", ...)``, ``events.record("x.y", ...)``)."""
    found: set[str] = set()
    for path in (ROOT / "gateway").rglob("*.py"):
        found |= set(re.findall(r'(?:emit|record)\(\s*"([a-z_]+\.[a-z_]+)"', path.read_text(encoding="utf-8")))
    return found - {"console.login", "console.logout"}  # audit actions, not events


def test_every_event_type_has_a_name_in_both_languages() -> None:
    types = set(CONTRACT_EVENTS) | emitted_types()
    assert len(types) >= len(CONTRACT_EVENTS)
    missing = sorted(t for t in types if f"event.{t}" not in CATALOGUE)
    assert missing == [], f"event types the page would show as codes: {missing}"


def test_every_reason_has_words() -> None:
    keys = [f"reason.{r}" for r in DENIED] + [f"unlock.{r}" for r in UNLOCK] + [f"revoke.{r}" for r in REVOKE]
    try:  # the access area's own list, where this build has it
        from gateway.access.models import REVOKE_REASONS  # type: ignore[attr-defined]
    except ImportError:
        REVOKE_REASONS = REVOKE
    keys += [f"revoke.{r}" for r in REVOKE_REASONS]
    assert [k for k in keys if k not in CATALOGUE] == []


def _raising(table: str) -> list[str]:
    """Codes of a drivers' table (``code kind how ...`` per line) that raise an alarm."""
    rows = [line.split() for line in table.strip().splitlines() if line.strip()]
    return [r[0] for r in rows if len(r) > 2 and r[2] == "alarm"]


@pytest.mark.parametrize("name, table", [("Contact ID", cid_codes._TABLE), ("SIA", sia_code_table.TABLE)])
def test_every_code_that_raises_an_alarm_has_chinese_text(name: str, table: str) -> None:
    codes = _raising(table)
    assert len(codes) > 50, name   # the tables are what we think they are
    missing = [c for c in codes if c not in ALARM_TEXT_ZH]
    assert missing == [], f"{name} codes an alarm would show in English on the Chinese page: {missing}"


def test_alarm_texts_are_chinese_and_only_sent_to_the_chinese_page() -> None:
    assert all(HAN.search(text) for text in ALARM_TEXT_ZH.values())
    assert alarm_texts("zh")["FA"] == "火灾报警" and alarm_texts("zh")["silent"].startswith("报警主机失联")
    assert alarm_texts("en") == {}


def test_the_chinese_page_has_no_english_label() -> None:
    """The rendered Chinese shell (bar, banners, forms) for every role: no placeholder left, no English label."""
    comp = ConsoleComponent()
    english = {en for k, (zh, en) in CATALOGUE.items() if k not in NOT_CHINESE and len(en) > 3}
    for role in ("operator", "technician", "central", "admin"):
        html = comp.render_console(Principal("who", role), "zh", "c" * 64)
        shell = html.split("</script>", 1)[1]           # after the JSON config (which carries both)
        assert "{{" not in shell
        text = re.sub(r"<[^>]+>", "\n", shell)
        lines = {line.strip() for line in text.splitlines() if line.strip()}
        assert not lines & english, f"{role}: {sorted(lines & english)}"
    assert catalogue("zh")["tab.duty"] == "值班"


def test_every_device_and_uplink_reason_code_has_words_in_both_languages() -> None:
    """Issue 21: a reason is a code from one registry (every call site uses its Code objects), and each code has
    a Chinese and an English text with exactly the slots the code carries, so the console never shows a
    driver's English words on the Chinese page."""
    import string

    import gateway.reasons  # noqa: F401 - the gateway's codes join the drivers' in the one registry
    from drivers.reasons import REGISTRY

    assert {"driver_crashed", "no_reply", "secure_channel_failed", "plain_refused", "cannot_listen", "bad_key_file",
            "no_answer", "broker_unreachable", "node_stalled", "task_crashed"} <= set(REGISTRY)
    assert [c for c in REGISTRY if f"why.{c}" not in CATALOGUE] == []
    assert [k for k in CATALOGUE if k.startswith("why.") and k[4:] not in REGISTRY] == []
    for code, c in REGISTRY.items():
        fields = {f for _, f, _, _ in string.Formatter().parse(c.english) if f}
        zh, en = CATALOGUE[f"why.{code}"]
        assert set(SLOT.findall(zh)) == fields == set(SLOT.findall(en)), code
        reason = c(**{f: 1 for f in fields})     # the English words are what logs and events keep
        assert reason.code == code and str(reason) and reason.fields()["reason_code"] == code
        assert reason.args == {f: 1 for f in fields}
