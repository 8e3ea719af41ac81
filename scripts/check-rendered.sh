#!/usr/bin/env bash
# Renders every config variant in tests/fixtures/rsc-variants (base and install script) into a
# temporary directory and runs check-rsc and routeros-lsp on each; exits non-zero on any error or warning.
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

# The second validator: routeros-lsp (pip), whose command database comes from a RouterOS 7.21.4
# CHR without extra packages. Its findings are all kept except these, each absent from that
# database only, not from RouterOS (check-rsc above checks them against the 7.20 tree with the
# container package):
#  - schema/unknown-command 'container' and 'veth': the container package is not in its database;
#  - schema/unknown-parameter 'hw-offload': fasttrack's hw-offload, which defconf itself writes,
#    is missing from the CHR's database (a CHR has no switch chip) but is in the 7.20 tree.
command -v routeros-lsp >/dev/null || { echo "check-rendered: routeros-lsp not installed (python3 -m pip install routeros-lsp)" >&2; exit 2; }
lsp() {
    # routeros-lsp exits 1 on any finding, the allowed ones too; the filter below decides (with
    # pipefail, its status would otherwise fail every script).
    { routeros-lsp check --strict --format json "$1" 2>/dev/null || true; } | python3 -c '
import json, re, sys
text = sys.stdin.read()
findings = json.loads(text[: text.rindex("]") + 1]) if "[" in text else []
ALLOWED = {("schema/unknown-command", "container"), ("schema/unknown-command", "veth"),
           ("schema/unknown-parameter", "hw-offload")}
bad = 0
for f in findings:
    m = re.match(r"\x27([^\x27]+)\x27", f["message"])
    if (f["rule"], m.group(1) if m else "") in ALLOWED:
        continue
    bad += 1
    print("%s:%d:%d: %s: %s [%s]" % (sys.argv[1], f["line"], f["column"], f["severity"], f["message"], f["rule"]))
print("routeros-lsp: %d finding(s) beyond the documented database gaps" % bad)
sys.exit(1 if bad else 0)
' "$1"
}

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
        lsp "$file" || status=1
    done
done
exit $status
