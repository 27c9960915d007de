#!/usr/bin/env bash
# A three-node RabbitMQ cluster on one machine, for the tests (tests/e2e/test_cluster.py) and the bench:
# what an estate group runs in front of a thousand gateways, with the MQTT plugin and its sessions in
# quorum queues (a node can die without losing what it acknowledged).
#
#   scripts/rabbitmq-cluster.sh start            three nodes, clustered, MQTT on BASE+201..203
#   scripts/rabbitmq-cluster.sh stop             stop them all and remove their directories
#   scripts/rabbitmq-cluster.sh kill N           kill -9 node N (1..3)
#   scripts/rabbitmq-cluster.sh freeze|thaw N    SIGSTOP / SIGCONT node N (no answers, TCP stays open)
#   scripts/rabbitmq-cluster.sh stop-node|start-node N   a graceful restart of one node (rolling restart):
#                                stop-node waits until the node is not quorum critical, start-node until
#                                all three nodes are online again (what RabbitMQ advises between nodes)
#   scripts/rabbitmq-cluster.sh ports            the MQTT ports, one a line
#
# EGW_RMQ_DIR (default /tmp/egw-rabbitmq) holds each node's data, logs, config and pid file;
# EGW_RMQ_BASE (default 31000): node N listens on AMQP BASE+N, distribution BASE+100+N, MQTT BASE+200+N.
# EGW_RMQ_BOOT_S (default 120): the deadline of a whole start or start-node; stop kills what is left after
# 30 s (nodes without a pid file too) and ends epmd when no other node is registered on it.
# Node names are egwN@localhost. Runs as root (the nodes run as user rabbitmq, like Debian's service)
# or as the rabbitmq user. Debian's own node (the package's service) is not touched.
set -euo pipefail

DIR=${EGW_RMQ_DIR:-/tmp/egw-rabbitmq}
BASE=${EGW_RMQ_BASE:-31000}
BIN=/usr/lib/rabbitmq/bin
NODES=(1 2 3)
HOME_RMQ=/var/lib/rabbitmq     # the Erlang cookie the nodes and rabbitmqctl share

die() { echo "rabbitmq-cluster: $*" >&2; exit 2; }
[ -x "$BIN/rabbitmq-server" ] || die "rabbitmq-server is not installed (scripts/system-deps.sh installs it)"

as_rabbitmq() {
  # run "$@" as user rabbitmq with the node's environment (runuser keeps the environment; no login shell)
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u rabbitmq -- env HOME="$HOME_RMQ" "$@"
  elif [ "$(id -un)" = rabbitmq ]; then
    env HOME="$HOME_RMQ" "$@"
  else
    die "run as root or as user rabbitmq"
  fi
}

node_env() {
  local n=$1 d="$DIR/egw$1"
  echo RABBITMQ_NODENAME="egw$n@localhost" RABBITMQ_NODE_PORT=$((BASE + n)) \
    RABBITMQ_DIST_PORT=$((BASE + 100 + n)) RABBITMQ_MNESIA_BASE="$d/mnesia" RABBITMQ_LOG_BASE="$d/log" \
    RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
    RABBITMQ_PID_FILE="$d/pid" RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config" \
    RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf"
}

# One deadline for a whole command (start: all three nodes; start-node: one), EGW_RMQ_BOOT_S seconds:
# the callers (the tests) give the script more than that, so it always ends by itself and says why.
DEADLINE=$((SECONDS + ${EGW_RMQ_BOOT_S:-120}))
left() { local s=$((DEADLINE - SECONDS)); [ $s -gt 1 ] && echo $s || echo 1; }

ctl() {   # ctl N args...: rabbitmqctl against node N, within what is left of the deadline
  local n=$1; shift
  # shellcheck disable=SC2046
  as_rabbitmq timeout "$(left)" env $(node_env "$n") "$BIN/rabbitmqctl" -n "egw$n@localhost" "$@"
}

prepare() {
  local n=$1 d="$DIR/egw$1"
  mkdir -p "$d/mnesia" "$d/log"
  cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$((BASE + n))
mqtt.listeners.tcp.default = 127.0.0.1:$((BASE + 200 + n))
mqtt.durable_queue_type = quorum
mqtt.allow_anonymous = true
mqtt.default_user = guest
mqtt.default_pass = guest
cluster_partition_handling = pause_minority
log.file.level = warning
EOF
  echo '[rabbitmq_mqtt].' >"$d/enabled_plugins"
  # a frozen node is declared down after ~net_ticktime (default 60 s): until then quorum writes that need it
  # wait; 10 s keeps the SIGSTOP test short and is what a LAN cluster can afford
  echo '[{kernel, [{net_ticktime, 10}]}].' >"$d/advanced.config"
  : >"$d/rabbitmq-env.conf"
}

start_node() {
  local n=$1 d="$DIR/egw$1"
  [ -d "$d" ] || prepare "$n"
  chown -R rabbitmq:rabbitmq "$DIR" 2>/dev/null || true
  # shellcheck disable=SC2046
  as_rabbitmq env $(node_env "$n") setsid "$BIN/rabbitmq-server" >>"$d/log/console.log" 2>&1 </dev/null &
}

