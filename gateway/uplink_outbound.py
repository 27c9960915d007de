"""Outbound only: what central used to pull over HTTP, over the uplink the site already opens.

A site behind NAT or a carrier-grade router cannot be reached from central, so everything central
pulls is also an MQTT command. This module holds the uplink's share of that:

* ``events.resend {"after_seq", "limit"}`` republishes a range of the event log on the usual
  ``{root}/event/{type}`` topics with the same ids and seq and ``historical: true`` -- how central
  fills a gap in a gateway's seq. It answers ``{"resent", "last_seq"}`` (``last_seq``: the seq of
  the last event resent, ``after_seq`` if none: ask again from there while ``resent == limit``).
* :func:`split_answer`: an answer larger than the broker's packet limit (``[mqtt] max_packet_bytes``;
  a reading pull of thousands of items, a billing export) is split into parts that each fit, every
  part a whole result with a share of ``items`` and ``"part": k, "parts": n`` beside ``id``: a
  broker would otherwise drop the packet, or the link, and central would never get its answer.
  What no split makes fit (a single item over the limit) is answered ``too_large`` instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.commands import QUIET_CODES, CommandError, CommandRouter
from gateway.events import EventLog

log = logging.getLogger("gateway.uplink")

TOPIC_HEADROOM = 64     # fixed header, topic length field, packet id, and a margin
MAX_PARALLEL_COMMANDS = 8


class ResendArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after_seq: int = Field(ge=0, le=2**62)
    limit: int = Field(default=1000, ge=1, le=10000)


class Resender:
    """``events.resend``: ``publish(topic, payload)`` queues one QoS 1 message and says whether it could."""

    def __init__(self, events: EventLog, publish: Callable[[str, str], bool], prefix: str) -> None:
        self.events = events
        self.publish = publish
        self.prefix = prefix

    async def __call__(self, args: ResendArgs) -> dict[str, Any]:
        after, left, sent = args.after_seq, args.limit, 0
        while left > 0:
            batch = self.events.query(after=after, limit=min(left, 1000))
            for ev in batch:
                if not self.publish(self.prefix + ev.type, ev.to_json(historical=True)):
                    raise CommandError("uplink_down", "the link dropped while resending; ask again from last_seq",
                                       resent=sent, last_seq=after)
                sent, after = sent + 1, ev.seq
            left -= len(batch)
            if len(batch) < 1000:
                break
            await asyncio.sleep(0)   # let acks and other commands in between pages
        return {"resent": sent, "last_seq": after}


class CommandPath:
    """Commands in (``{root}/cmd/#``), answers out (``{root}/cmd-result``, in parts when large).

    The name is the topic's levels after ``cmd/`` joined with ``.``: RabbitMQ's MQTT plugin maps
    ``.`` in a topic to ``/`` (``cmd/door.unlock`` arrives as ``cmd/door/unlock``), mosquitto does
    not, and both must reach ``door.unlock``.
    """

    def __init__(self, router: CommandRouter, root: str, publish: Callable[[str, str], bool], max_packet: int,
                 spawn: Callable[[Coroutine[Any, Any, None]], Any]) -> None:
        self.router = router
        self.prefix = f"{root}/cmd/"
        self.result_topic = f"{root}/cmd-result"
        self.publish = publish
        self.max_packet = max_packet
        self.spawn = spawn
        self._slots = asyncio.Semaphore(MAX_PARALLEL_COMMANDS)
        self._running: set[str] = set()

    def arrived(self, topic: str, payload: bytes) -> None:
        self.spawn(self.run(topic[len(self.prefix):].replace("/", "."), payload))

    async def run(self, name: str, payload: bytes) -> None:
        key = f"{name}:{hash(payload)}"
        if key in self._running:
            return  # the same message redelivered while the first is still running
        self._running.add(key)
        try:
            async with self._slots:
                result = await self.router.handle(name, payload)
        finally:
            self._running.discard(key)
        if (code := None if result.get("ok") else result.get("error", {}).get("code")) not in QUIET_CODES:
            log.info("command %s id=%s -> %s", name, result.get("id"), code or "ok")   # refusals: QuietLog'd
        for part in split_answer(result, self.result_topic, self.max_packet):
            self.publish(self.result_topic, json.dumps(part, ensure_ascii=False))


def _size(obj: Any) -> int:
    return len(json.dumps(obj, ensure_ascii=False).encode())


def split_answer(answer: dict[str, Any], topic: str, max_packet: int) -> list[dict[str, Any]]:
    """The answer as one message, or as parts of ``result.items`` that each fit ``max_packet`` bytes.

    What cannot fit whatever the split (one item, or a result without ``items``, over the limit) is
    answered ``too_large``: a broker would drop the packet (or the link) and central wait for nothing.
    """
    budget = max_packet - len(topic.encode()) - TOPIC_HEADROOM
    result = answer.get("result")
    if _size(answer) <= budget or not answer.get("ok"):
        return [answer]
    if not isinstance(result, dict) or not isinstance(result.get("items"), list):
        return [_too_large(answer, "the answer", _size(answer), max_packet)]
    items = result["items"]
    head = {**answer, "part": 10**9, "parts": 10**9, "result": {**result, "items": []}}
    room = budget - _size(head)
    chunks: list[list[Any]] = [[]]
    used = 0
    for k, item in enumerate(items):
        size = _size(item) + 2   # ", "
        if size > room:
            return [_too_large(answer, f"item {k} of the answer", size, max_packet)]
        if chunks[-1] and used + size > room:
            chunks.append([])
            used = 0
        chunks[-1].append(item)
        used += size
    n = len(chunks)
    return [{**answer, "part": k, "parts": n, "result": {**result, "items": chunk}}
            for k, chunk in enumerate(chunks, start=1)]


def _too_large(answer: dict[str, Any], what: str, size: int, max_packet: int) -> dict[str, Any]:
    message = (f"{what} is {size} bytes: more than fits one MQTT packet ([mqtt] max_packet_bytes = {max_packet}); "
               f"ask for less, or raise the broker's and the gateway's packet limit")
    return {"id": answer.get("id"), "ok": False, "error": {"code": "too_large", "message": message}}


__all__ = ["CommandPath", "ResendArgs", "Resender", "split_answer"]
