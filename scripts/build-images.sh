#!/usr/bin/env bash
# Makes one RouterOS-loadable image tar per architecture from out/<target>/uplinkd (no container
# engine needed), then reads each back and checks manifest and config.
#
#   scripts/build-images.sh [TARGET...]   (default: every target that has a binary in out/)
set -euo pipefail
cd "$(dirname "$0")/.."
targets=${*:-$(ls out 2>/dev/null | grep -- '-linux-musl' || true)}
[ -n "$targets" ] || { echo "no binaries in out/: run scripts/build-static.sh first" >&2; exit 1; }
for t in $targets; do
    case "$t" in
    x86_64-*) arch=amd64 variant= ;;
    aarch64-*) arch=arm64 variant=v8 ;;
    armv7-*) arch=arm variant=v7 ;;
    armv5te-*) arch=arm variant=v5 ;;
    esac
    tar=$(python3 scripts/mkimage.py build --target "$t")
    python3 scripts/mkimage.py check "$tar" --arch "$arch" ${variant:+--variant "$variant"}
done
