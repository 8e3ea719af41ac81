#!/usr/bin/env bash
# Budgets per architecture built into out/ (scripts/build-static.sh, scripts/build-images.sh):
# - the stripped static binary (goal: arm64 <= 4 MiB) and its image tar, raw and gzipped;
# - start-up time to the first probe (root only): `uplinkd probe --count 1` through a veth between
#   two namespaces, RUNS times per binary, natively or under qemu-user as check-static.sh runs it.
#   `wall` is exec to exit (process start, runtime, socket, one echo, exit); `first reply` is the
#   binary's own count from its start of work to the reply. Medians.
# Steady RSS and CPU while probing are measured in the namespace lab: scripts/bench-lab.sh.
#
#   scripts/bench-size.sh [RUNS]     (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/targets.sh
runs=${1:-10}
trap pair_down EXIT
[ "$(id -u)" = 0 ] && pair_up

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print v[int((NR + 1) / 2)] }'; }

printf '%-32s %10s %6s %10s %10s %10s %12s\n' target binary_B MiB image_tar_B tar_gz_B wall_ms first_reply_ms
for bin in out/*-linux-musl*/uplinkd; do
    t=$(basename "$(dirname "$bin")")
    img=$(image_of "$t")
    b=$(stat -c %s "$bin")
    if [ -f "$img" ]; then i=$(stat -c %s "$img"); g=$(gzip -9c "$img" | wc -c); else i=-; g=-; fi
    wall=- first=-
    if [ "$(id -u)" = 0 ]; then
        run=$(runner "$t")
        walls=() firsts=()
        for _ in $(seq 1 "$runs"); do
            t0=$(date +%s%N)
            out=$(ip netns exec "$PAIR_NS-a" $run "$bin" --log warn probe --interface "$PAIR_DEV" \
                --source "$PAIR_LOCAL" --count 1 "$PAIR_PEER")
            t1=$(date +%s%N)
            walls+=("$(( (t1 - t0) / 1000 ))")
            firsts+=("$(echo "$out" | sed -n 's/.*first reply \([0-9.]*\) ms after start.*/\1/p')")
        done
        wall=$(printf '%s\n' "${walls[@]}" | median | awk '{ printf "%.1f", $1 / 1000 }')
        first=$(printf '%s\n' "${firsts[@]}" | median)
    fi
    printf '%-32s %10s %6s %10s %10s %10s %12s\n' "$t" "$b" \
        "$(awk -v b="$b" 'BEGIN{printf "%.2f", b/1048576}')" "$i" "$g" "$wall" "$first"
done
