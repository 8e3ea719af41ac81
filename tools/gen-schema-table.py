#!/usr/bin/env python3
"""gen-schema-table: write the RouterOS command table that the emulator embeds (crates/emulator/src/schema.txt).

Reads restraml's /console/inspect dumps vendored in ../shared/routeros-schema (gzip JSON; see its README):
the 7.20.8 and 7.20 x86 trees with all extra packages (merged), the arm64-only paths of the 7.20.8 x86/arm64
diff, and the 7.21.4 deep-inspect for closed value lists (enums) and print properties. Writes, for each menu
uplinkd needs, its commands with their argument names (closed value lists where known) and its properties.

Usage:
  tools/gen-schema-table.py [--schema-dir DIR] [--out FILE]   write the table
  tools/gen-schema-table.py --check                           exit 1 when the committed table is stale

Output format (line based, read by crates/emulator/src/schema.rs):
  menu <path>                 a menu ("/" is the root, for /execute, /import, /ping)
  props <name> ...            properties a print/find can name (.id first)
  cmd <name> <arg> ...        a command; an arg is `name`, `name=v1|v2|...` (a closed value list) or
                              `name:type` (time = a time interval, ip4 = IPv4 address(es) with optional /M)
"""
import argparse, gzip, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT.parent / "shared" / "routeros-schema"
if not SCHEMA_DIR.exists():
    SCHEMA_DIR = Path("/work/shared/routeros-schema")
OUT = ROOT / "crates" / "emulator" / "src" / "schema.txt"
TREE_FILES = ("routeros-7.20.8-extra-inspect.json.gz", "routeros-7.20-extra-inspect.json.gz")
ARM_DIFF = "routeros-7.20.8-diff-x86-arm64.json.gz"
ENUM_FILE, ENUM_DIFF = "routeros-7.21.4-deep-inspect.json.gz", "routeros-7.21.4-diff-x86-arm64.json.gz"

# The menus the emulator serves. Extend here and re-run; nothing else in the table is hand-written.
MENUS = """
/ /ip/route /ip/address /ip/pool /ip/dhcp-server /ip/dhcp-server/network /ip/dhcp-server/lease /ip/dhcp-client
/ip/dns /ip/dns/static /ip/firewall/filter /ip/firewall/nat /ip/firewall/mangle /ip/firewall/raw
/ip/firewall/address-list /ip/firewall/connection /ip/firewall/connection/tracking /ip/service /ip/settings
/ip/cloud /ip/neighbor/discovery-settings
/ipv6/settings /ipv6/address /ipv6/firewall/filter /ipv6/firewall/address-list /ipv6/firewall/raw
/interface /interface/bridge /interface/bridge/port /interface/list /interface/list/member /interface/veth
/interface/pppoe-client /interface/ethernet /interface/vlan
/routing/table /routing/rule
/system/identity /system/clock /system/ntp/client /system/ntp/client/servers /system/resource /system/script
/system/script/environment /system/scheduler /system/logging /system/logging/action /system/note
/system/package
/tool/netwatch /tool/mac-server /tool/mac-server/mac-winbox /tool/bandwidth-server
/user /user/group /certificate /container /container/envs /container/mounts /container/config
/file /log
""".split()

# Completion values that are names of objects a CHR happens to have: the arg refers to objects, not an enum.
OBJECT_WORDS = {"ether1", "lo", "main", "default", "default-encryption", "admin", "public", "guest", "pub", "serial0",
                "default-trial", "bridge", "static-only", "clientid", "hostname", "request-only"}
OPEN_ARG = re.compile(r"[/-](chain|jump-target|mark|interfaces?|list|table|profile|queue|copy-from|name|comment|parent|"
                      r"pool|bridge|vrf|certificate|group|server|user|target|numbers|value-name|from)$"
                      r"|/(incoming|outgoing)-filter$|/ipsec-policy$|^/system/logging/.*/action$")
PKG_VALUES = {"/user/group/add/policy": {"dude"}, "/user/group/set/policy": {"dude"}}
DESC_ENUM = re.compile(r"^([\w.+/-]+(?:\|[\w.+/-]+)+)(?:\[,\w+\*\])?$")
COMMON_PROPS = {".id", "dynamic", "disabled", "invalid", "inactive", "active", "running", "default", "builtin",
                "static", "comment", "name"}
MENU, CMD, ARG = ("dir", "path"), "cmd", "arg"


def kids(node):
    return {k: v for k, v in node.items() if not k.startswith("_") and isinstance(v, dict)}


def walk(node, prefix=""):
    for name, sub in kids(node).items():
        yield prefix + "/" + name, sub
        if sub.get("_type") != ARG:
            yield from walk(sub, prefix + "/" + name)


def load(path):
    return json.loads(gzip.decompress(path.read_bytes()))


def merge_tree(dst, src):
    for name, sub in kids(src).items():
        if name not in dst:
            dst[name] = sub
        elif sub.get("_type") != ARG:
            merge_tree(dst[name], sub)