# One deadline for a whole command (start: all three nodes; start-node: one), EGW_RMQ_BOOT_S seconds:
# callers (the tests) give the script more than that, so it always ends by itself and says why.
DEADLINE=$((SECONDS + ${EGW_RMQ_BOOT_S:-120}))
left() { local s=$((DEADLINE - SECONDS)); [ $s -gt 0 ] || die "${1:-gave up}: over EGW_RMQ_BOOT_S"; echo $s; }

await_node() {
  local n=$1
  # await_startup fails at once until the node has registered with epmd: poll
  until ctl "$n" await_startup --timeout 10 >/dev/null 2>&1; do
    [ $SECONDS -lt $DEADLINE ] || die "node egw$n did not start within EGW_RMQ_BOOT_S (log: $DIR/egw$n/log)"
    sleep 1
  done
}

step() {   # step WHAT N args...: a rabbitmqctl step that must succeed before the deadline
  local what=$1; shift
  ctl "$@" >/dev/null || die "$what failed or timed out (log: $DIR/egw$1/log)"
}

pid_of() { cat "$DIR/egw$1/pid" 2>/dev/null || true; }

# A node left behind without a pid file (a start cut short): a beam.smp whose environment names node
# egwN@localhost and this cluster's directory (its command line names neither; another cluster's nodes
# are not touched).
strays() {
  local p env
  for p in $(pgrep -x beam.smp 2>/dev/null || true); do
    env=$(tr '\0' '\n' 2>/dev/null <"/proc/$p/environ") || continue
    grep -qx "RABBITMQ_NODENAME=egw$1@localhost" <<<"$env" &&
      grep -qx "RABBITMQ_MNESIA_BASE=$DIR/egw$1/mnesia" <<<"$env" && echo "$p"
  done
  return 0
}

# epmd (started by the first node, as rabbitmq) outlives the nodes: end it when no node is left on it
stop_epmd() {
  local names
  names=$(as_rabbitmq epmd -names 2>/dev/null | grep -c '^name ' || true)
  if [ "${names:-0}" -eq 0 ]; then as_rabbitmq epmd -kill >/dev/null 2>&1 || true; fi
}

quorum_safe() {   # before stopping node N: until none of its quorum queues would lose its majority
  # shellcheck disable=SC2046
  until as_rabbitmq timeout "$(left)" env $(node_env "$1") "$BIN/rabbitmq-queues" -n "egw$1@localhost" \
        check_if_node_is_quorum_critical >/dev/null 2>&1; do
    [ $SECONDS -lt $DEADLINE ] || die "node egw$1 stays quorum critical: not stopped"
    sleep 1
  done
}

case "${1:-}" in
  start)
    for n in "${NODES[@]}"; do   # the node names are fixed: a second cluster on this machine cannot start
      if as_rabbitmq epmd -names 2>/dev/null | grep -q "^name egw$n at"; then
        die "node egw$n is already running on this machine (another cluster? scripts/rabbitmq-cluster.sh stop)"
      fi
    done
    mkdir -p "$DIR"
    chmod 755 "$DIR"
    for n in "${NODES[@]}"; do prepare "$n"; done
    [ -f "$HOME_RMQ/.erlang.cookie" ] || { as_rabbitmq sh -c "umask 077; head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' > $HOME_RMQ/.erlang.cookie"; }
    for n in "${NODES[@]}"; do start_node "$n"; done
    for n in "${NODES[@]}"; do await_node "$n"; done
    for n in 2 3; do
      step "egw$n stop_app" "$n" stop_app
      step "egw$n join_cluster" "$n" join_cluster egw1@localhost
      step "egw$n start_app" "$n" start_app
    done
    step "await_online_nodes 3" 1 await_online_nodes 3 --timeout "$(left)"
    echo "rabbitmq cluster up: MQTT on 127.0.0.1:$((BASE + 201)), :$((BASE + 202)), :$((BASE + 203))"
    ;;
  stop)
    DEADLINE=$((SECONDS + 30))   # a node that does not stop within 30 s is killed
    for n in "${NODES[@]}"; do
      pid=$(pid_of "$n")
      [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null || true
      if [ -n "$pid" ]; then (ctl "$n" stop >/dev/null 2>&1 || true) & fi
    done
    wait || true
    for n in "${NODES[@]}"; do
      pid=$(pid_of "$n")
      [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
      for p in $(strays "$n"); do kill -CONT "$p" 2>/dev/null || true; kill -9 "$p" 2>/dev/null || true; done
    done
    rm -rf "$DIR"
    stop_epmd
    ;;
  kill)   pid=$(pid_of "${2:?node}"); [ -n "$pid" ] && kill -9 "$pid" ;;
  freeze) pid=$(pid_of "${2:?node}"); [ -n "$pid" ] && kill -STOP "$pid" ;;
  thaw)   pid=$(pid_of "${2:?node}"); [ -n "$pid" ] && kill -CONT "$pid" ;;
  stop-node) quorum_safe "${2:?node}"; step "egw$2 stop" "$2" stop ;;
  start-node)   # back in the cluster with all three nodes online before the next node is stopped
    start_node "${2:?node}"; await_node "$2"; step "await_online_nodes 3" "$2" await_online_nodes 3 --timeout "$(left)" ;;
  await) await_node "${2:?node}" ;;
  ports) for n in "${NODES[@]}"; do echo $((BASE + 200 + n)); done ;;
  *) die "usage: $0 start|stop|kill N|freeze N|thaw N|stop-node N|start-node N|await N|ports" ;;
esac
