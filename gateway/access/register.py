"""The card register in SQLite: every SQL statement of the access area, and its migrations.

Why one module: the card table is written by people at the door (issue, revoke), by central
(deltas, snapshots) and by the privacy sweep, and read by every swipe. Its column list is
spelled once (:data:`CARD_COLUMNS`), and so is every row the register writes (:func:`card_row`),
so a new column is one edit here, not four. Functions that change state take the connection of
the caller's transaction (``ctx.events.transact`` / ``ctx.store.write``): the state, its event
and its audit row commit together. Reads go through the store's read connection.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from drivers.cards import DecodedCard
from gateway.store import Store

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE access_cards (
            card TEXT PRIMARY KEY,
            bits INTEGER NOT NULL,
            format TEXT,
            facility INTEGER,
            number INTEGER,
            unit TEXT NOT NULL,
            holder TEXT NOT NULL DEFAULT '',
            holder_kind TEXT NOT NULL,
            doors TEXT NOT NULL DEFAULT '[]',
            valid_from TEXT,
            valid_until TEXT,
            schedule TEXT,
            status TEXT NOT NULL DEFAULT 'active',
            revoke_reason TEXT NOT NULL DEFAULT '',
            rev INTEGER NOT NULL DEFAULT 0,
            source TEXT NOT NULL DEFAULT 'local',
            confirmed INTEGER NOT NULL DEFAULT 0,
            issued_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX access_cards_unit ON access_cards(unit);
        CREATE TABLE access_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE access_enrolments (
            id TEXT PRIMARY KEY,
            door TEXT NOT NULL,
            spec TEXT NOT NULL,
            state TEXT NOT NULL,
            card TEXT,
            error TEXT NOT NULL DEFAULT '',
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            done_at TEXT
        );
        CREATE TABLE access_verifications (
            card TEXT NOT NULL,
            door TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (card, door)
        );
        CREATE TABLE access_holds (
            token TEXT PRIMARY KEY,
            doors TEXT NOT NULL,
            reason TEXT NOT NULL,
            since TEXT NOT NULL
        );
        """,
    ),
    (
        2,
        """
        -- anti-passback: which side of each door pair a card was last let through (survives a restart)
        CREATE TABLE access_passback (
            entry TEXT NOT NULL,
            card TEXT NOT NULL,
            side TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (entry, card)
        );
        """,
    ),
    (
        3,
        """
        -- a replacement names the (lost) card it replaces; a revocation's note stays here, not in events
        ALTER TABLE access_cards ADD COLUMN replaces TEXT;
        ALTER TABLE access_cards ADD COLUMN revoke_note TEXT NOT NULL DEFAULT '';
        -- registered occupants per household, from central: the free cards follow from them
        CREATE TABLE access_units (
            unit TEXT PRIMARY KEY,
            occupants INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        );
        """,
    ),
    (
        4,
        """
        -- a verification's last refusal per door (until the door is verified): the technician's page shows it
        -- after a reload too
        CREATE TABLE access_verify_refusals (
            card TEXT NOT NULL, door TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL,
            PRIMARY KEY (card, door)
        ) WITHOUT ROWID;
        """,
    ),
    (5, "CREATE INDEX access_cards_revoked_a ON access_cards(card) WHERE status='revoked';\n"
        "CREATE INDEX access_cards_local_a ON access_cards(card) WHERE source='local' AND confirmed=0;"),
]
#: the staging table's indexes (name base -> definition; names alternate _a/_b with the live table's). The partial
#: ones (migration 5) find the few cards a snapshot's swap carries over without scanning 100,000 in its transaction
STAGED_INDEXES = {"unit": "(unit)", "revoked": "(card) WHERE status='revoked'",
                  "local": "(card) WHERE source='local' AND confirmed=0"}

#: the card table's columns, in table order: every row the register writes is a tuple in this order
CARD_COLUMNS = ("card", "bits", "format", "facility", "number", "unit", "holder", "holder_kind", "doors",
                "valid_from", "valid_until", "schedule", "status", "revoke_reason", "rev", "source", "confirmed",
                "issued_at", "updated_at", "replaces", "revoke_note")
