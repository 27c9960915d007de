"""The gateway's own reason codes (devices and the uplink), beside the drivers' in ``drivers/reasons.py``.

Same registry, same rules: a call site uses one of these :class:`~drivers.reasons.Code` objects,
never free text, so the console can show every reason in Chinese or English
(``gateway/api/i18n_reasons.py``) and a test can prove none is missing. The English template is the
text logs, ``/health`` and the events' ``reason`` carry.
"""

from __future__ import annotations

from drivers.reasons import NONE, REGISTRY, Code, Reason, define, reason_fields

# ---------------------------------------------------------------- devices
TASK_CRASHED = define("task_crashed", "driver crashed: {error}")
BUS_UNREACHABLE = define("bus_unreachable", "{error}")
CANNOT_LISTEN = define("cannot_listen", "cannot listen: {error}")
BAD_KEY_FILE = define("bad_key_file", "bad key_file")
PANEL_SILENT = define("panel_silent", "panel silent")
PANELS_SILENT = define("panels_silent", "silent: {panels}")
PANEL_HEARD_AGAIN = define("panel_heard_again", "panel heard again")
PLAIN_DC09_REFUSED = define("plain_dc09_refused", "plain DC-09 blocks refused (account {account}): "
                            "the panel must encrypt, or set allow_plain")

# ---------------------------------------------------------------- the uplink (``{where}`` is host:port)
BROKER_REFUSED = define("broker_refused", "broker refused connection: {detail}")
TLS_UNTRUSTED = define("tls_untrusted", "TLS: the broker's certificate at {where} is not trusted ({detail}; "
                       "certificate verify failed); check mqtt.ca_file ({ca}) and that the certificate names {host}")
TLS_FAILED = define("tls_failed", "TLS handshake with {where} failed: {detail}")
CONNECTION_REFUSED = define("connection_refused", "connection refused by {where}: no broker listening there")
NO_ANSWER = define("no_answer", "no answer from {where} (timeout)")
CANNOT_CONNECT = define("cannot_connect", "cannot connect to {where}: {detail}")
BROKER_UNREACHABLE = define("broker_unreachable",
                            "connection failed (broker unreachable, TLS or auth problem; see log)")
CLIENT_CERT_REQUIRED = define("client_cert_required", "TLS: the broker requires a client certificate and rejected "
                              "ours (set mqtt.client_cert_file and mqtt.client_key_file)")
TLS_CLOSED = define("tls_closed", "TLS: the broker closed the connection: {detail}")
CLOSED_EARLY = define("closed_early", "connection to {where} closed before the broker accepted it: {detail}")
CLOSED_EARLY_PLAIN = define("closed_early_plain", "connection to {where} closed before the broker accepted it: "
                            "{detail} (if that port speaks TLS, use an mqtts:// url)")
DISCONNECTED = define("disconnected", "disconnected: {detail}")
NODE_STALLED = define("node_stalled", "{where} stopped acknowledging: {outstanding} publishes without PUBACK "
                      "for {seconds} s (keepalive {keepalive} s)")

__all__ = ["NONE", "REGISTRY", "Code", "Reason", "reason_fields", "TASK_CRASHED", "BUS_UNREACHABLE",
           "CANNOT_LISTEN", "BAD_KEY_FILE", "PANEL_SILENT", "PANELS_SILENT", "PANEL_HEARD_AGAIN",
           "PLAIN_DC09_REFUSED", "BROKER_REFUSED", "TLS_UNTRUSTED", "TLS_FAILED", "CONNECTION_REFUSED",
           "NO_ANSWER", "CANNOT_CONNECT", "BROKER_UNREACHABLE", "CLIENT_CERT_REQUIRED", "TLS_CLOSED",
           "CLOSED_EARLY", "CLOSED_EARLY_PLAIN", "DISCONNECTED", "NODE_STALLED"]
