#!/usr/bin/env python3
"""The library targets' public API keeps what issue 19 took out of it.

`swift package dump-symbol-graph` lists every public symbol of each module; a symbol named here must
not be among them. Only the compiler's own view counts, so a test cannot pass while the code says
otherwise. Run from the repository root after a debug build.
"""
import json
import os
import subprocess
import sys

# (module, type, member): code outside the package reaches the store through its API, not its writer.
MUST_NOT_BE_PUBLIC = [
    ("TicketStore", "TicketDatabase", "writer"),
]

out = subprocess.run(["swift", "package", "dump-symbol-graph"], capture_output=True, text=True, timeout=900)
if out.returncode != 0:
    print(out.stdout[-2000:], out.stderr[-2000:])
    sys.exit("public-api: swift package dump-symbol-graph failed")
folder = next((line.split("Files written to ", 1)[1].strip() for line in out.stdout.splitlines() if "Files written to" in line), None)
if not folder or not os.path.isdir(folder):
    sys.exit("public-api: no symbol graph folder in the output of dump-symbol-graph")

failed = 0
for module, type_name, member in MUST_NOT_BE_PUBLIC:
    path = os.path.join(folder, f"{module}.symbols.json")
    with open(path) as f:
        symbols = json.load(f)["symbols"]
    found = [s for s in symbols if s["pathComponents"] == [type_name, member]]
    known = any(s["pathComponents"][:1] == [type_name] for s in symbols)
    if not known:
        print(f"FAIL: {type_name} is not in {module}'s public symbols at all; the check would pass vacuously")
        failed += 1
    elif found:
        print(f"FAIL: {module}.{type_name}.{member} is public ({found[0]['accessLevel']})")
        failed += 1
    else:
        print(f"PASS: {module}.{type_name}.{member} is not public")
print(f"---- public-api: {len(MUST_NOT_BE_PUBLIC) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