#: what a person (HTTP) sees of a card: all but the sync bookkeeping
VIEW_COLUMNS = tuple(c for c in CARD_COLUMNS if c != "confirmed")
#: what central's upsert changes on a card the register already has
CENTRAL_UPDATES = ("unit", "holder", "holder_kind", "doors", "valid_from", "valid_until", "schedule", "replaces")
CardRow = tuple[Any, ...]

_COLS = ", ".join(CARD_COLUMNS)
_MARKS = ",".join("?" * len(CARD_COLUMNS))
INSERT_CARD = f"INSERT INTO access_cards({_COLS}) VALUES({_MARKS})"
STAGE_CARD = f"INSERT OR REPLACE INTO access_cards_next({_COLS}) VALUES({_MARKS})"
UPSERT_CARD = (
    f"{INSERT_CARD} ON CONFLICT(card) DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in CENTRAL_UPDATES) + ", "
    # a revocation always wins (sync skips revoked cards; this is the last line of defence)
    "status=CASE WHEN access_cards.status='revoked' THEN 'revoked' ELSE excluded.status END, "
    "rev=excluded.rev, source='central', confirmed=1, updated_at=excluded.updated_at"
)


def card_row(dec: DecodedCard, holder: tuple[str, str, str], cols: tuple[Any, ...], status: str, *, rev: int,
             source: str, now: str, replaces: str | None = None) -> CardRow:
    """A register row in :data:`CARD_COLUMNS` order. ``holder`` = (unit, holder name, holder kind); ``cols`` = (doors JSON, valid_from, valid_until,
    schedule JSON) as :func:`spec_columns` makes them. A row from central is confirmed (central has
    it); a local one is not until central sends it back.
    """
    return (dec.card, dec.bits, dec.format, dec.facility, dec.number, *holder, *cols, status, "", rev, source,
            int(source == "central"), now, now, replaces, "")


def spec_columns(spec: dict[str, Any]) -> tuple[Any, ...]:
    """The stored form of a checked spec's scope, validity and schedule."""
    return (json.dumps(spec["doors"]), spec["valid_from"], spec["valid_until"],
            json.dumps(spec["schedule"]) if spec["schedule"] else None)


def card_dict(row: Any) -> dict[str, Any]:
    """A register row as the API shows it (scope and schedule decoded)."""
    out = {c: row[c] for c in VIEW_COLUMNS}
    out["doors"] = json.loads(row["doors"])
    out["schedule"] = json.loads(row["schedule"]) if row["schedule"] else None
    out["revoke_reason"] = row["revoke_reason"] or None
    out["revoke_note"] = row["revoke_note"] or None
    return out


# ---------------------------------------------------------------------- cards: reads
def get_card(store: Store, card: str) -> sqlite3.Row | None:
    return store.query_one("SELECT * FROM access_cards WHERE card=?", (card,))


def list_cards(store: Store, unit: str | None, limit: int, after: str) -> list[dict[str, Any]]:
    if unit:
        rows = store.query("SELECT * FROM access_cards WHERE unit=? AND card > ? ORDER BY card LIMIT ?",
                           (unit, after, limit))
    else:
        rows = store.query("SELECT * FROM access_cards WHERE card > ? ORDER BY card LIMIT ?", (after, limit))
    return [card_dict(r) for r in rows]


def rev(db: Store | sqlite3.Connection) -> int:
    """The register's revision (central's numbering; 0 before the first sync), from the store or a transaction."""
    sql = "SELECT value FROM access_state WHERE key='rev'"
    row = db.execute(sql).fetchone() if isinstance(db, sqlite3.Connection) else db.query_one(sql)
    return int(row[0]) if row else 0


def verifications(store: Store, card: str) -> dict[str, str]:
    """Doors this card was verified at -> when."""
    return {r["door"]: r["at"] for r in store.query("SELECT door, at FROM access_verifications WHERE card=?", (card,))}


