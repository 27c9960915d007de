"""A small central consumer: what the office system does with a thousand gateways' events.

* consumes with a persistent session (``clean_session=False``, QoS 1) -- on a cluster one node
  is enough; for separate brokers (no shared sessions) give it every node;
* dedupes by event ``id`` (delivery is at least once);
* finds gaps in each gateway's ``seq`` (it rises by exactly 1 per gateway) and recovers them with
  the ``events.resend`` command, over MQTT: the site needs no inbound port;
* reads the event type from the payload, never from the topic (RabbitMQ delivers
  ``event/alarm.raised`` as ``event/alarm/raised``).

Run it:  python examples/central_consumer.py mqtt://127.0.0.1:1883 [more node urls...]
It prints one line per new event and asks for every gap it sees (after ``--settle`` seconds, so
that a failover's re-sent backlog can arrive first). tests/e2e/test_cluster_failover.py uses it.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def host_port(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[1]
    host, _, port = rest.rpartition(":")
    return (host or rest).strip("[]"), int(port) if port.isdigit() else 1883


class Central:
    def __init__(self, urls: list[str], *, name: str = "central", topic: str = "estate/+/+/#") -> None:
        self.lock = threading.Lock()
        self.events: dict[str, dict[str, Any]] = {}          # id -> event (deduped)
        self.seqs: dict[str, set[int]] = {}                  # gateway root -> seqs seen
        self.answers: dict[str, list[dict[str, Any]]] = {}   # command id -> cmd-result message(s)
        self.seen_on: dict[str, str] = {}                    # gateway root -> the node url it was last heard on
        self.duplicates = 0
        self.clients: dict[str, mqtt.Client] = {}
        for url in urls:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{host_port(url)[1]}", clean_session=False,
                            userdata=url)
            subscribed = threading.Event()
            c.on_connect = lambda cl, u, f, rc, p, t=topic: cl.subscribe(t, qos=1)
            c.on_subscribe = lambda *a, ev=subscribed: ev.set()
            c.on_message = self._on_message
            c.reconnect_delay_set(1, 2)
            c.connect_async(*host_port(url))
            c.loop_start()
            self.clients[url] = c
            subscribed.wait(10)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        levels = msg.topic.split("/")
        if len(levels) < 4:
            return
        root, kind = "/".join(levels[:3]), levels[3]
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            return
        with self.lock:
            self.seen_on[root] = userdata   # its node: where a command to it goes
            if kind == "event" and isinstance(payload, dict) and "id" in payload:
                if payload["id"] in self.events:
                    self.duplicates += 1
                    return
                self.events[payload["id"]] = payload
                self.seqs.setdefault(root, set()).add(int(payload["seq"]))
            elif kind == "cmd-result" and isinstance(payload, dict):
                self.answers.setdefault(str(payload.get("id")), []).append(payload)

    def gaps(self, root: str, last_seq: int | None = None) -> list[tuple[int, int]]:
        """The seq runs missing for one gateway, as (after_seq, limit); up to ``last_seq`` if given.

        From the first seq seen of that gateway: a consumer started after the gateway does not ask
        for its whole history (read that with events.resend from 0 if it is wanted).
        """
        with self.lock:
            have = set(self.seqs.get(root, set()))
        if not have:
            return []
        top = max(have | {last_seq or 0})
        runs: list[tuple[int, int]] = []
        for seq in range(min(have), top + 1):
            if seq in have:
                continue
            if runs and sum(runs[-1]) == seq - 1:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1)
            else:
                runs.append((seq - 1, 1))
        return runs

    def command(self, url: str | None, root: str, name: str, args: dict[str, Any], timeout: float = 30,
                tries: int = 3) -> dict[str, Any]:
        """Publish a command (on ``url``, or the node the gateway was last heard on) and wait for its answer.

        With no answer after ``timeout / tries`` seconds the same command goes again with the same id:
        the gateway answers a repeated id with its stored result, it never runs twice (an answer can
        be lost when the link drops, docs/scale-out.md "Central's side").
        """
        cmd_id = f"central-{uuid.uuid4().hex[:12]}"
        message = json.dumps({"id": cmd_id, "args": args})
        for _ in range(tries):
            self.clients[url or self.node_of(root)].publish(f"{root}/cmd/{name}", message, qos=1)
            deadline = time.monotonic() + timeout / tries
            while time.monotonic() < deadline:
                with self.lock:
                    if cmd_id in self.answers:
                        return self.answers[cmd_id][0]
                time.sleep(0.05)
        raise TimeoutError(f"no answer to {name} {cmd_id}")

    def node_of(self, root: str) -> str:
        with self.lock:
            return self.seen_on.get(root) or next(iter(self.clients))

    def recover(self, url: str | None, root: str, last_seq: int | None = None) -> int:
        """Ask the gateway for every gap (events.resend); returns how many events were asked for."""
        asked = 0
        for after, limit in self.gaps(root, last_seq):
            while limit > 0:
                n = min(limit, 10000)
                answer = self.command(url, root, "events.resend", {"after_seq": after, "limit": n})
                if not answer.get("ok"):
                    raise RuntimeError(f"events.resend refused: {answer}")
                asked += answer["result"]["resent"]
                after, limit = after + n, limit - n
        return asked

    def close(self) -> None:
        for c in self.clients.values():
            c.loop_stop()
            c.disconnect()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("urls", nargs="+", help="broker node urls, mqtt://host:port")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds a gap must last before it is asked for")
    args = ap.parse_args()
    central = Central(args.urls)
    printed: set[str] = set()
    first_seen: dict[tuple[str, int], float] = {}
    try:
        while True:
            time.sleep(1)
            with central.lock:
                new = [e for i, e in central.events.items() if i not in printed]
                roots = list(central.seqs)
            for e in sorted(new, key=lambda e: e["seq"]):
                printed.add(e["id"])
                print(f"{e['ts']} seq={e['seq']} {e['type']}{' (historical)' if e['historical'] else ''}")
            for root in roots:
                for gap in central.gaps(root):
                    since = first_seen.setdefault((root, gap[0]), time.monotonic())
                    if time.monotonic() - since >= args.settle:
                        print(f"{root}: gap after seq {gap[0]} ({gap[1]} events): asking for it again")
                        central.recover(None, root)   # through the node it was last heard on
    except KeyboardInterrupt:
        pass
    finally:
        central.close()


if __name__ == "__main__":
    main()
