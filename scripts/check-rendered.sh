#!/usr/bin/env bash
# Renders every config variant in tests/fixtures/rsc-variants (base and install script) into a
# temporary directory and runs check-rsc on each; exits non-zero on any error or warning.
#
#   scripts/check-rendered.sh [PATH/TO/check-rsc]      (default: ../shared/tools/check-rsc)
#
# check-rsc knows the RouterOS 7.20 command tree. A script rendered for 7.21 is checked against
# that tree with the 7.21 renames applied (routeros-facts A3/A4, from restraml 7.21.5 inspect):
# /container add: mounts -> mountlists (+ env, mount, cpu-list, hosts, layer-dir, stop-time);
# /container mounts add: name -> list (+ disabled); /container envs add: + disabled;
# /interface veth add: + container-mac-address. So a 7.21 script that still says `mounts=`
# fails, as it would on the router.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECK="${1:-../shared/tools/check-rsc}"
[ -x "$CHECK" ] || { echo "check-rendered: $CHECK is not an executable check-rsc" >&2; exit 2; }
SCHEMA="$(dirname "$(readlink -f "$CHECK")")/../routeros-schema"

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
cargo build --quiet --bin uplinkd
BIN=target/debug/uplinkd

# The 7.21 view of the schema.
mkdir -p "$OUT/schema-7.21"
cp "$SCHEMA"/*.json.gz "$OUT/schema-7.21/"
python3 - "$OUT/schema-7.21" <<'PY'
import gzip, json, sys, pathlib
d = pathlib.Path(sys.argv[1])
ARG = {"_type": "arg"}
def patch(tree):
    c = tree.get("container")
    if not c:
        return
    add = c["add"]
    add.pop("mounts", None)
    for a in ("mountlists", "env", "mount", "cpu-list", "hosts", "layer-dir", "stop-time"):
        add[a] = dict(ARG)
    m = c["mounts"]["add"]
    m.pop("name", None)
    m["list"] = dict(ARG)
    m["disabled"] = dict(ARG)
    c["envs"]["add"]["disabled"] = dict(ARG)
    tree["interface"]["veth"]["add"]["container-mac-address"] = dict(ARG)
for f in ("routeros-7.20.8-extra-inspect.json.gz", "routeros-7.20-extra-inspect.json.gz"):
    p = d / f
    tree = json.loads(gzip.decompress(p.read_bytes()))
    patch(tree)
    p.write_bytes(gzip.compress(json.dumps(tree).encode()))
PY

status=0
for cfg in tests/fixtures/rsc-variants/*.toml; do
    name="$(basename "$cfg" .toml)"
    for script in base install; do
        file="$OUT/$name-$script.rsc"
        "$BIN" render "$script" --config "$cfg" > "$file"
        if head -1 "$file" | grep -q 'for RouterOS 7.21'; then
            args=(--schema-dir "$OUT/schema-7.21")
        else
            args=()
        fi
        echo "== $name $script (${args[*]:-RouterOS 7.20 tree})"
        "$CHECK" --strict "${args[@]}" "$file" || status=1
    done
done
exit $status