# ---------------------------------------------------------------------- cards: writes (in a transaction)
def card_status(conn: sqlite3.Connection, card: str) -> str | None:
    row = conn.execute("SELECT status FROM access_cards WHERE card=?", (card,)).fetchone()
    return None if row is None else str(row[0])


def card_in(conn: sqlite3.Connection, card: str) -> sqlite3.Row | None:
    """The card's row inside the caller's transaction (what a rule is checked against, then written over)."""
    row: sqlite3.Row | None = conn.execute("SELECT * FROM access_cards WHERE card=?", (card,)).fetchone()
    return row


def replaced_by(conn: sqlite3.Connection, unit: str, card: str) -> str | None:
    """The card that already replaces ``card`` in ``unit`` (one replacement per lost card)."""
    row = conn.execute("SELECT card FROM access_cards WHERE unit=? AND replaces=?", (unit, card)).fetchone()
    return None if row is None else str(row[0])


def insert_card(conn: sqlite3.Connection, row: CardRow) -> None:
    conn.execute(INSERT_CARD, row)


def household_cards(conn: sqlite3.Connection, unit: str, kinds: tuple[str, ...], now: str) -> int:
    """The unit's usable household cards: active and not expired at ``now`` (see ``rules.usable``)."""
    marks = ",".join("?" * len(kinds))
    return int(conn.execute(f"SELECT COUNT(*) FROM access_cards WHERE unit=? AND status='active' "
                            f"AND (valid_until IS NULL OR valid_until > ?) AND holder_kind IN ({marks})",
                            (unit, now, *kinds)).fetchone()[0])


def revoke_card(conn: sqlite3.Connection, card: str, reason: str, now: str, note: str = "") -> None:
    conn.execute("UPDATE access_cards SET status='revoked', revoke_reason=?, revoke_note=?, updated_at=? "
                 "WHERE card=?", (reason, note, now, card))


def update_spec(conn: sqlite3.Connection, card: str, cols: tuple[Any, ...], now: str) -> None:
    """A card's scope, validity and schedule changed in place (``cols`` as :func:`spec_columns` makes them)."""
    conn.execute("UPDATE access_cards SET doors=?, valid_from=?, valid_until=?, schedule=?, updated_at=? "
                 "WHERE card=?", (*cols, now, card))


# ---------------------------------------------------------------------- units (occupants from central)
def occupants(conn: sqlite3.Connection, unit: str) -> int | None:
    """Registered occupants of ``unit`` as central last said, or None if it never did."""
    row = conn.execute("SELECT occupants FROM access_units WHERE unit=?", (unit,)).fetchone()
    return None if row is None else int(row[0])


def set_occupants(conn: sqlite3.Connection, units: list[tuple[str, int]], now: str) -> None:
    conn.executemany("INSERT INTO access_units(unit, occupants, updated_at) VALUES(?,?,?) ON CONFLICT(unit) "
                     "DO UPDATE SET occupants=excluded.occupants, updated_at=excluded.updated_at",
                     [(u, n, now) for u, n in units])


def upsert_central(conn: sqlite3.Connection, row: CardRow) -> None:
    conn.execute(UPSERT_CARD, row)


def revoke_central(conn: sqlite3.Connection, card: str, reason: str, rev_: int, now: str) -> int:
    """Central revokes a card; returns 1 if it was not revoked yet."""
    return conn.execute("UPDATE access_cards SET status='revoked', revoke_reason=?, rev=?, updated_at=?, confirmed=1 "
                        "WHERE card=? AND status!='revoked'", (reason, rev_, now, card)).rowcount


def set_rev(conn: sqlite3.Connection, rev_: int) -> None:
    conn.execute("INSERT OR REPLACE INTO access_state(key, value) VALUES('rev', ?)", (str(rev_),))


