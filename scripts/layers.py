#!/usr/bin/env python3
"""Prints the crate's top-level modules with their lines, what each imports (crate::X paths), and
any import cycle between top-level modules. Used for issue 15's before/after; reads text only.

    python3 scripts/layers.py [SRC_DIR]
"""
import os, re, sys
from collections import defaultdict

src = sys.argv[1] if len(sys.argv) > 1 else "src"
lines = defaultdict(int)
imports = defaultdict(set)
pat = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
for root, _, files in os.walk(src):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(root, f)
        rel = os.path.relpath(path, src)
        top = rel.split(os.sep)[0].removesuffix(".rs")
        text = open(path, encoding="utf-8").read()
        # tests inside the file do not count as the module's imports
        body = text.split("#[cfg(test)]")[0]
        lines[top] += text.count("\n")
        for m in pat.findall(body):
            if m != top:
                imports[top].add(m)
mods = sorted(lines)
for m in mods:
    print(f"{m:<12} {lines[m]:>6}  -> {', '.join(sorted(i for i in imports[m] if i in lines))}")
print(f"{'total':<12} {sum(lines.values()):>6}")
# cycles: strongly connected components with more than one module
index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in imports[v]:
        if w not in lines: continue
        if w not in index: visit(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v: break
        if len(c) > 1: sccs.append(sorted(c))
sys.setrecursionlimit(10000)
for v in mods:
    if v not in index: visit(v)
print("cycles:", "; ".join(" <-> ".join(c) for c in sccs) if sccs else "none")
