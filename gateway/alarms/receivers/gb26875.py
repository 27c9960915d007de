"""GB/T 26875.3 user information transmission devices: a data frame is committed, then confirmed.

What the transmitter may send and what it gets back (6.2-6.5):

* ``send data`` (2) with information objects -> signals committed, then ``confirm`` (3);
  without objects it is the heartbeat -> the device is alive, ``confirm``;
* ``reply`` (5) -> committed like data; a reply is not confirmed (request/reply pattern);
* ``confirm``/``deny`` (3/6) -> it answered something; alive, nothing sent back;
* anything we cannot take -> ``deny`` (6, 否认) and the error counted with its reason: a source
  address not accepted, data that cannot be read (a reserved or user-defined type of unknown
  length, sizes that do not add up), a centre's query sent as data, a command a transmitter
  does not send. The device resends a denied frame a few times, then gives up.
"""

from __future__ import annotations

from datetime import datetime

from drivers import gb26875 as gb
from drivers.alarm_stream import Decoder
from drivers.gb26875.tables import COMMANDS, DOWNSTREAM_TYPES
from drivers.listener import mark_proven
from gateway.alarms.receivers.stream import StreamAlarmReceiver
from gateway.alarms.signals import signals_from_gb


def refusal(frame: gb.Frame) -> str | None:
    """Why a frame from a transmitter is refused (None: it is taken)."""
    if frame.problem:
        return frame.problem
    if frame.command in (gb.CMD_SEND, gb.CMD_REPLY) and frame.type_flag in DOWNSTREAM_TYPES:
        return f"type {frame.type_flag} is a monitoring centre's query/command, not data"
    if frame.command not in (gb.CMD_SEND, gb.CMD_REPLY, gb.CMD_CONFIRM, gb.CMD_DENY):
        what = COMMANDS.get(frame.command) or ("user-defined" if frame.command >= 128 else "reserved")
        return f"command {frame.command} ({what}) is not something a transmitter sends"
    return None


class Gb26875AlarmReceiver(StreamAlarmReceiver):
    protocol = "gb26875"

    def new_decoder(self) -> Decoder:
        return gb.FrameReader()

    async def handle(self, item: gb.Frame | gb.BadFrame) -> bytes | None:
        if isinstance(item, gb.BadFrame):
            self.host.count_error(self.rc.id, f"gb26875: {item.what}")
            return None
        source = item.source_address
        if not self.accepts(source):
            self.host.count_error(self.rc.id, "gb26875: source address not accepted")
            return gb.build_deny(item, time=self._now())
        why = refusal(item)
        if why is not None:
            self.host.count_error(self.rc.id, f"gb26875: {why}")
            return gb.build_deny(item, time=self._now())
        mark_proven()   # a frame we take: a real transmitter's connection, never closed to make room
        if item.command in (gb.CMD_CONFIRM, gb.CMD_DENY):
            self.host.heard(self.rc.id, source)
            return None
        signals = signals_from_gb(self.rc.id, item)
        if signals:
            await self.host.process(self.rc.id, signals, account=source)
        else:
            self.host.heard(self.rc.id, source)
        return gb.build_confirm(item, time=self._now()) if item.command == gb.CMD_SEND else None

    def _now(self) -> datetime:
        """The site's local time, for the answer's time tag."""
        return self.ctx.clock.local().replace(tzinfo=None)
