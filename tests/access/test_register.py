"""The card register's SQL on its own: a real store (temp file), no component, no readers."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from drivers.cards import decode, wiegand_encode
from gateway.access import register
from gateway.store import Store

NOW = "2026-11-23T02:00:00.000Z"
LATER = "2027-11-23T02:00:00.000Z"
CARDS = [wiegand_encode("H10301", 9, n) for n in range(4)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "gw.db")
    s.open({"access": register.MIGRATIONS})
    yield s
    s.close()


def row(card: str, *, status: str = "active", rev: int = 0, source: str = "local", kind: str = "resident",
        doors: str = '["*"]', valid_until: str | None = None, unit: str = "3-1-0201",
        replaces: str | None = None) -> register.CardRow:
    return register.card_row(decode(card), (unit, "Wang Fang", kind), (doors, None, valid_until, None), status,
                             rev=rev, source=source, now=NOW, replaces=replaces)


def write(store: Store, fn: Any) -> Any:
    return store.write_sync(fn)


def test_the_column_list_is_the_table() -> None:
    conn = sqlite3.connect(":memory:")
    for _version, script in register.MIGRATIONS:
        conn.executescript(script)
    table = tuple(r[1] for r in conn.execute("PRAGMA table_info(access_cards)"))
    assert table == register.CARD_COLUMNS
    assert len(row(CARDS[0])) == len(table)


def test_insert_view_and_list(store: Store) -> None:
    write(store, lambda c: [register.insert_card(c, row(card)) for card in CARDS[:3]])
    view = register.card_dict(register.get_card(store, CARDS[0]))
    assert list(view) == list(register.VIEW_COLUMNS)
    assert view["doors"] == ["*"] and view["schedule"] is None and view["revoke_reason"] is None
    assert (view["format"], view["facility"], view["number"], view["holder"]) == ("H10301", 9, 0, "Wang Fang")
    page = register.list_cards(store, None, 2, "")
    assert [c["card"] for c in page] == sorted(CARDS[:3])[:2]
    assert [c["card"] for c in register.list_cards(store, "3-1-0201", 5, page[-1]["card"])] == sorted(CARDS[:3])[2:]
    assert register.list_cards(store, "9-9-9999", 5, "") == []
    assert write(store, lambda c: register.household_cards(c, "3-1-0201", ("resident",), NOW)) == 3


def test_revocation_wins_over_central(store: Store) -> None:
    write(store, lambda c: register.insert_card(c, row(CARDS[0])))
    write(store, lambda c: register.revoke_card(c, CARDS[0], "lost", LATER))
    assert write(store, lambda c: register.card_status(c, CARDS[0])) == "revoked"
    write(store, lambda c: register.upsert_central(c, row(CARDS[0], rev=5, source="central")))
    got = register.get_card(store, CARDS[0])
    assert (got["status"], got["revoke_reason"], got["rev"], got["source"], got["confirmed"]) == \
        ("revoked", "lost", 5, "central", 1)
    write(store, lambda c: register.upsert_central(c, row(CARDS[1], rev=5, source="central")))
    assert write(store, lambda c: register.revoke_central(c, CARDS[1], "moved", 6, LATER)) == 1
    assert write(store, lambda c: register.revoke_central(c, CARDS[1], "moved", 6, LATER)) == 0  # already


def test_revision(store: Store) -> None:
    assert register.rev(store) == 0
    write(store, lambda c: register.set_rev(c, 7))
    assert register.rev(store) == 7 and write(store, register.rev) == 7


def test_snapshot_staging_keeps_local_issues_and_revocations(store: Store) -> None:
    unseen, revoked, central_old = CARDS[0], CARDS[1], CARDS[2]
    write(store, lambda c: register.insert_card(c, row(unseen)))
    write(store, lambda c: register.insert_card(c, row(revoked, source="central")))
    write(store, lambda c: register.revoke_card(c, revoked, "lost", NOW))
    write(store, lambda c: register.insert_card(c, row(central_old, source="central")))
    index = write(store, register.create_staging)
    assert index == "access_cards_unit_a"
    new = [row(revoked, rev=3, source="central"), row(CARDS[3], rev=3, source="central")]
    write(store, lambda c: register.stage_rows(c, new))
    write(store, lambda c: register.swap_staged(c, 3))
    cards = {r["card"]: r["status"] for r in store.query("SELECT card, status FROM access_cards")}
    assert cards == {unseen: "active", revoked: "revoked", CARDS[3]: "active"}  # central_old is gone
    assert register.rev(store) == 3
    assert write(store, partial(register.drop_old_slice, limit=100)) == 3  # the replaced table held three
    assert write(store, partial(register.drop_old_slice, limit=100)) == 0  # emptied: dropped
    assert store.query_one("SELECT 1 FROM sqlite_master WHERE name='access_cards_old'") is None
    assert write(store, register.create_staging) == "access_cards_unit_b"  # the next one takes the other name


def test_verifications_passback_holds(store: Store) -> None:
    assert write(store, lambda c: register.verify(c, CARDS[0], "d1", False, NOW))  # a failed first attempt
    assert write(store, lambda c: register.verify(c, CARDS[0], "d1", True, NOW))
    assert not write(store, lambda c: register.verify(c, CARDS[0], "d1", True, LATER))  # once per door
    assert register.verifications(store, CARDS[0]) == {"d1": NOW}
    write(store, lambda c: register.save_passback(c, "gate-in", CARDS[0], "entry", NOW))
    write(store, lambda c: register.save_passback(c, "gate-in", CARDS[0], "exit", LATER))
    assert register.passback_sides(store) == {("gate-in", CARDS[0]): "exit"}
    write(store, lambda c: register.save_hold(c, "alarm-1", ["d1", "d2"], "fire", NOW))
    assert register.holds(store) == {"alarm-1": (["d1", "d2"], "fire")}
    write(store, lambda c: register.delete_hold(c, "alarm-1"))
    assert register.holds(store) == {}


def test_enrolment_lifecycle_and_holder_sweep(store: Store) -> None:
    spec = {"unit": "3-1-0201", "holder": "Li Lei", "holder_kind": "family"}
    write(store, lambda c: register.start_enrolment(c, "e1", "d1", spec, "tech", NOW, LATER))
    write(store, lambda c: register.start_enrolment(c, "e2", "d1", spec, "tech", NOW, LATER))
    assert register.pending_enrolments(store, NOW) == {"d1": "e2"}
    assert register.get_enrolment(store, "e1")["state"] == "cancelled"
    write(store, lambda c: register.end_enrolment(c, "e2", "failed", NOW, CARDS[0], "card_exists: ..."))
    e2 = register.get_enrolment(store, "e2")
    assert (e2["state"], e2["card"], e2["error"]) == ("failed", CARDS[0], "card_exists: ...")
    write(store, lambda c: register.insert_card(c, row(CARDS[0])))
    write(store, lambda c: register.insert_card(c, row(CARDS[1])))
    write(store, lambda c: register.revoke_card(c, CARDS[0], "lost", NOW))
    assert write(store, lambda c: register.forget_holders(c, NOW)) == 1
    assert {r["card"]: r["holder"] for r in store.query("SELECT card, holder FROM access_cards")} == \
        {CARDS[0]: "", CARDS[1]: "Wang Fang"}
    assert "Li Lei" not in register.get_enrolment(store, "e2")["spec"]