def merge_paths(tree, paths):
    """Add slash paths (the arm64-only list); dir/cmd/arg is inferred from the shape of the paths."""
    trie = {}
    for p in paths:
        t = trie
        for part in p.strip("/").split("/"):
            t = t.setdefault(part, {})

    def add(node, t):
        for name, sub in t.items():
            if name in node:
                if node[name].get("_type") != ARG:
                    add(node[name], sub)
            elif node.get("_type") == CMD:
                node[name] = {"_type": ARG}
            elif node.get("_type") != ARG:
                leafy = all(not g or set(g) == {"desc"} for g in sub.values())
                node[name] = {"_type": CMD if leafy else "dir"}
                add(node[name], sub)
    add(tree, trie)


def build(d):
    tree = load(d / TREE_FILES[0])
    for f in TREE_FILES[1:]:
        merge_tree(tree, load(d / f))
    merge_paths(tree, load(d / ARM_DIFF).get("onlyInB", []))
    enums, typed, props, types = {}, set(), {}, {}
    for path, node in walk(tree):
        if node.get("_type") == ARG and node.get("desc"):
            desc = node["desc"].strip()
            m = DESC_ENUM.match(desc)
            if m:
                enums[path] = set(m.group(1).split("|"))
            else:
                typed.add(path)
                if desc.endswith("time interval") or desc.endswith("(time interval)"):
                    types[path] = "time"
                elif desc in ("A.B.C.D    (IP address)", "A.B.C.D/M    (IP prefix)"):
                    types[path] = "ip4"
    dynamic = set()
    for f in (ARM_DIFF, ENUM_DIFF):
        dynamic |= {x["path"] for x in load(d / f).get("completionDrift", [])}
    for path, node in walk(load(d / ENUM_FILE)):
        comp = node.get("_completion") or {}
        if node.get("_type") != ARG or not comp:
            continue
        if path.endswith("/print/group-by"):
            props[path[:-len("/print/group-by")]] = set(comp)
        vals = {v for v, info in comp.items() if info.get("style") != "syntax-meta"}
        styles = {info.get("style") for v, info in comp.items() if v in vals}
        if (len(vals) < 2 or not styles <= {"none", "arg"} or vals & OBJECT_WORDS or path in dynamic
                or path in typed or OPEN_ARG.search(path) or {"all", "dynamic", "static"} <= vals
                or any(v[:1].isdigit() for v in vals)):
            continue
        enums.setdefault(path, vals | PKG_VALUES.get(path, set()))
    return tree, enums, props, types


def render(d):
    tree, enums, props, types = build(d)
    out = ["# RouterOS 7.20 command table for the emulator. GENERATED by tools/gen-schema-table.py from restraml's",
           "# /console/inspect dumps (7.20.8 + 7.20 x86 with extra packages, arm64-only paths, 7.21.4 enum values).",
           "# Do not edit; change MENUS in the script and re-run it."]
    for menu in MENUS:
        node = tree
        for part in [p for p in menu.split("/") if p]:
            node = kids(node).get(part)
            if node is None or node.get("_type") not in MENU:
                sys.exit(f"gen-schema-table: {menu} is not a menu in the 7.20 tree")
        cmds = {k: v for k, v in kids(node).items() if v.get("_type") == CMD}
        if menu == "/":
            cmds = {k: v for k, v in cmds.items() if k in ("execute", "import", "ping")}
        key = "" if menu == "/" else menu
        names = set(props.get(key, set())) | COMMON_PROPS
        for c in ("add", "set"):
            names |= {a for a in kids(cmds.get(c, {})) if a != "numbers"}
        out.append(f"menu {menu}")
        if menu != "/":
            out.append("props " + " ".join([".id"] + sorted(names - {".id"})))
        for cname in sorted(cmds):
            args = []
            for aname in sorted(kids(cmds[cname])):
                vals = enums.get(f"{key}/{cname}/{aname}")
                kind = types.get(f"{key}/{cname}/{aname}")
                args.append(aname + ("=" + "|".join(sorted(vals)) if vals else f":{kind}" if kind else ""))
            out.append(" ".join(["cmd", cname] + args))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--schema-dir", type=Path, default=SCHEMA_DIR)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="fail when the committed table differs")
    a = ap.parse_args()
    try:
        text = render(a.schema_dir)
    except OSError as e:
        print(f"gen-schema-table: cannot read the schema in {a.schema_dir}: {e}", file=sys.stderr)
        return 2
    if a.check:
        old = a.out.read_text() if a.out.exists() else ""
        if old != text:
            print(f"gen-schema-table: {a.out} is stale; run tools/gen-schema-table.py", file=sys.stderr)
            return 1
        print(f"gen-schema-table: {a.out} is up to date")
        return 0
    a.out.write_text(text)
    print(f"gen-schema-table: wrote {a.out} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
