#!/usr/bin/env bash
# Installs the system packages the tests and the demo need, only when missing:
# mosquitto (real MQTT broker), mosquitto-clients (mosquitto_sub/_pub: watch what central sees, as the README
# shows), netcat-openbsd (nc: the OSDP simulator's control port in docs/access.md),
# chromium + CJK fonts (browser tests of the console), rabbitmq-server (the three-node broker cluster of
# tests/e2e/test_cluster.py and the bench; EGW_NO_RABBITMQ=1 leaves it out).
set -euo pipefail
want=()
# prometheus: its promtool checks and unit-tests the alert rules in config/prometheus/ (the server is not run)
command -v promtool >/dev/null 2>&1 || want+=(prometheus)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || want+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || want+=(mosquitto-clients)
command -v nc >/dev/null 2>&1 || want+=(netcat-openbsd)
if [ "${EGW_NO_RABBITMQ:-0}" != "1" ]; then
  [ -x /usr/sbin/rabbitmq-server ] || want+=(rabbitmq-server)
fi
if [ "${EGW_NO_BROWSER:-0}" != "1" ]; then
  [ -x /usr/bin/chromium ] || want+=(chromium)
  dpkg -s fonts-noto-cjk >/dev/null 2>&1 || want+=(fonts-noto-cjk)
fi
[ ${#want[@]} -eq 0 ] && exit 0
echo "installing: ${want[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# No service starts during the install: rabbitmq-server's and prometheus's postinst run
# `invoke-rc.d ... start || exit 1`, so a node that cannot start (no systemd, a port taken) would fail apt
# and `make test`. A policy-rc.d that exits 101 ("action forbidden") makes invoke-rc.d skip the start; ours
# is written only where there is none (the admin's own is left as it is) and removed again on exit.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# written by estate-gateway scripts/system-deps.sh for one install; removed after it\nexit 101\n' \
    | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  trap '$SUDO rm -f "$POLICY"' EXIT
  trap 'exit 130' INT TERM
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
if [[ " ${want[*]} " == *" prometheus "* ]]; then   # only promtool is wanted, not a server on 9090
  ($SUDO systemctl disable --now prometheus >/dev/null 2>&1 || $SUDO service prometheus stop >/dev/null 2>&1 || true)
fi
# Debian starts a system-wide broker on 1883 after install; our tests and demo start their own.
if [[ " ${want[*]} " == *" mosquitto "* ]]; then
  ($SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || $SUDO service mosquitto stop >/dev/null 2>&1 || true)
fi
# The same for RabbitMQ: scripts/rabbitmq-cluster.sh starts its own nodes (own names, ports and dirs).
if [[ " ${want[*]} " == *" rabbitmq-server "* ]]; then
  ($SUDO systemctl disable --now rabbitmq-server >/dev/null 2>&1 || $SUDO service rabbitmq-server stop >/dev/null 2>&1 || true)
fi
