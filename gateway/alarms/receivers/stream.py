"""Receivers fed by a byte stream -- a TCP listener (serial-to-TCP converter) or a serial port.

Contact ID lines and GB/T 26875.3 frames arrive the same way; only the decoder and what an
item means differ, so a protocol here is a decoder plus :meth:`StreamAlarmReceiver.handle`.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any

from drivers.alarm_stream import Decoder, SerialSource, serve_tcp
from drivers.listener import GuardedListener
from gateway.alarms.receivers.base import AlarmReceiver, split_listen
from gateway.reasons import CANNOT_LISTEN, Reason

log = logging.getLogger(__name__)


class StreamAlarmReceiver(AlarmReceiver):
    _server: GuardedListener | None = None
    _source: SerialSource | None = None

    @abstractmethod
    def new_decoder(self) -> Decoder:
        """A fresh decoder (one per connection)."""

    @abstractmethod
    async def handle(self, item: Any) -> bytes | None:
        """Act on one decoded item; bytes returned are sent back (after the commit)."""

    def accepts(self, account: str) -> bool:
        return not self.rc.accounts or account in {a.upper() for a in self.rc.accounts}

    async def start(self) -> None:
        rc = self.rc
        if rc.listen:
            host, port = split_listen(rc.listen)
            try:
                self._server = await serve_tcp(host, port, self.new_decoder, self.handle, limits=self.limits(),
                                               on_refuse=self.on_refuse, name=f"alarm receiver {rc.id}")
            except OSError as exc:
                log.error("alarm receiver %s: cannot listen on %s: %s", rc.id, rc.listen, exc)
                await self.offline(CANNOT_LISTEN(error=exc))
                return
            self.port = self._server.port
            self.warn_if_open()
            await self.host.listening(rc.id)
        else:
            self._source = SerialSource(rc.port, rc.baud, self.new_decoder(), self.handle, on_link=self._link)
            self.ctx.supervisor.spawn(f"alarms.{rc.id}", self._source.run, device=(rc.id, "receiver"))
        log.info("alarm receiver %s: %s on %s", rc.id, rc.protocol, rc.listen or rc.port)

    async def _link(self, up: bool, why: Reason) -> None:
        await self.ctx.devices.set_state(self.rc.id, "receiver", up, why)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._source is not None:
            self._source.stop()
