#!/usr/bin/env bash
# Memory over virtual time: the health core and policy (`uplinkd simulate`) through one hour
# and through one week of a WAN that flaps all along (2 min dead, 10 min alive), peak RSS of
# each run. Flat means nothing grows with time or with the number of outages.
#
#   scripts/bench-memory.sh            (builds the release binary; BENCH_UPLINKD_BIN=... to pick one)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BENCH_UPLINKD_BIN:-}
if [ -z "$BIN" ]; then
    cargo build --quiet --release --locked
    BIN=target/release/uplinkd
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
scenario() { # name duration
    cat > "$dir/$1.toml" <<TOML
name = "$1"
seed = 3
duration = "$2"

[[wan]]
name = "ISP1"
priority = 1
target = [
  { ip = "198.18.1.1", rtt = "20ms", jitter = "2ms" },
  { ip = "198.18.1.2", rtt = "22ms", jitter = "2ms" },
]

[[wan]]
name = "ISP2"
priority = 2
target = [
  { ip = "198.18.1.1", rtt = "30ms", jitter = "3ms", loss = 0.05 },
  { ip = "198.18.1.2", rtt = "32ms", jitter = "3ms", loss = 0.05 },
]

[[fault]]
wan = "ISP1"
kind = "flap"
from = "60s"
to = "$2"
down = "120s"
up = "600s"
TOML
}
printf '%-8s %12s %14s %12s %10s\n' run virtual transitions "peak RSS" "wall s"
for run in "1h:3600s" "1d:86400s" "7d:604800s"; do
    name=${run%%:*}; dur=${run#*:}
    scenario "$name" "$dur"
    start=$(date +%s.%N)
    out=$(/usr/bin/time -f '%M' "$BIN" simulate "$dir/$name.toml" 2>"$dir/$name.rss" | grep -c 'FAILOVER' || true)
    end=$(date +%s.%N)
    rss=$(tail -n1 "$dir/$name.rss")
    printf '%-8s %12s %14s %9s KiB %10.1f\n' "$name" "$dur" "$out" "$rss" "$(echo "$end - $start" | bc)"
done
