"""The interface every receiver protocol implements, and what it may call back.

A receiver owns one configured ``[[alarm_receivers]]`` entry: it listens (TCP) or reads (serial),
turns each message into :class:`gateway.alarms.signals.Signal` rows, hands them to its
:class:`ReceiverHost` -- which commits them -- and only then answers the panel. A receiver that
cannot start (port taken, bad key) reports itself offline; the rest of the gateway runs on.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import ClassVar, Protocol

from drivers.listener import Limits, parse_networks
from gateway.alarms.lifecycle import Outcome
from gateway.alarms.signals import Signal
from gateway.config import AlarmReceiverConfig
from gateway.context import GatewayContext
from gateway.reasons import Reason

log = logging.getLogger(__name__)


class ReceiverHost(Protocol):
    """What a receiver reports to (:class:`gateway.alarms.intake.Intake`)."""

    async def process(self, receiver: str, signals: list[Signal], *,
                      dedupe: tuple[str, str, str] | None = None, account: str | None = None) -> Outcome:
        """Commit the signals; returns once they are on disk (then the panel may be answered)."""

    async def process_batch(self, receiver: str,
                            items: list[tuple[list[Signal], tuple[str, str, str] | None, str]]) -> list[Outcome]:
        """Several messages (signals, dedupe, account) committed in one transaction, in order."""

    def heard(self, receiver: str, account: str = "") -> None:
        """A valid message without signals (a poll): the panel is alive."""

    def count_error(self, receiver: str, what: str) -> None:
        """Input refused (counted, logged once a minute per reason, shown on the device)."""

    def refused_plain(self, receiver: str, account: str) -> None:
        """A plain block from an account that has a key was refused (counted, logged, a device warning)."""

    def refused_connection(self, receiver: str, reason: str, source: str) -> None:
        """A connection was closed unread (allow_from, caps) or for being idle (counted)."""

    async def listening(self, receiver: str) -> None:
        """The receiver is up."""


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (IPv6 in brackets) -> (host, port); an empty host listens everywhere."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class AlarmReceiver(ABC):
    """One configured receiver of one protocol."""

    protocol: ClassVar[str]

    def __init__(self, rc: AlarmReceiverConfig, ctx: GatewayContext, host: ReceiverHost) -> None:
        self.rc = rc
        self.ctx = ctx
        self.host = host
        #: the bound TCP port once listening (None for serial, or while the port cannot be had)
        self.port: int | None = None

    @abstractmethod
    async def start(self) -> None:
        """Listen or spawn the reading task; return quickly. Failing to listen reports the receiver offline."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop listening / reading."""

    def limits(self) -> Limits:
        """The listener's guard from the config: allow_from, connection caps, idle timeout."""
        rc = self.rc
        return Limits(parse_networks(rc.allow_from), rc.max_connections, rc.max_per_source, rc.idle_timeout_s)

    def on_refuse(self, reason: str, source: str) -> None:
        self.host.refused_connection(self.rc.id, reason, source)

    def warn_if_open(self) -> None:
        """Say at start (once) what check-config says: a port beyond loopback that takes blocks from anyone."""
        if self.rc.open_to_anyone:
            log.warning("alarm receiver %s: listens on %s with neither encryption nor allow_from: anyone who "
                        "reaches the port can raise a fire (set allow_from, see docs/security.md)",
                        self.rc.id, self.rc.listen)

    async def offline(self, why: Reason) -> None:
        await self.ctx.devices.set_state(self.rc.id, "receiver", False, why)
