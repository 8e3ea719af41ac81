#!/usr/bin/env bash
# Builds static musl release binaries of uplinkd, one per RouterOS container architecture, into
# out/<target>/uplinkd.
#
#   scripts/build-static.sh                       # all four targets
#   scripts/build-static.sh aarch64-unknown-linux-musl x86_64-unknown-linux-musl
#
# The default build is the router build (the emulator and the demo are dev-dependency workspace
# members); `-p uplinkd` builds just the daemon.
# x86_64 (CHR) and aarch64 (RB5009, hAP ax3, CCR2004): rustup's std + host gcc / Debian's
#   gcc-aarch64-linux-gnu (see .cargo/config.toml).
# armv7 (hAP ac2, RB4011, L009) and armv5te (EN7562CT: hEX refresh E50UG, hEX S 2025, hAP ax S):
#   cargo-zigbuild (PyPI: ziglang + cargo-zigbuild) as C compiler and linker. When rustup cannot
#   install the target's std (its dist server answers 404 on the machines here), std is built from
#   rust-src with -Zbuild-std (RUSTC_BOOTSTRAP=1) and linked against zig's musl.
# UPLINKD_ZIG=1 uses cargo-zigbuild for x86_64 and aarch64 too (the Containerfile's build stage,
#   which has no Debian cross gcc).
# armv5te has no 64-bit atomics: surge-ping 0.9.1 gets patches/surge-ping-0.9.1-armv5te.patch,
#   applied to a copy of the registry crate under target/, through a command-line [patch]; the
#   committed Cargo.lock is restored afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
ZIGVENV=${ZIGVENV:-/opt/zigvenv}
all="x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf armv5te-unknown-linux-musleabi"
targets=${*:-$all}

have_std() { rustup target list --installed 2>/dev/null | grep -qx "$1"; }

patched_surge_ping() {
    # Prints the path of a patched copy of the registry's surge-ping, creating it when needed.
    local ver dir src
    ver=$(awk '/^name = "surge-ping"$/{getline; gsub(/"/,"",$3); print $3}' Cargo.lock)
    dir="$root/target/patched/surge-ping-$ver"
    if [ ! -f "$dir/.patched" ]; then
        cargo fetch --locked >/dev/null
        src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/surge-ping-"$ver" | head -n1)
        rm -rf "$dir" && mkdir -p "$(dirname "$dir")" && cp -r "$src" "$dir"
        chmod -R u+w "$dir"
        patch -d "$dir" -p1 --quiet < "patches/surge-ping-$ver-armv5te.patch"
        touch "$dir/.patched"
    fi
    echo "$dir"
}

for t in $targets; do
    echo "== $t" >&2
    case "$t" in
    x86_64-unknown-linux-musl | aarch64-unknown-linux-musl)
        if [ "${UPLINKD_ZIG:-}" = 1 ]; then
            PATH="$ZIGVENV/bin:$PATH" cargo zigbuild --release --locked -p uplinkd --target "$t"
        else
            cargo build --release --locked -p uplinkd --target "$t"
        fi
        ;;
    armv7-unknown-linux-musleabihf | armv5te-unknown-linux-musleabi)
        export PATH="$ZIGVENV/bin:$PATH"
        command -v cargo-zigbuild >/dev/null || { echo "cargo-zigbuild missing: python3 -m venv $ZIGVENV && $ZIGVENV/bin/pip install ziglang cargo-zigbuild" >&2; exit 1; }
        args=(zigbuild --release -p uplinkd --target "$t")
        envs=()
        if ! have_std "$t"; then
            args+=(-Zbuild-std=std,panic_abort)
            var="CARGO_TARGET_$(echo "$t" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
            envs+=(RUSTC_BOOTSTRAP=1 "$var=-C link-self-contained=no")
        fi
        if [ "$t" = armv5te-unknown-linux-musleabi ]; then
            sp=$(patched_surge_ping)
            args+=(--config "patch.crates-io.surge-ping.path=\"$sp\"")
            cp Cargo.lock target/Cargo.lock.committed
            trap 'cp target/Cargo.lock.committed Cargo.lock' EXIT
        else
            args+=(--locked)
        fi
        env "${envs[@]}" cargo "${args[@]}"
        if [ "$t" = armv5te-unknown-linux-musleabi ]; then
            cp target/Cargo.lock.committed Cargo.lock
            trap - EXIT
        fi
        ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
    esac
    mkdir -p "out/$t"
    cp "target/$t/release/uplinkd" "out/$t/uplinkd"
    ls -l "out/$t/uplinkd" >&2
done
