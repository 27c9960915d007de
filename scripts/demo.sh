#!/usr/bin/env bash
# make demo: a local mosquitto (127.0.0.1:18830, persistent), simulated hardware with the demo control,
# the gateway on config/demo.toml, two demo cards enrolled. Ctrl-C stops everything, and so do SIGTERM and SIGHUP
# to its process group (timeout, a CI runner, a closed terminal); state stays in var/demo.
#   scripts/demo.sh [--port CONSOLE_PORT] [--mqtt-port BROKER_PORT]
#   environment: EGW_PORT (console, default 8080), EGW_MQTT_PORT (broker, default 18830)
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${EGW_PORT:-8080}"
MQTT_PORT="${EGW_MQTT_PORT:-18830}"
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT="$2"; shift 2 ;;
    --mqtt-port) MQTT_PORT="$2"; shift 2 ;;
    *) echo "usage: scripts/demo.sh [--port CONSOLE_PORT] [--mqtt-port BROKER_PORT]" >&2; exit 2 ;;
  esac
done
for p in "$PORT" "$MQTT_PORT"; do
  [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 65535 ] || { echo "not a port: $p" >&2; exit 2; }
done
BIN=.venv/bin
VAR="$PWD/var/demo"
mkdir -p "$VAR"
chmod 700 "$VAR"

# the run config sits beside demo.toml so its relative paths mean the same
sed -e "s#mqtt://127.0.0.1:18830#mqtt://127.0.0.1:$MQTT_PORT#" \
    -e "s#^listen = \"127.0.0.1:8080\"#listen = \"127.0.0.1:$PORT\"#" config/demo.toml > config/.demo-run.toml
$BIN/estate-gateway check-config -c config/.demo-run.toml >/dev/null

# every port the demo listens on must be free now, or nothing starts (and we say who holds it)
if ! $BIN/python -m gateway.ports -c config/.demo-run.toml "broker=127.0.0.1:$MQTT_PORT" 2>"$VAR/ports.txt"; then
  echo "make demo cannot start, a port it needs is taken:" >&2
  sed 's/^/  /' "$VAR/ports.txt" >&2
  if grep -q "leftover of an earlier 'make demo'" "$VAR/ports.txt"; then
    echo "an earlier 'make demo' was not stopped completely: stop the processes named above (kill PID), then make demo" >&2
  elif grep -qvE '^(console|broker):|^ ' "$VAR/ports.txt"; then
    echo "the simulator's ports are fixed in config/demo.toml (EGW_PORT and EGW_MQTT_PORT move only the console" \
         "and the broker): stop the program named above, or change those ports in config/demo.toml" >&2
  else
    echo "stop the program named above, or choose other ports: EGW_PORT=8081 EGW_MQTT_PORT=18831 make demo" >&2
  fi
  exit 1
fi

MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
# persistence: central (a persistent session, QoS 1) that connects late still gets what it missed,
# across broker restarts too; started as root, mosquitto would drop to a user who cannot write var/demo
cat > "$VAR/mosquitto.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $VAR/
autosave_on_changes true
autosave_interval 1
max_queued_messages 100000
user $(id -un)
EOF

pids=()
stop_pid() {  # stop_pid PID SECONDS: SIGTERM, then SIGKILL if it is still there after SECONDS
  local pid=$1 n=$(( $2 * 10 ))
  kill "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && [ $n -gt 0 ]; do n=$((n - 1)); sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {  # the gateway first (it says goodbye to the broker and its readers), then the hardware, the broker
  # A signal to the whole process group (timeout, a CI runner, a closed terminal, make passing SIGTERM on)
  # often comes twice: the cleanup must not be cut short by the second one, or the broker and simulator
  # (sessions of their own, out of the group's reach) would be left running with the demo's ports.
  trap '' INT TERM HUP
  trap - EXIT
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    stop_pid "${pids[i]}" 15
  done
}
trap cleanup EXIT INT TERM HUP
wait_for() {  # wait_for WHAT SECONDS PID LOG CMD...: until CMD succeeds; if PID ends first or time is up, say why
  local what=$1 n=$(( $2 * 10 )) pid=$3 log=$4; shift 4
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null || [ $n -le 0 ]; then
      echo "$what did not come up; the end of $log:" >&2
      tail -n 15 "$log" >&2
      exit 1
    fi
    n=$((n - 1)); sleep 0.1
  done
}

# broker and simulator in sessions of their own: Ctrl-C reaches the gateway (and this script) only, so the
# gateway stops first, cleanly, while its broker and hardware are still there (cleanup stops them after)
setsid "$MOSQ" -c "$VAR/mosquitto.conf" >>"$VAR/mosquitto.log" 2>&1 & pids+=($!)
wait_for "mosquitto on 127.0.0.1:$MQTT_PORT" 10 $! "$VAR/mosquitto.log" $BIN/python -c \
  "import socket; socket.create_connection(('127.0.0.1', $MQTT_PORT), 0.2)"
rm -f "$VAR/simulate.sock"   # one left by a simulator that was killed
setsid $BIN/estate-gateway simulate -c config/.demo-run.toml 2>>"$VAR/simulate.log" & pids+=($!)
wait_for "the simulator" 20 $! "$VAR/simulate.log" test -S "$VAR/simulate.sock"
$BIN/estate-gateway run -c config/.demo-run.toml 2>>"$VAR/gateway.log" & pids+=($!)
GW=$!
wait_for "the gateway" 40 $GW "$VAR/gateway.log" $BIN/python -c \
  "import httpx; httpx.get('http://127.0.0.1:$PORT/api/v1/health', timeout=1).raise_for_status()"

# two demo cards, enrolled once (a second run finds them): 26:12:345 opens building 3, 26:12:999 is unknown
$BIN/python - "$PORT" <<'EOF'
import sys, httpx
r = httpx.post(f"http://127.0.0.1:{sys.argv[1]}/api/v1/cards", headers={"Authorization": "Bearer demo-technician"},
               json={"card": "26:0600ac80", "unit": "3-1-0201", "holder_kind": "resident", "doors": ["building 3"]})
if r.status_code not in (201, 409):
    print(f"demo card not enrolled: {r.status_code} {r.text}", file=sys.stderr)
EOF

E=".venv/bin/estate-gateway"
cat <<EOF

  estate-gateway demo is up
  console   http://127.0.0.1:$PORT   tokens: demo-operator, demo-technician, demo-central, demo-admin
  broker    127.0.0.1:$MQTT_PORT (persistent)   logs: tail -f var/demo/gateway.log (and simulate, mosquitto)

  try it, in another terminal in this folder:
    $E demo card --reader r-b3u1 --card 26:12:345     # enrolled: granted, the door unlocks
    $E demo card --reader r-b3u1 --card 26:12:999     # unknown: refused
    $E demo alarm fire                                # B3 stairwell smoke (zone 12): doors b3-u1/u2 held open
    $E demo restore fire
    mosquitto_sub -p $MQTT_PORT -i central -c -q 1 -t 'estate/#' -v      # what central sees (and missed)
  Ctrl-C stops everything; the meters, cards and alarms stay in var/demo for the next run.

EOF
rc=0
wait "$GW" || rc=$?
if [ $rc -ne 0 ]; then
  echo "the gateway stopped (exit $rc); the end of var/demo/gateway.log:" >&2
  tail -n 15 "$VAR/gateway.log" >&2
fi
exit $rc
