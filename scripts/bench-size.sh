#!/usr/bin/env bash
# Size budget (goal: arm64 binary <= 4 MiB): the stripped static binary and the image tar of each
# architecture built into out/ (scripts/build-static.sh, scripts/build-images.sh), raw and gzipped.
# Steady RSS and CPU while probing are measured in the namespace lab: scripts/bench-lab.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
printf '%-34s %12s %12s %12s %14s\n' target binary_bytes binary_MiB image_tar image_tar_gz
for bin in out/*-linux-musl*/uplinkd; do
    t=$(basename "$(dirname "$bin")")
    case "$t" in
    x86_64-*) img=out/uplinkd-amd64.tar ;;
    aarch64-*) img=out/uplinkd-arm64.tar ;;
    armv7-*) img=out/uplinkd-armv7.tar ;;
    armv5te-*) img=out/uplinkd-armv5.tar ;;
    esac
    b=$(stat -c %s "$bin")
    if [ -f "$img" ]; then i=$(stat -c %s "$img"); g=$(gzip -9c "$img" | wc -c); else i=-; g=-; fi
    printf '%-34s %12s %12s %12s %14s\n' "$t" "$b" "$(awk -v b="$b" 'BEGIN{printf "%.2f", b/1048576}')" "$i" "$g"
done
