#!/usr/bin/env bash
# A three-node RabbitMQ cluster on one machine, for the tests (tests/e2e/test_cluster.py) and the bench:
# what an estate group runs in front of a thousand gateways, with the MQTT plugin and its sessions in
# quorum queues (a node can die without losing what it acknowledged).
#
#   scripts/rabbitmq-cluster.sh start            three nodes, clustered, MQTT on BASE+201..203
#   scripts/rabbitmq-cluster.sh stop             stop them all and remove their directories
#   scripts/rabbitmq-cluster.sh kill N           kill -9 node N (1..3)
#   scripts/rabbitmq-cluster.sh freeze|thaw N    SIGSTOP / SIGCONT node N (no answers, TCP stays open)
#   scripts/rabbitmq-cluster.sh stop-node|start-node N   a graceful restart of one node (rolling restart)
#   scripts/rabbitmq-cluster.sh ports            the MQTT ports, one a line
#
# EGW_RMQ_DIR (default /tmp/egw-rabbitmq) holds each node's data, logs, config and pid file;
# EGW_RMQ_BASE (default 31000): node N listens on AMQP BASE+N, distribution BASE+100+N, MQTT BASE+200+N.
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

ctl() {   # ctl N args...: rabbitmqctl against node N
  local n=$1; shift
  # shellcheck disable=SC2046
  as_rabbitmq env $(node_env "$n") "$BIN/rabbitmqctl" -n "egw$n@localhost" "$@"
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

await_node() {
  local n=$1 deadline=$((SECONDS + ${EGW_RMQ_BOOT_S:-120}))
  # await_startup fails at once until the node has registered with epmd: poll
  until ctl "$n" await_startup --timeout 10 >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "node egw$n did not start (log: $DIR/egw$n/log)"
    sleep 1
  done
}

pid_of() { cat "$DIR/egw$1/pid" 2>/dev/null || true; }

case "${1:-}" in
  start)
    mkdir -p "$DIR"
    chmod 755 "$DIR"
    for n in "${NODES[@]}"; do prepare "$n"; done
    [ -f "$HOME_RMQ/.erlang.cookie" ] || { as_rabbitmq sh -c "umask 077; head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' > $HOME_RMQ/.erlang.cookie"; }
    for n in "${NODES[@]}"; do start_node "$n"; done
    for n in "${NODES[@]}"; do await_node "$n"; done
    for n in 2 3; do
      ctl "$n" stop_app >/dev/null
      ctl "$n" join_cluster egw1@localhost >/dev/null
      ctl "$n" start_app >/dev/null
    done
    ctl 1 await_online_nodes 3 --timeout 60 >/dev/null 2>&1 || ctl 1 cluster_status >&2
    echo "rabbitmq cluster up: MQTT on 127.0.0.1:$((BASE + 201)), :$((BASE + 202)), :$((BASE + 203))"
    ;;
  stop)
    for n in "${NODES[@]}"; do
      pid=$(pid_of "$n")
      [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null || true
      [ -n "$pid" ] && timeout 30 "$0" stop-node "$n" >/dev/null 2>&1 &
    done
    wait || true
    for n in "${NODES[@]}"; do
      pid=$(pid_of "$n")
      [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$DIR"
    ;;
  kill)   pid=$(pid_of "${2:?node}"); [ -n "$pid" ] && kill -9 "$pid" ;;
  freeze) pid=$(pid_of "${2:?node}"); [ -n "$pid" ] && kill -STOP "$pid" ;;
  thaw)   pid=$(pid_of "${2:?node}"); [ -n "$pid" ] && kill -CONT "$pid" ;;
  stop-node) ctl "${2:?node}" stop >/dev/null ;;
  start-node) start_node "${2:?node}"; await_node "$2" ;;
  await) await_node "${2:?node}" ;;
  ports) for n in "${NODES[@]}"; do echo $((BASE + 200 + n)); done ;;
  *) die "usage: $0 start|stop|kill N|freeze N|thaw N|stop-node N|start-node N|await N|ports" ;;
esac
