#!/usr/bin/env python3
"""pub-unused: lists `pub` items of the uplinkd library (src/) whose name no other file names.

An item is a top-level or impl-level `pub fn|struct|enum|const|static|type|trait`. "Used" means its
name appears as a word in any other .rs file of src/, tests/, examples/ or crates/ (a coarse test:
a name used elsewhere for something else counts as used, so the list is a lower bound). Prints one
line per item and the count. Issue 15 wanted this number shown before and after.
"""
import pathlib, re, sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
files = [p for d in ("src", "tests", "examples", "crates") for p in (root / d).rglob("*.rs")]
text = {p: p.read_text() for p in files}
item = re.compile(r"^\s*pub\s+(?:async\s+)?(?:unsafe\s+)?(fn|struct|enum|const|static|type|trait)\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)
unused = []
for p in sorted(files):
    if not str(p.relative_to(root)).startswith("src/"):
        continue
    for m in item.finditer(text[p]):
        name = m.group(2)
        word = re.compile(r"\b" + re.escape(name) + r"\b")
        if not any(word.search(t) for q, t in text.items() if q != p):
            line = text[p].count("\n", 0, m.start()) + 1
            unused.append(f"{p.relative_to(root)}:{line} {m.group(1)} {name}")
print("\n".join(unused))
print(f"total: {len(unused)} pub items that no other file names")