def verify(conn: sqlite3.Connection, card: str, door: str, ok: bool, now: str, reason: str = "") -> bool:
    """Record a swipe at a door of the card's scope (a refusal with its reason); False if that door was verified
    before."""
    if conn.execute("SELECT 1 FROM access_verifications WHERE card=? AND door=?", (card, door)).fetchone():
        return False
    if ok:
        conn.execute("INSERT INTO access_verifications(card, door, at) VALUES(?,?,?)", (card, door, now))
    else:
        conn.execute("INSERT OR REPLACE INTO access_verify_refusals(card, door, reason, at) VALUES(?,?,?,?)",
                     (card, door, reason, now))
    return True


def verify_refusals(store: Store, card: str) -> dict[str, tuple[str, str]]:
    """Doors this card was last refused at while verifying -> (reason, when)."""
    rows = store.query("SELECT door, reason, at FROM access_verify_refusals WHERE card=?", (card,))
    return {r["door"]: (r["reason"], r["at"]) for r in rows}


def forget_holders(conn: sqlite3.Connection, cutoff: str) -> int:
    """Erase holder names of cards revoked before ``cutoff`` and of finished enrolments; returns cards affected."""
    # overwrite the freed bytes too, so the name does not linger in the file's free space
    conn.execute("PRAGMA secure_delete=ON")
    try:
        n = conn.execute("UPDATE access_cards SET holder='', revoke_note='' WHERE status='revoked' "
                         "AND (holder!='' OR revoke_note!='') AND updated_at <= ?", (cutoff,)).rowcount
        conn.execute("UPDATE access_enrolments SET spec=json_remove(spec, '$.holder') WHERE state!='pending' "
                     "AND created_at <= ? AND json_extract(spec, '$.holder') IS NOT NULL", (cutoff,))
    finally:
        conn.execute("PRAGMA secure_delete=OFF")
    return int(n)


# ---------------------------------------------------------------------- anti-passback and holds
def passback_sides(store: Store) -> dict[tuple[str, str], str]:
    return {(r["entry"], r["card"]): r["side"] for r in store.query("SELECT entry, card, side FROM access_passback")}


def save_passback(conn: sqlite3.Connection, entry: str, card: str, side: str, now: str) -> None:
    conn.execute("INSERT OR REPLACE INTO access_passback(entry, card, side, at) VALUES(?,?,?,?)",
                 (entry, card, side, now))


def holds(store: Store) -> dict[str, tuple[list[str], str]]:
    return {r["token"]: (json.loads(r["doors"]), r["reason"])
            for r in store.query("SELECT token, doors, reason FROM access_holds")}


def save_hold(conn: sqlite3.Connection, token: str, doors: list[str], reason: str, now: str) -> None:
    conn.execute("INSERT OR REPLACE INTO access_holds(token, doors, reason, since) VALUES(?,?,?,?)",
                 (token, json.dumps(doors), reason, now))


def delete_hold(conn: sqlite3.Connection, token: str) -> None:
    conn.execute("DELETE FROM access_holds WHERE token=?", (token,))


# ---------------------------------------------------------------------- enrolments
def pending_enrolments(store: Store, now: str) -> dict[str, str]:
    """Door id -> the enrolment waiting there."""
    return {r["door"]: r["id"] for r in store.query(
        "SELECT id, door FROM access_enrolments WHERE state='pending' AND expires_at > ?", (now,))}


def get_enrolment(store: Store, enrol_id: str) -> sqlite3.Row | None:
    return store.query_one("SELECT * FROM access_enrolments WHERE id=?", (enrol_id,))


def start_enrolment(conn: sqlite3.Connection, enrol_id: str, door: str, spec: dict[str, Any], actor: str,
                    now: str, expires: str) -> None:
    """A new pending enrolment at ``door``; any other one pending there is cancelled."""
    conn.execute("UPDATE access_enrolments SET state='cancelled', done_at=? WHERE door=? AND state='pending'",
                 (now, door))
    conn.execute("INSERT INTO access_enrolments(id, door, spec, state, created_by, created_at, expires_at) "
                 "VALUES(?,?,?,'pending',?,?,?)", (enrol_id, door, json.dumps(spec), actor, now, expires))


