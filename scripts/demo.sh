#!/usr/bin/env bash
# make demo: a local mosquitto on a free port, simulated hardware, the gateway on config/demo.toml.
# Console: http://127.0.0.1:8080 (tokens demo-operator, demo-technician, demo-central, demo-admin).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var/demo
PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$PORT" > var/demo/mosquitto.conf
# the run config sits beside demo.toml so its relative paths mean the same
sed "s#mqtt://127.0.0.1:1883#mqtt://127.0.0.1:$PORT#" config/demo.toml > config/.demo-run.toml
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
"$MOSQ" -c var/demo/mosquitto.conf >var/demo/mosquitto.log 2>&1 & pids+=($!)
.venv/bin/estate-gateway check-config -c config/.demo-run.toml
.venv/bin/estate-gateway simulate -c config/.demo-run.toml 2>var/demo/simulate.log & pids+=($!)
echo "mosquitto on 127.0.0.1:$PORT (watch: mosquitto_sub -p $PORT -t 'estate/#' -v)"
echo "console on http://127.0.0.1:8080  (token: demo-operator / demo-technician / demo-central / demo-admin)"
echo "simulator log: var/demo/simulate.log; Ctrl-C stops everything"
.venv/bin/estate-gateway run -c config/.demo-run.toml & pids+=($!)
wait "${pids[-1]}"
