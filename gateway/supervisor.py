"""Runs long-lived tasks (drivers, pollers) and restarts them with backoff when they crash.

A crashing driver must never take the daemon down: the exception is logged with
its traceback, the device is reported offline, and the task is started again
after 1 s, 2 s, 4 s ... up to 60 s. A task that ran for a while resets its backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gateway.reasons import TASK_CRASHED

if TYPE_CHECKING:  # pragma: no cover - typing only
    from gateway.devices import DeviceRegistry

log = logging.getLogger(__name__)

TaskFactory = Callable[[], Awaitable[Any]]


class Supervisor:
    def __init__(self, devices: DeviceRegistry | None = None, *, min_backoff: float = 1.0, max_backoff: float = 60.0) -> None:
        self.devices = devices
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.restarts: dict[str, int] = {}
        self._stopping = False

    def spawn(self, name: str, factory: TaskFactory, *, device: tuple[str, str] | None = None,
              restart: bool = True) -> asyncio.Task[None]:
        """Run ``factory()`` as a supervised task named ``name``.

        ``device`` = (device id, kind): reported offline (with the error) when the task crashes.
        """
        if name in self._tasks and not self._tasks[name].done():
            raise ValueError(f"task {name} already running")
        task = asyncio.get_running_loop().create_task(self._run(name, factory, device, restart), name=name)
        self._tasks[name] = task
        return task

    async def _run(self, name: str, factory: TaskFactory, device: tuple[str, str] | None, restart: bool) -> None:
        backoff = self.min_backoff
        while not self._stopping:
            started = time.monotonic()
            try:
                await factory()
                if not restart:
                    return
                log.warning("task %s returned; restarting", name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("task %s crashed: %s", name, exc)
                if device and self.devices is not None:
                    try:
                        await self.devices.set_state(device[0], device[1], False, TASK_CRASHED(error=exc))
                    except Exception:
                        log.exception("could not report %s offline", device[0])
                if not restart:
                    return
            if time.monotonic() - started > 60:
                backoff = self.min_backoff
            self.restarts[name] = self.restarts.get(name, 0) + 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    def running(self) -> list[str]:
        return [n for n, t in self._tasks.items() if not t.done()]

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        tasks = [t for t in self._tasks.values() if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
