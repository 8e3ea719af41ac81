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
. scripts/lib/targets.sh
fail=0
trap pair_down EXIT
for t in $targets; do
    bin=out/$t/uplinkd
    run=$(runner "$t")
    desc=$(file -b "$bin")
    case "$desc" in
    *"statically linked"* | *"static-pie linked"*) echo "ok   $t: $desc" ;;
    *) echo "FAIL $t: not static: $desc"; fail=1 ;;
    esac
    if v=$($run "$bin" --version 2>&1); then echo "ok   $t: --version: $v"; else echo "FAIL $t: --version: $v"; fail=1; fi
    # The example leaves the pin to `uplinkd pin`; any 64 hex digits do for check.
    if out=$(UPLINKD_REST_PASSWORD=example UPLINKD_REST_PIN_SHA256="$(printf '0%.0s' $(seq 64))" $run "$bin" check --config config.example.toml 2>&1); then
        echo "ok   $t: check config.example.toml ($(echo "$out" | wc -l) lines)"
    else
        echo "FAIL $t: check: $out"; fail=1
    fi
    if [ "$(id -u)" = 0 ]; then
        # Through a veth between two namespaces, as through a WAN's veth.
        pair_up
        if out=$(ip netns exec "$PAIR_NS-a" $run "$bin" probe --interface "$PAIR_DEV" --source "$PAIR_LOCAL" --count 3 --interval-ms 100 "$PAIR_PEER" 2>&1); then
            echo "ok   $t: probe through a namespace veth: $(echo "$out" | tail -n1)"
        else
            echo "FAIL $t: probe: $out"; fail=1
        fi
        pair_down
    elif [ "${UPLINKD_TEST_STRICT:-}" = 1 ]; then
        echo "FAIL $t: probe through a namespace veth needs root (UPLINKD_TEST_STRICT=1)"; fail=1
    else
        echo "skip $t: probe through a namespace veth (needs root)"
    fi
done
exit $fail
