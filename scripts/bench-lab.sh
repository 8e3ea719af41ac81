#!/usr/bin/env bash
# bench-lab.sh: measures uplinkd in the namespace lab (scripts/netlab.sh) against the REST emulator.
# Not a test: it prints numbers for docs/probing.md. Needs root, iproute2, nftables.
#
#   scripts/bench-lab.sh [TRIALS] [LOSS_SECONDS] [STEADY_SECONDS]
#     TRIALS          hard outages (blackhole on ISP1) at a random phase      (default 20)
#     LOSS_SECONDS    run at 20 % iid loss on ISP1, counting false failovers (default 600)
#     STEADY_SECONDS  window for the daemon's CPU share and RSS               (default 60)
#   BENCH_RTT_MS=20         a standing delay on both WANs (netlab.sh latency), for the 20 ms RTT goal
#   BENCH_UPLINKD_BIN=path  the daemon binary to measure (default: a release build, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-20}
loss=${2:-600}
steady=${3:-60}
[ "$(id -u)" = 0 ] || { echo "bench-lab.sh: needs root (network namespaces)" >&2; exit 1; }
bin=${BENCH_UPLINKD_BIN:-target/release/uplinkd}
if [ -z "${BENCH_UPLINKD_BIN:-}" ]; then
  cargo build --release --bin uplinkd >&2
fi
cargo build --example bench_lab >&2
echo "# bench-lab $(date -u +%FT%TZ) trials=$trials loss_seconds=$loss steady_seconds=$steady rtt_ms=${BENCH_RTT_MS:-0}"
echo "# $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
target/debug/examples/bench_lab "$bin" "$trials" "$loss" "$steady"
