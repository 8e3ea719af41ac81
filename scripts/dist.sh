#!/usr/bin/env bash
# Builds what a user uploads to the router, for every RouterOS container architecture (or the
# targets given), into dist/:
#
#   dist/<arch>/uplinkd.tar     the image, named as the install script expects (`/container add
#                               file=uplinkd.tar`, the default of `render install --image-file`)
#   dist/<arch>/uplinkd         the static binary (remote mode runs it on any Linux host)
#   dist/SHA256SUMS             `sha256sum -c SHA256SUMS` from inside dist/ checks them all
#
# <arch> is the platform RouterOS reports: amd64 (CHR, x86), arm64 (RB5009, hAP ax3, CCR2004),
# arm-v7 (hAP ac2, RB4011, L009), arm-v5 (hEX refresh E50UG, hEX S 2025, hAP ax S).
#
#   scripts/dist.sh                                   # all four
#   scripts/dist.sh x86_64-unknown-linux-musl aarch64-unknown-linux-musl
set -euo pipefail
cd "$(dirname "$0")/.."
all="x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf armv5te-unknown-linux-musleabi"
targets=${*:-$all}
# shellcheck disable=SC2086
scripts/build-static.sh $targets
# shellcheck disable=SC2086
scripts/build-images.sh $targets
rm -rf dist && mkdir -p dist
for t in $targets; do
    case "$t" in
    x86_64-*) arch=amd64 short=amd64 ;;
    aarch64-*) arch=arm64 short=arm64 ;;
    armv7-*) arch=arm-v7 short=armv7 ;;
    armv5te-*) arch=arm-v5 short=armv5 ;;
    *) echo "unknown target $t" >&2; exit 1 ;;
    esac
    tar="out/uplinkd-$short.tar"
    mkdir -p "dist/$arch"
    cp "$tar" "dist/$arch/uplinkd.tar"
    cp "out/$t/uplinkd" "dist/$arch/uplinkd"
done
(cd dist && find . -type f ! -name SHA256SUMS | sort | sed 's|^\./||' | xargs sha256sum > SHA256SUMS)
cat dist/SHA256SUMS
