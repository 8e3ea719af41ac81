#!/usr/bin/env bash
# Checks the static binaries in out/<target>/uplinkd: `file` says statically linked, and each one
# runs (natively or under qemu-user): --version, `check` on the example config, and, as root, a
# real probe through a network namespace (198.18.0.0/15, created and deleted here).
#
#   scripts/check-static.sh [TARGET...]     (default: every target that has a binary in out/)
set -euo pipefail
cd "$(dirname "$0")/.."
targets=${*:-$(ls out 2>/dev/null | grep -- '-linux-musl' || true)}
[ -n "$targets" ] || { echo "no binaries in out/: run scripts/build-static.sh first" >&2; exit 1; }
fail=0
runner() {
    case "$1" in
    x86_64-*) echo "" ;;
    aarch64-*) echo "qemu-aarch64-static" ;;
    armv7-*) echo "qemu-arm-static -cpu cortex-a7" ;;
    armv5te-*) echo "qemu-arm-static -cpu arm926" ;;   # the EN7562CT class: ARMv5TE, no VFP
    esac
}
ns=uplinkd-static-$$
cleanup() { ip netns del "$ns-a" 2>/dev/null || true; ip netns del "$ns-b" 2>/dev/null || true; }
trap cleanup EXIT
for t in $targets; do
    bin=out/$t/uplinkd
    run=$(runner "$t")
    desc=$(file -b "$bin")
    case "$desc" in
    *"statically linked"* | *"static-pie linked"*) echo "ok   $t: $desc" ;;
    *) echo "FAIL $t: not static: $desc"; fail=1 ;;
    esac
    if v=$($run "$bin" --version 2>&1); then echo "ok   $t: --version: $v"; else echo "FAIL $t: --version: $v"; fail=1; fi
    if out=$(UPLINKD_REST_PASSWORD=example $run "$bin" check --config config.example.toml 2>&1); then
        echo "ok   $t: check config.example.toml ($(echo "$out" | wc -l) lines)"
    else
        echo "FAIL $t: check: $out"; fail=1
    fi
    if [ "$(id -u)" = 0 ] && $run "$bin" --help | grep -q '^  probe'; then
        # Two namespaces joined by a veth: the binary (under qemu where needed) pings the peer
        # through the bound device and source address, as it does through a WAN's veth.
        cleanup
        ip netns add "$ns-a" && ip netns add "$ns-b"
        ip -n "$ns-a" link add name vt-a type veth peer name vt-b netns "$ns-b"
        ip -n "$ns-a" addr add 198.18.250.2/30 dev vt-a && ip -n "$ns-b" addr add 198.18.250.1/30 dev vt-b
        ip -n "$ns-a" link set vt-a up && ip -n "$ns-b" link set vt-b up && ip -n "$ns-a" link set lo up
        if out=$(ip netns exec "$ns-a" $run "$bin" probe --interface vt-a --source 198.18.250.2 --count 3 198.18.250.1 2>&1); then
            echo "ok   $t: probe through a namespace veth: $(echo "$out" | tail -n1)"
        else
            echo "FAIL $t: probe: $out"; fail=1
        fi
        cleanup
    fi
done
exit $fail
