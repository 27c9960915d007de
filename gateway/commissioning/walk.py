"""The walk's operations: start a run, mark a step, finish with the report and ``site.commissioned``.

Runs are started, marked and finished by technicians (and admins) over HTTP; what they cover is
planned by ``rules.plan`` from the config; the tracker checks the steps from the event flow. A mark
(``na`` / ``failed``) always carries a reason and never claims ``done`` (``rules.check_mark``). The
finish freezes the run: its steps, summary and the printed report in both languages are stored in the
same transaction as the ``site.commissioned`` event to central and the audit row, so central never
hears of an acceptance the gateway did not keep.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.commissioning import register, rules
from gateway.commissioning.models import EVENT_FAILURES_MAX, MAX_LIST, FinishBody, MarkBody, StartBody, Step
from gateway.commissioning.report import render_report
from gateway.commissioning.rules import SiteIndex
from gateway.commissioning.tracker import Tracker
from gateway.context import GatewayContext
from gateway.errors import Conflict, NotFound
from gateway.events import Emit, format_ts

LANGS = ("zh", "en")


def _steps(planned: list[Any]) -> list[Step]:
    return [Step(p.device, p.kind, p.building, p.name, s) for p in planned for s in p.steps]


def group(steps: list[Step]) -> list[dict[str, Any]]:
    """Steps by building, then device, in plan order, with what is left per building."""
    buildings: dict[str, dict[str, Any]] = {}
    for s in steps:
        b = buildings.setdefault(s.building, {"building": s.building, "done": 0, "failed": 0, "na": 0,
                                              "pending": 0, "devices": {}})
        b[s.status] += 1
        d = b["devices"].setdefault(s.device, {"device": s.device, "kind": s.kind, "name": s.name, "steps": []})
        d["steps"].append({k: v for k, v in s.as_dict().items() if k not in ("device", "kind", "building", "name")})
    return [{**b, "devices": list(b["devices"].values())} for b in buildings.values()]


class Walk:
    def __init__(self, ctx: GatewayContext, index: SiteIndex, tracker: Tracker) -> None:
        self.ctx = ctx
        self.index = index
        self.tracker = tracker

    def now(self) -> str:
        return format_ts(self.ctx.clock.now())

    def resume(self) -> None:
        """Runs left open by a stop: the tracker goes on checking them."""
        for run in register.open_runs(self.ctx.store):
            self.tracker.add(run, register.steps_of(self.ctx.store, run))

    # ------------------------------------------------------------------ start
    async def start(self, body: StartBody, who: str, role: str) -> dict[str, Any]:
        planned = rules.plan(self.index, body.scope, body.buildings, body.devices)
        steps = _steps(planned)
        scope = {"kind": body.scope, "buildings": list(dict.fromkeys(body.buildings)) if body.scope == "building" else [],
                 "devices": [p.device for p in planned] if body.scope == "devices" else []}
        at = self.now()

        def txn(conn: sqlite3.Connection) -> int:
            run = register.insert_run(conn, scope, at, who, body.note, steps)
            self.ctx.audit.insert(conn, who, role, "commissioning.start", f"run {run}",
                                  {"scope": body.scope, "devices": len(planned), "steps": len(steps)})
            return run

        run = await self.ctx.events.transact(lambda conn, emit: txn(conn))
        self.tracker.add(run, steps)
        self.tracker.look_at_devices()
        return self.view(run)

    # ------------------------------------------------------------------ read
    def _run(self, run: int) -> dict[str, Any]:
        found = register.get_run(self.ctx.store, run)
        if found is None:
            raise NotFound("not_found", f"no commissioning run {run}", run=run)
        return found

    def _steps_of(self, run: int) -> list[Step]:
        live = self.tracker.steps(run)
        return live if live is not None else register.steps_of(self.ctx.store, run)

    def view(self, run: int) -> dict[str, Any]:
        found = self._run(run)
        steps = self._steps_of(run)
        summary = found["summary"] or rules.summarize(steps)
        return {**found, "summary": summary, "site": self.ctx.config.gateway.site,
                "gateway": self.ctx.config.gateway.id, "buildings": group(steps)}

    def runs(self, limit: int = MAX_LIST) -> list[dict[str, Any]]:
        out = []
        for found in register.list_runs(self.ctx.store, max(1, min(limit, MAX_LIST))):
            if found["summary"] is None:
                found["summary"] = rules.summarize(self._steps_of(found["id"]))
            out.append(found)
        return out

    def report(self, run: int, lang: str) -> str:
        """The printed report: frozen at finish; while the run is open, a draft of where it stands."""
        found = self._run(run)
        if found["state"] == "finished":
            stored = register.report(self.ctx.store, run, lang)
            if stored:
                return stored
        return render_report(self.view(run), lang, self.ctx.clock.tz)

    # ------------------------------------------------------------------ mark
    def _open_steps(self, run: int) -> dict[tuple[str, str], Step]:
        self._run(run)
        steps = self.tracker.runs.get(run)
        if steps is None:
            raise Conflict("run_finished", f"commissioning run {run} is finished; start a new one", run=run)
        return steps

    async def mark(self, run: int, body: MarkBody, who: str, role: str) -> dict[str, Any]:
        steps = self._open_steps(run)
        step = steps.get((body.device, body.step))
        if step is None:
            raise NotFound("not_found", f"run {run} has no step {body.step!r} for {body.device!r}", run=run,
                           device=body.device, step=body.step)
        rules.check_mark(step, body.status, body.reason)
        mark = {"status": body.status, "reason": body.reason.strip(), "by": who, "at": self.now()}
        saved = Step(**{**step.__dict__, **mark, "seen": dict(step.seen)})

        def txn(conn: sqlite3.Connection) -> None:
            register.save_steps(conn, run, [saved])
            self.ctx.audit.insert(conn, who, role, f"commissioning.{body.status}", f"run {run}",
                                  {"device": body.device, "step": body.step, "reason": saved.reason})

        # the step in memory changes only once the store has the mark: a refused write leaves both as they were
        await self.ctx.events.transact(lambda conn, emit: txn(conn))
        if step.status == "done":   # the gateway saw it work while the mark was being written: seen wins
            step.seen = {**step.seen, "marked": dict(mark)}
            self.tracker.persist([(run, step)])
            return step.as_dict()
        step.status, step.reason, step.by, step.at = saved.status, saved.reason, saved.by, saved.at
        return saved.as_dict()

    # ------------------------------------------------------------------ finish
    async def finish(self, run: int, body: FinishBody, who: str, role: str) -> dict[str, Any]:
        self._open_steps(run)
        await self.tracker.settle()
        steps = self.tracker.steps(run) or []
        at = self.now()
        summary = rules.summarize(steps)
        view = {**self.view(run), "state": "finished", "finished_at": at, "finished_by": who,
                "finish_note": body.note, "summary": summary}
        reports = {lang: render_report(view, lang, self.ctx.clock.tz) for lang in LANGS}
        data = self.event_data(view, steps)

        def txn(conn: sqlite3.Connection, emit: Emit) -> bool:
            register.save_steps(conn, run, steps)
            if not register.finish_run(conn, run, at, who, body.note, summary, reports):
                return False
            emit("site.commissioned", data)
            self.ctx.audit.insert(conn, who, role, "commissioning.finish", f"run {run}",
                                  {"result": summary["result"], **summary["steps"]})
            return True

        if not await self.ctx.events.transact(txn):
            raise Conflict("run_finished", f"commissioning run {run} is finished already", run=run)
        self.tracker.drop(run)
        return self.view(run)

    def event_data(self, view: dict[str, Any], steps: list[Step]) -> dict[str, Any]:
        """``site.commissioned``: the summary central files (the report itself stays here, at /report)."""
        failures = [{"device": s.device, "kind": s.kind, "building": s.building, "step": s.step,
                     "reason": s.reason} for s in steps if s.status == "failed"]
        summary = view["summary"]
        return {"run": view["id"], "site": view["site"], "scope": view["scope"], "result": summary["result"],
                "started_at": view["started_at"], "started_by": view["started_by"],
                "finished_at": view["finished_at"], "finished_by": view["finished_by"],
                "devices": summary["devices"], "steps": summary["steps"], "buildings": summary["buildings"],
                "failures": failures[:EVENT_FAILURES_MAX], "failures_total": len(failures),
                "not_applicable": [{"device": s.device, "step": s.step, "reason": s.reason}
                                   for s in steps if s.status == "na"][:EVENT_FAILURES_MAX],
                "report": f"/api/v1/commissioning/{view['id']}/report"}
