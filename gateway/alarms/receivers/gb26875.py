"""GB/T 26875.3 user information transmission devices: a status frame is committed, then confirmed."""

from __future__ import annotations

from drivers import gb26875 as gb
from drivers.alarm_stream import Decoder
from gateway.alarms.receivers.stream import StreamAlarmReceiver
from gateway.alarms.signals import signals_from_gb


class Gb26875AlarmReceiver(StreamAlarmReceiver):
    protocol = "gb26875"

    def new_decoder(self) -> Decoder:
        return gb.FrameReader()

    async def handle(self, item: gb.Frame | gb.BadFrame) -> bytes | None:
        """A frame from another source address is denied; anything but status data only proves liveness."""
        if isinstance(item, gb.BadFrame):
            self.host.count_error(self.rc.id, f"gb26875: {item.what}")
            return None
        source = item.source.hex().upper()
        if not self.accepts(source):
            self.host.count_error(self.rc.id, "gb26875: source address not accepted")
            return gb.build_deny(item)
        if item.command not in (gb.CMD_SEND, gb.CMD_REPLY):
            self.host.heard(self.rc.id, source)
            return None
        await self.host.process(self.rc.id, signals_from_gb(self.rc.id, item))
        return gb.build_confirm(item, time=self.ctx.clock.local().replace(tzinfo=None))
