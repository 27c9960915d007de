#!/usr/bin/env bash
# Runs every benchmark in bench/; each writes JSON to bench/results/ and prints a summary.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
rc=0
for b in bench/bench_*.py; do
  echo "== $b"
  .venv/bin/python "$b" || { echo "!! $b failed"; rc=1; }
done
exit $rc
