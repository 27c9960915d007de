"""The tracker: watches the event flow and checks each open run's steps as they happen.

It subscribes to the event log like the console's live stream does (``EventLog.subscribe``: called on
the loop after each commit, in commit order). The events of one commit arrive one after another in the
same loop turn, so the tracker collects what they prove and settles it on the next turn with
``loop.call_soon``: a ``meter.reading`` committed together with a ``meter.anomaly`` is then known to be
out of range (``rules.settle``). Device state that is not an event (a reader online since before the
run, its secure channel up) is looked at when a run starts and every ``tick_s``.

In memory it keeps every open run's steps (the register has them too, loaded back at start, so a
restart in the middle of a walk loses nothing). Steps it changed are written in one transaction per
settled batch, in the order of the single writer.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from gateway.commissioning import register, rules
from gateway.commissioning.models import Observation, Step
from gateway.commissioning.rules import SiteIndex
from gateway.events import Event

log = logging.getLogger(__name__)

#: event types that can prove a step (others are not even looked at)
WATCHED = ("door.", "access.granted", "access.denied", "device.online", "meter.reading", "meter.anomaly",
           "meter.valve", "alarm.raised", "alarm.restored", "alarm.test_received")


class Tracker:
    def __init__(self, index: SiteIndex, write: Callable[[Callable[[sqlite3.Connection], Any]], Any],
                 devices: Callable[[], list[dict[str, Any]]], now: Callable[[], str]) -> None:
        self.index = index
        self._write = write
        self._devices = devices
        self._now = now
        #: open run id -> (device, step) -> step
        self.runs: dict[int, dict[tuple[str, str], Step]] = {}
        self._batch: list[Observation] = []
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ runs
    def add(self, run: int, steps: list[Step]) -> None:
        self.runs[run] = {s.key: s for s in steps}

    def drop(self, run: int) -> None:
        self.runs.pop(run, None)

    def steps(self, run: int) -> list[Step] | None:
        found = self.runs.get(run)
        return list(found.values()) if found is not None else None

    # ------------------------------------------------------------------ the event flow
    def on_event(self, ev: Event) -> None:
        """Runs on the loop after each commit (subscriber of the event log)."""
        if not self.runs or not ev.type.startswith(WATCHED):
            return
        found = rules.observe(self.index, ev.type, ev.data, ev.seq, ev.ts)
        if not found:
            return
        self._batch.extend(found)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._batch = rules.settle(self._batch), []
        self.apply(batch)

    def look_at_devices(self) -> None:
        """Readers online and secure right now (not an event when they came up before the run)."""
        if self.runs:
            self.apply(rules.device_observations(self.index, self._devices(), self._now()))

    def apply(self, observations: list[Observation]) -> list[tuple[int, Step]]:
        """Apply observations to every open run; persist the steps that changed. Returns them."""
        changed: list[tuple[int, Step]] = []
        for run, steps in self.runs.items():
            for obs in observations:
                step = steps.get((obs.device, obs.step))
                before = step.status if step is not None else None
                if step is not None and rules.apply(step, obs):
                    changed.append((run, step))
                    if step.status == "done" and before != "done":
                        log.info("commissioning run %d: %s %s done (%s)", run, step.device, step.step,
                                 obs.evidence.get("type"))
        if changed:
            self.persist(changed)
        return changed

    def persist(self, changed: list[tuple[int, Step]]) -> None:
        snapshot = [(run, copy.deepcopy(step)) for run, step in changed]

        def txn(conn: sqlite3.Connection) -> None:
            for run, step in snapshot:
                register.save_steps(conn, run, [step])

        task = asyncio.get_running_loop().create_task(self._commit(txn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _commit(self, txn: Callable[[sqlite3.Connection], Any]) -> None:
        try:
            await self._write(txn)
        except Exception as exc:  # the disk refused: memory still has it; the next change or the finish writes it
            log.error("commissioning: could not store step progress: %s", exc)

    async def settle(self) -> None:
        """Wait until what was observed so far is written (finish and the tests use it)."""
        await asyncio.sleep(0)
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def tick(self, tick_s: float) -> None:
        """Forever: look at the device registry every ``tick_s`` (supervised task)."""
        while True:
            self.look_at_devices()
            await asyncio.sleep(tick_s)

