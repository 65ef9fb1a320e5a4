#!/bin/sh
# Run every benchmark (B1..B11) one after another; each appends its figures to bench/RESULTS.md.
# Usage: bench/run_all.sh [--quick] [B1 B5 ...]     (the full sizes take about an hour on 2 cores)
set -e
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" -m bench "$@"