def end_enrolment(conn: sqlite3.Connection, enrol_id: str, state: str, now: str, card: str | None = None,
                  error: str | None = None) -> bool:
    """A pending enrolment ends: ``done`` (with the card), ``failed`` (card and error), ``expired`` or
    ``cancelled``. False if it was not pending any more (nothing changed)."""
    if state in ("expired", "cancelled"):
        cur = conn.execute("UPDATE access_enrolments SET state=?, done_at=? WHERE id=? AND state='pending'",
                           (state, now, enrol_id))
    else:
        cur = conn.execute("UPDATE access_enrolments SET state=?, card=?, error=?, done_at=? "
                           "WHERE id=? AND state='pending'", (state, card, error or "", now, enrol_id))
    return cur.rowcount > 0


# ---------------------------------------------------------------------- snapshot staging
def create_staging(conn: sqlite3.Connection) -> str:
    """An empty copy of the cards table; its unit index takes the name the live one does not use."""
    conn.execute("DROP TABLE IF EXISTS access_cards_old")
    conn.execute("DROP TABLE IF EXISTS access_cards_next")
    # the live table's own definition (whatever migrations made of it), under the staging name
    live_sql = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='access_cards'").fetchone()[0]
    conn.execute(re.sub(r'^CREATE TABLE\s+(["`]?)access_cards\1', "CREATE TABLE access_cards_next", live_sql))
    live = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='access_cards'")}
    names = {base: f"access_cards_{base}_{'b' if f'access_cards_{base}_a' in live else 'a'}" for base in STAGED_INDEXES}
    for base, definition in STAGED_INDEXES.items():
        conn.execute(f"CREATE INDEX {names[base]} ON access_cards_next{definition}")
    return names["unit"]


def stage_rows(conn: sqlite3.Connection, rows: list[CardRow]) -> None:
    conn.executemany(STAGE_CARD, rows)


def kept_revoked(conn: sqlite3.Connection, limit: int) -> tuple[int, list[tuple[str, str]]]:
    """Cards the staged snapshot has active that are revoked here: how many, and the first ``limit`` (card, reason)."""
    sql = ("FROM access_cards o CROSS JOIN access_cards_next n ON n.card = o.card "  # o first: its partial index
           "WHERE o.status='revoked' AND n.status!='revoked'")
    rows = conn.execute(f"SELECT n.card, o.revoke_reason {sql} ORDER BY n.card LIMIT ?", (limit,)).fetchall()
    return int(conn.execute(f"SELECT COUNT(*) {sql}").fetchone()[0]), [(r[0], r[1]) for r in rows]


def swap_staged(conn: sqlite3.Connection, rev_: int) -> None:
    """Carry over what survives a snapshot, swap the tables by renaming, and set the revision."""
    # what survives: every card revoked here as it is (the snapshot's version is not applied), unseen local issues
    conn.execute("INSERT OR REPLACE INTO access_cards_next SELECT * FROM access_cards WHERE status='revoked'")
    conn.execute("INSERT OR IGNORE INTO access_cards_next SELECT * FROM access_cards WHERE source='local' AND confirmed=0")
    # renames are cheap; dropping 100,000 rows is not: the old table is emptied in slices afterwards
    conn.execute("ALTER TABLE access_cards RENAME TO access_cards_old")
    conn.execute("ALTER TABLE access_cards_next RENAME TO access_cards")
    set_rev(conn, rev_)


def drop_old_slice(conn: sqlite3.Connection, limit: int) -> int:
    """Delete one slice of the replaced table; drop it once empty. Returns rows deleted (0 = done)."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name='access_cards_old'").fetchone():
        return 0
    n = conn.execute("DELETE FROM access_cards_old WHERE rowid IN "
                     "(SELECT rowid FROM access_cards_old LIMIT ?)", (limit,)).rowcount
    if n == 0:
        conn.execute("DROP TABLE access_cards_old")
    return int(n)
