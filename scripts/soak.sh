#!/usr/bin/env bash
# make soak: a busy site compressed into a few minutes, with chaos (broker flaps, hardware
# unplugged, kill -9 of the daemon, disk nearly full when run as root). Not part of make test.
#   SOAK_MINUTES=5 (default)  SOAK_SEED=<n> to replay a run's random choices
# Writes bench/results/soak.json; exit 0 only if every event was delivered, seq is gap free,
# SQLite integrity_check is ok, and RSS and open files stayed flat.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || { echo "mosquitto is not installed (make system-deps)"; exit 1; }
exec "$PY" scripts/soak.py "$@"
