#!/bin/sh
# Health-core benchmark in virtual time (not a test): false failovers in 24 simulated hours at
# 20 % iid loss on every monitor, and the detection/recovery time distribution of a hard outage
# at the default profile on a 20 ms link. Usage: scripts/bench-sim.sh [TRIALS] [HOURS] [RUNS]
set -eu
cd "$(dirname "$0")/.."
exec cargo run --quiet --example bench_sim -- "${1:-200}" "${2:-24}" "${3:-1}"
