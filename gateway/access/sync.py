"""Keeping the register in step with central: ``cards.apply`` deltas and ``cards.snapshot`` replacements.

Deltas apply on a revision (``rev_gap`` asks central for a snapshot); a snapshot replaces
central's card set atomically. Local issues survive a snapshot until central has seen them,
and a revocation made here always wins -- visibly: each card central sent that is not applied as
sent gets a per-card result (``kept_revoked``, ``refused`` with the rule's code), so central's
register and the doors never drift apart silently. Occupants per unit (the free cards) come with
a delta, a snapshot, or ``units.apply``. One sync runs at a time (a delta must not land in the
middle of a staged snapshot), and decisions go on meanwhile: see :meth:`Sync.apply_snapshot`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

from pydantic import ValidationError

from drivers.cards import CardFormatError, decode, normalize_card_id
from gateway.access import register, rules
from gateway.access.cards import Cards
from gateway.access.errors import BadSpec
from gateway.access.models import HOLDER_KINDS, UNIT, ApplyArgs, CardIn, Change, SnapshotArgs, UnitIn, UnitsArgs
from gateway.commands import CommandError
from gateway.context import GatewayContext
from gateway.events import Emit, format_ts
from gateway.memory import release_memory

log = logging.getLogger(__name__)

#: rows a snapshot stages per write, and of the replaced card table deletes per write after it; while the doors
#: are deciding (a decision in the last ``decisions.DOORS_BUSY_S``) BUSY_CHUNK: a decision waits at most for the
#: one write already running (measured, 100,000 cards with a swipe every ~2 ms: decision p99 16 ms with 250,
#: 4 ms with 20; the snapshot alone ~5 s with 250, ~10 s with 20 throughout; on a 90-day site's 2 GB store,
#: decision p50 / p95 1.9 / 3.5 ms with 20, 1.1 / 1.9 ms with 5, the snapshot 14 s and 29 s)
SNAPSHOT_CHUNK, DROP_SLICE, BUSY_CHUNK = 250, 100, 5
SNAPSHOT_SLICE = 25
#: a validation slice waits for a decision in flight, polling this often, for at most this long
STEP_ASIDE_S, STEP_ASIDE_MAX_S = 0.0005, 0.02
#: a snapshot's answer lists at most this many cards not applied as sent
MAX_RESULTS = 1000
STATUS = register.CARD_COLUMNS.index("status")
DOORS = register.CARD_COLUMNS.index("doors")
_FIELDS = frozenset(CardIn.model_fields)


class Sync:
    """Central's deltas and snapshots, one at a time, with the staging table's clean-up."""

    def __init__(self, cards: Cards, doors_busy: Callable[[], bool] = lambda: False,
                 deciding: Callable[[], bool] = lambda: False) -> None:
        self.cards = cards
        #: the doors are deciding now: big jobs write in small slices (BUSY_CHUNK)
        self.doors_busy = doors_busy
        #: a card read is being decided now: the validation on the loop waits (at most STEP_ASIDE_MAX_S)
        self.deciding = deciding
        self.ctx: GatewayContext | None = None
        #: one register sync at a time (a delta must not land in the middle of a staged snapshot)
        self.lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        # a snapshot's replaced table left behind by a stop: empty it in slices
        self._tasks.append(asyncio.get_running_loop().create_task(self.drop_old_cards(), name="access.cleanup"))

    def stop(self) -> None:
        for t in self._tasks:
            t.cancel()

    @property
    def _ctx(self) -> GatewayContext:
        assert self.ctx is not None, "access component not started"
        return self.ctx

    # ------------------------------------------------------------------ cards.apply
    async def apply(self, args: ApplyArgs) -> dict[str, Any]:
        """``cards.apply``: a delta on ``base_rev`` -> {applied_rev, results: [one per change]}.

        The same delta again answers ``already``. Each change gets a result (:meth:`_change`):
        ``applied``, ``kept_revoked`` (a card revoked here stays exactly as the duty room left it),
        ``already_revoked``, ``not_found`` (a revoke of a card this gateway never had) or ``refused``
        with the rule's code (e.g. ``empty_scope``); a refused change does not stop the others.
        """
        upserts = [ch.card for ch in args.changes if ch.op == "upsert" and isinstance(ch.card, CardIn)]
        if any(ch.op == "upsert" and not isinstance(ch.card, CardIn) for ch in args.changes):
            raise CommandError("bad_args", "an upsert needs a card object")
        refused: list[dict[str, Any]] = []
        rows = {r[0]: r for r in self.rows(upserts, rev=args.rev, refused=refused)}
        refusals = {r["card"]: r for r in refused}
        ctx = self._ctx
        now = format_ts(ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Emit) -> dict[str, Any]:
            have = register.rev(conn)
            if args.rev == have and args.base_rev <= have:
                return {"applied_rev": have, "already": True}
            if args.base_rev != have:
                raise CommandError("rev_gap", f"register is at rev {have}, delta is based on {args.base_rev}: "
                                              "send cards.snapshot", have_rev=have)
            results = [self._change(conn, ch, rows, refusals, args.rev, now) for ch in args.changes]
            register.set_occupants(conn, [(u.unit, u.occupants) for u in args.units], now)
            register.set_rev(conn, args.rev)
            tally = Counter(r["result"] for r in results)
            ctx.audit.insert(conn, "central", "central", "cards.apply", f"rev {args.rev}",
                             {"base_rev": args.base_rev, "changes": len(args.changes), "units": len(args.units),
                              **tally})
            return {"applied_rev": args.rev, "results": results}

        try:
            async with self.lock:
                return await ctx.events.transact(txn)
        except CardFormatError as exc:
            raise CommandError("bad_card", str(exc)) from None

    def _change(self, conn: sqlite3.Connection, ch: Change, rows: dict[str, register.CardRow],
                refusals: dict[str, dict[str, Any]], rev: int, now: str) -> dict[str, Any]:
        """Apply one change of a delta inside its transaction; its per-card result."""
        raw = ch.card.card if isinstance(ch.card, CardIn) else ch.card
        card = normalize_card_id(raw)
        current = register.card_in(conn, card)
        if ch.op == "revoke":
            if current is None:
                return {"card": card, "op": "revoke", "result": "not_found"}
            done = register.revoke_central(conn, card, ch.reason, rev, now)
            return {"card": card, "op": "revoke", "result": "applied" if done else "already_revoked"}
        if card in refusals:
            return {**refusals[card], "op": "upsert"}
        row = rows[card]
        result = rules.upsert_result(None if current is None else current["status"], row[STATUS])
        if result != "applied":
            assert current is not None
            out = {"card": card, "op": "upsert", "result": result, "reason": current["revoke_reason"] or "revoked"}
            if result == "kept_revoked":
                out["message"] = "revoked at this gateway: a revoked card is never revived nor rewritten"
            return out
        register.upsert_central(conn, row)
        if current is not None and current["doors"] != row[DOORS]:
            self._ctx.audit.insert(conn, "central", "central", "card.update", card,
                                   {"doors_before": json.loads(current["doors"]), "doors": json.loads(row[DOORS])})
        return {"card": card, "op": "upsert", "result": "applied"}

    # ------------------------------------------------------------------ units.apply
    async def apply_units(self, args: UnitsArgs) -> dict[str, Any]:
        """``units.apply`` {units: [{unit, occupants}]} -> {units: n}: the registered occupants (free cards)."""
        ctx = self._ctx
        now = format_ts(ctx.clock.now())

        def txn(conn: sqlite3.Connection, emit: Emit) -> dict[str, Any]:
            register.set_occupants(conn, [(u.unit, u.occupants) for u in args.units], now)
            ctx.audit.insert(conn, "central", "central", "units.apply", f"{len(args.units)} units",
                             {"units": len(args.units)})
            return {"units": len(args.units)}

        return await ctx.events.transact(txn)

    # ------------------------------------------------------------------ cards.snapshot
    async def snapshot(self, args: SnapshotArgs) -> dict[str, Any]:
        """``cards.snapshot``: see :meth:`apply_snapshot`."""
        return await self.apply_snapshot(args.rev, args.cards, args.units)

    async def apply_snapshot(self, rev: int, cards: list[Any], units: list[UnitIn] | None = None) -> dict[str, Any]:
        """Replace central's card set atomically; local revocations and unseen local issues stay.

        Answers {applied_rev, count, results}: ``results`` lists only the cards not applied as sent
        (``kept_revoked``, ``refused`` with the rule's code), at most :data:`MAX_RESULTS` of them
        (``results_truncated`` then); a refused card is not in the new register.

        Why staged: writing 100,000 rows in the one transaction that swaps them in would hold the
        store's single writer for seconds, and every swipe's event (hence its relay) would wait.
        So the new set is written into a staging table in small transactions that interleave with
        swipes, and one short transaction merges what must survive and swaps the tables. Decisions
        read the live table, which is the whole old set until that commit and the whole new set after.
        """
        async with self.lock:
            have = self.cards.rev()
            if rev < have:  # a late or replayed old snapshot must not roll the register back
                raise CommandError("stale_rev", f"register is already at rev {have}; snapshot rev {rev} is older",
                                   have_rev=have)
            return await self._apply_snapshot(rev, cards, units or [])

    async def _apply_snapshot(self, rev: int, cards: list[Any], units: list[UnitIn]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        ctx = self._ctx
        index = await ctx.store.write(register.create_staging)
        refused: list[dict[str, Any]] = []
        count = await self._stage(rev, cards, refused)
        now = format_ts(ctx.clock.now())

        def swap(conn: sqlite3.Connection, emit: Emit) -> dict[str, Any]:
            n_kept, kept = register.kept_revoked(conn, MAX_RESULTS)
            register.swap_staged(conn, rev)
            register.set_occupants(conn, [(u.unit, u.occupants) for u in units], now)
            ctx.audit.insert(conn, "central", "central", "cards.snapshot", f"rev {rev}",
                             {"count": count, "kept_revoked": n_kept, "refused": len(refused), "units": len(units)})
            results = [{"card": c, "result": "kept_revoked", "reason": r or "revoked"} for c, r in kept]
            results += refused[:MAX_RESULTS - len(results)]
            out: dict[str, Any] = {"applied_rev": rev, "count": count, "results": results}
            if n_kept + len(refused) > len(results):
                out["results_truncated"] = True
            return out

        t0 = loop.time()
        result = await ctx.events.transact(swap)
        log.info("card snapshot rev %d applied: %d cards, %d not as sent (unit index %s; swap %.0f ms)", rev, count,
                 len(result["results"]), index, (loop.time() - t0) * 1000)
        self._tasks.append(loop.create_task(self.drop_old_cards(), name="access.snapshot-cleanup"))
        # the parsed payload is freed once the command returns; give that memory back to the OS then
        loop.call_later(0.5, release_memory)
        return result

    async def _stage(self, rev: int, cards: list[Any], refused: list[dict[str, Any]]) -> int:
        """Validate and write ``cards`` into the staging table, a chunk per transaction; returns the count."""
        store = self._ctx.store
        count = 0
        writing: asyncio.Future[Any] | None = None
        try:
            # pipeline: validate the next chunk while the writer stores the previous one. Validation runs
            # on the loop in small slices (a thread would fight the loop for the GIL and slow every swipe)
            start = 0
            while start < len(cards):
                end = min(start + (BUSY_CHUNK if self.doors_busy() else SNAPSHOT_CHUNK), len(cards))
                rows = []
                for sl in range(start, end, SNAPSHOT_SLICE):
                    await self._step_aside()
                    rows += self.rows(cards[sl:min(sl + SNAPSHOT_SLICE, end)], rev=rev, offset=sl, refused=refused)
                start = end
                if writing is not None:
                    await writing
                    await store.flush_wal()  # the staged pages off the next decision's fsync
                writing = asyncio.ensure_future(store.write(partial(register.stage_rows, rows=rows), background=True))
                count += len(rows)
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                await asyncio.gather(writing, return_exceptions=True)
        return count

    async def _step_aside(self) -> None:
        """Yield; and while a door decision is in flight, let it finish first (bounded: a stream of them does not
        stop the snapshot). Why: the loop validating cards holds the GIL, and the decision's transaction on the
        writer thread takes it back several times per commit, each time waiting up to the switch interval."""
        await asyncio.sleep(0)
        deadline = time.monotonic() + STEP_ASIDE_MAX_S
        while self.deciding() and time.monotonic() < deadline:
            await asyncio.sleep(STEP_ASIDE_S)

    async def drop_old_cards(self) -> None:
        """Empty the replaced table a slice per transaction (swipes' writes go in between), then drop it."""
        store = self._ctx.store
        async with self.lock:  # the next sync waits until the old set is gone
            while await store.write(partial(register.drop_old_slice, limit=BUSY_CHUNK if self.doors_busy()
                                            else DROP_SLICE), background=True):
                await store.settle()

    # ------------------------------------------------------------------ central's cards -> register rows
    def rows(self, cards: list[Any], *, rev: int, offset: int = 0,
             refused: list[dict[str, Any]] | None = None) -> list[register.CardRow]:
        """Register rows from central's cards (CardIn or raw dicts, validated here one at a time).

        A malformed card (``bad_card``) rejects the whole command; a well-formed card a rule refuses
        (``empty_scope``, ``invalid_time``...) is left out and reported in ``refused`` when given.
        """
        rows = []
        now = format_ts(self._ctx.clock.now())
        cache: dict[Any, Any] = {}
        for i, c in enumerate(cards, start=offset):
            try:
                row = self._fast_row(c, rev, now, cache) if isinstance(c, dict) else None
                if row is None:  # not a plain well-formed card: the model validates it (and names the problem)
                    row = self._model_row(c if isinstance(c, CardIn) else CardIn.model_validate(c), rev, now, cache)
                rows.append(row)
            except BadSpec as exc:
                if refused is None:
                    raise CommandError("bad_card", f"cards[{i}]: {exc}", index=i) from None
                card = normalize_card_id(c.card if isinstance(c, CardIn) else c["card"])
                refused.append({"card": card, "result": "refused", "reason": exc.code, "message": str(exc)})
            except CardFormatError as exc:
                raise CommandError("bad_card", f"cards[{i}]: {exc}", index=i) from None
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
                raise CommandError("bad_card", f"cards[{i}]: {problems}", index=i) from None
        return rows

    def _columns(self, c: CardIn | dict[str, Any], key: Any, cache: dict[Any, Any]) -> tuple[Any, ...]:
        """Scope, validity and schedule as stored; cards sharing them (most of a snapshot) share one check."""
        cols: tuple[Any, ...] | None = cache.get(key)
        if cols is None:
            spec = c if isinstance(c, CardIn) else CardIn.model_validate(c)
            cols = cache[key] = register.spec_columns(self.cards.check_spec(spec, central=True))
        return cols

    def _model_row(self, c: CardIn, rev: int, now: str, cache: dict[Any, Any]) -> register.CardRow:
        """One register row from central's card (hot path of a 100,000-card snapshot: caches shared parts)."""
        key = (tuple(c.doors), c.valid_from, c.valid_until, c.holder_kind,
               None if c.schedule is None or isinstance(c.schedule, str) else
               tuple((tuple(w.days), w.start, w.end) for w in c.schedule))
        return register.card_row(decode(c.card), (c.unit, c.holder, c.holder_kind), self._columns(c, key, cache),
                                 c.status, rev=rev, source="central", now=now,
                                 replaces=normalize_card_id(c.replaces) if c.replaces else None)

    def _fast_row(self, c: dict[str, Any], rev: int, now: str, cache: dict[Any, Any]) -> register.CardRow | None:
        """A register row straight from a central card dict, or None if it needs the full model.

        Why: building 100,000 pydantic models leaves ~30 MB of allocator fragmentation behind; plain
        checks of the common, well-formed case leave none (and are faster).
        """
        if not _plain_card(c):
            return None
        kind, doors = c["holder_kind"], c.get("doors", [])
        vf, vu, schedule = c.get("valid_from"), c.get("valid_until"), c.get("schedule")
        key = (tuple(doors), vf, vu, kind, schedule)
        return register.card_row(decode(c["card"]), (c["unit"], c.get("holder", ""), kind), self._columns(c, key, cache),
                                 c.get("status", "active"), rev=rev, source="central", now=now)


def _plain_card(c: dict[str, Any]) -> bool:
    """The common, well-formed central card: known keys, plain types, no explicit schedule windows."""
    card, unit, kind = c.get("card"), c.get("unit"), c.get("holder_kind")
    holder, doors, status = c.get("holder", ""), c.get("doors", []), c.get("status", "active")
    vf, vu, schedule = c.get("valid_from"), c.get("valid_until"), c.get("schedule")
    return bool(c.keys() <= _FIELDS and c.get("replaces") is None and isinstance(card, str) and isinstance(unit, str)
                and UNIT.match(unit) and kind in HOLDER_KINDS and isinstance(holder, str) and len(holder) <= 200
                and holder == holder.strip() and isinstance(doors, list) and len(doors) <= 2000
                and all(isinstance(d, str) for d in doors) and status in ("active", "revoked")
                and (vf is None or isinstance(vf, str)) and (vu is None or isinstance(vu, str))
                and (schedule is None or schedule == "working-hours"))
