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

from gateway.alarms.lifecycle import Outcome
from gateway.alarms.signals import Signal
from gateway.config import AlarmReceiverConfig
from gateway.context import GatewayContext

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
        """Input refused (counted, logged, shown on the device)."""

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

    async def offline(self, why: str) -> None:
        await self.ctx.devices.set_state(self.rc.id, "receiver", False, why)
