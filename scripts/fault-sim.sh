#!/usr/bin/env bash
# The whole-system fault simulation (tests/fault_sim.rs) for any number of seeds: prints seeds,
# fault steps, virtual hours, flushes checked and invariant violations, and the seed of each
# violation (rerun one with `scripts/fault-sim.sh 1 SEED`).
#
#   scripts/fault-sim.sh [SEEDS [FIRST]]      (default 1000 seeds from 1)
set -euo pipefail
cd "$(dirname "$0")/.."
FAULT_SIM_SEEDS=${1:-1000} FAULT_SIM_FIRST=${2:-1} \
    cargo test --locked --quiet --test fault_sim -- --nocapture 2>&1 |
    grep -E '^fault simulation:|^seed |panicked|test result'
