"""The uplink's brokers: one, or the nodes of one cluster, and what the link's health says about them.

An estate group runs a clustered broker (``[mqtt] urls``): when the node the gateway is on dies,
freezes or is restarted, the gateway must not wait for *that* node to come back while events
queue and central's commands go nowhere. :class:`Nodes` keeps the failover order, which node is
being tried and which one the link is on, and counts the failovers (a link established on a node
other than the last one) for ``/health``. The wording of connection errors lives here too, so a
technician reads which node refused and why.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import GatewayConfig
from gateway.config.models import url_host, url_port
from gateway.events import format_ts, utc_now
from gateway.reasons import (
    BROKER_UNREACHABLE,
    CANNOT_CONNECT,
    CLIENT_CERT_REQUIRED,
    CLOSED_EARLY,
    CLOSED_EARLY_PLAIN,
    CONNECTION_REFUSED,
    NO_ANSWER,
    TLS_CLOSED,
    TLS_FAILED,
    TLS_UNTRUSTED,
    Reason,
    reason_fields,
)
from gateway.uplink_client import UplinkClient


@dataclass
class UplinkState:
    connected: bool = False
    since: str = ""
    connects: int = 0
    last_error: str = ""      # a Reason (its English words; its code for the console) or ""
    delivered: int = 0
    node: str = ""            # the broker url the link is on ("" while down)
    failovers: int = 0        # links established on another node than the previous link's
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"connected": self.connected, "since": self.since, "connects": self.connects,
                "last_error": self.last_error, "delivered": self.delivered, "node": self.node,
                "failovers": self.failovers, **_error_fields(self.last_error)}


def _error_fields(error: str) -> dict[str, Any]:
    """``last_error_code``/``last_error_args`` beside ``last_error`` (empty while there is no error)."""
    fields = reason_fields(error)
    return {"last_error_code": fields.get("reason_code", ""), "last_error_args": fields.get("reason_args", {})}


class Nodes:
    """The failover order of the broker urls; ``advance`` is called from paho's thread, the rest from the loop."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = list(urls)
        self._index = 0
        self._lock = threading.Lock()
        self.last_linked = ""     # the node of the last established link

    @property
    def current(self) -> str:
        with self._lock:
            return self.urls[self._index]

    @property
    def cluster(self) -> bool:
        return len(self.urls) > 1

    def advance(self) -> str:
        """The next node to try (round robin); the same one when there is only one."""
        with self._lock:
            self._index = (self._index + 1) % len(self.urls)
            return self.urls[self._index]

    def client_id(self, base: str) -> str:
        """One client id per node on a cluster (``egw-site-gw-n2``), the plain one on one broker.

        RabbitMQ keeps a clean session's subscription queue on the node it was made on: after that
        node dies, the same client id on another node finds the queue's record, with its home node
        down, and the broker closes the connection (a failover loop). And a frozen node still holds
        the old connection, which the broker would try to take over. Sessions are clean, so nothing
        is lost by the id differing per node.
        """
        with self._lock:
            return f"{base}-n{self._index + 1}" if self.cluster else base

    def move_on(self, client: mqtt.Client, keepalive: int, base_id: str) -> None:
        """Paho's next (re)connect goes to the next node (paho's thread, in its callbacks); one node: no change."""
        if self.cluster:
            host, port = host_port(self.advance())
            # paho 2.x has no setter for the client id (pinned in requirements.lock)
            client._client_id = self.client_id(base_id).encode()
            # connect_async only sets where to connect and leaves the connecting to paho's loop, which
            # reconnects after its backoff (reset by every successful CONNACK)
            client.connect_async(host, port, keepalive=keepalive)

    def linked(self, url: str) -> str | None:
        """A link is up on ``url``: the node it failed over from, or None (first link, or the same node)."""
        previous, self.last_linked = self.last_linked, url
        return previous if previous and previous != url else None


def base_client_id(cfg: GatewayConfig) -> str:
    return f"egw-{cfg.gateway.site}-{cfg.gateway.id}"


def make_client(cfg: GatewayConfig, client_id: str) -> UplinkClient:
    """A paho client with the uplink's identity, credentials and TLS: the same for every node of a cluster."""
    m = cfg.mqtt
    client = UplinkClient(
        CallbackAPIVersion.VERSION2,
        topic_prefix=f"{cfg.topic_root}/event/",
        client_id=client_id,
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    # The window is enforced by the uplink, not by paho: paho's own limit walks its
    # whole message table on every PUBACK, which caps throughput at a few thousand a second.
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    if m.username:
        password = None
        if m.password_file:
            password = cfg.resolve(m.password_file).read_text(encoding="utf-8").strip()
        client.username_pw_set(m.username, password)
    if m.tls:
        client.tls_set(
            ca_certs=str(cfg.resolve(m.ca_file)) if m.ca_file else None,
            certfile=str(cfg.resolve(m.client_cert_file)) if m.client_cert_file else None,
            keyfile=str(cfg.resolve(m.client_key_file)) if m.client_key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    return client


def status_payload(cfg: GatewayConfig, state: str, boot_id: str, version: str) -> str:
    """``{root}/status``: online when the link is up, the will (offline) when it is not."""
    return json.dumps({"state": state, "boot_id": boot_id, "version": version, "gateway": cfg.gateway.id,
                       "site": cfg.gateway.site, "ts": format_ts(utc_now())})


def drop_socket(client: mqtt.Client) -> None:
    """End the client's connection from our side: paho's next read sees the end of the stream, a lost link.

    The plain socket's shutdown, under TLS too (``SSLSocket.shutdown`` would pull the TLS object
    from under paho's thread); works on a peer that is frozen and will never answer a DISCONNECT.
    """
    sock = client.socket()
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # type: ignore[arg-type]
        except OSError:
            pass


def host_port(url: str) -> tuple[str, int]:
    return url_host(url), url_port(url)


def explain_connect_error(exc: BaseException | None, url: str, ca_file: str) -> Reason:
    """One line a technician can act on, from the exception of a failed connect to ``url``."""
    host, port = host_port(url)
    where = f"{host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        ca = ca_file or "the system CAs"
        return TLS_UNTRUSTED(where=where, detail=exc.verify_message, ca=ca, host=host)
    if isinstance(exc, ssl.SSLError):
        return TLS_FAILED(where=where, detail=exc.reason or exc)
    if isinstance(exc, ConnectionRefusedError):
        return CONNECTION_REFUSED(where=where)
    if isinstance(exc, TimeoutError):
        return NO_ANSWER(where=where)
    if isinstance(exc, OSError):
        return CANNOT_CONNECT(where=where, detail=exc)
    return BROKER_UNREACHABLE()


def explain_refusal(reason: Any, socket_error: str, url: str) -> Reason:
    """Why a connection to ``url`` closed before the broker accepted it."""
    text = socket_error.lower()
    if "certificate_required" in text or "certificate required" in text:
        return CLIENT_CERT_REQUIRED()
    if "certificate" in text or "ssl" in text or "tls" in text:
        return TLS_CLOSED(detail=socket_error)
    host, port = host_port(url)
    code = CLOSED_EARLY if url.startswith("mqtts://") else CLOSED_EARLY_PLAIN
    return code(where=f"{host}:{port}", detail=socket_error or reason)


__all__ = ["Nodes", "UplinkState", "explain_connect_error", "explain_refusal", "drop_socket", "base_client_id", "host_port", "make_client", "status_payload"]
