"""Ademco Contact ID lines, as a receiver prints them (serial port, or a serial-to-TCP converter)."""

from __future__ import annotations

from drivers import contact_id as cid
from drivers.alarm_stream import Decoder, LineDecoder
from drivers.listener import mark_proven
from gateway.alarms.receivers.stream import StreamAlarmReceiver
from gateway.alarms.signals import cid_signal


class ContactIdAlarmReceiver(StreamAlarmReceiver):
    protocol = "contact-id-serial"

    def new_decoder(self) -> Decoder:
        return LineDecoder()

    async def handle(self, item: str) -> bytes | None:
        """One printed line: nothing is sent back (the printing receiver already answered the panel)."""
        try:
            ev = cid.parse_line(item)
        except cid.ContactIdError as exc:
            self.host.count_error(self.rc.id, f"contact id: {exc}")
            return None
        if not self.accepts(ev.account):
            self.host.count_error(self.rc.id, "account not accepted")
            return None
        mark_proven()   # a line we take: a real receiver's connection, never closed to make room
        await self.host.process(self.rc.id, [cid_signal(self.rc.id, ev, item.strip())])
        return None
