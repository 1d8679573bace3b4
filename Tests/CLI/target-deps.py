#!/usr/bin/env python3
"""Every target declares exactly the modules its sources import (issue 19: no target imports one it
does not need, and none reaches a module it has not declared).

Reads the package's own description (`swift package describe --type json`) and the `import` lines of
each target's Swift files. Run from the repository root.
"""
import json
import os
import re
import subprocess
import sys

described = json.loads(subprocess.run(["swift", "package", "describe", "--type", "json"], capture_output=True,
                                      text=True, check=True, timeout=600).stdout)
IMPORT = re.compile(r"^\s*(?:@testable\s+|@_exported\s+|package\s+|public\s+|internal\s+)*import\s+(?:(?:struct|class|enum|protocol|func|var|let|typealias)\s+)?([A-Za-z_][A-Za-z0-9_]*)", re.M)
# Modules that come with the toolchain: importing them needs no declaration.
TOOLCHAIN = {"Foundation", "FoundationEssentials", "Dispatch", "Glibc", "Musl", "Synchronization", "Testing", "XCTest", "Darwin", "os"}

failed = 0
for target in described["targets"]:
    if target.get("type") == "macro":
        continue
    declared = set(target.get("target_dependencies", [])) | set(target.get("product_dependencies", []))
    path = os.path.join(described["path"], target["path"])
    imported = set()
    for root, _, files in os.walk(path):
        for name in files:
            if name.endswith(".swift"):
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    imported |= set(IMPORT.findall(f.read()))
    imported -= TOOLCHAIN
    unused = sorted(declared - imported)
    undeclared = sorted(imported - declared - {target["name"]})
    if unused or undeclared:
        failed += 1
        print(f"FAIL: {target['name']}: " + "; ".join(
            part for part in [f"declared, never imported: {', '.join(unused)}" if unused else "",
                              f"imported, not declared: {', '.join(undeclared)}" if undeclared else ""] if part))
    else:
        print(f"PASS: {target['name']} imports what it declares")
print(f"---- target-deps: {len(described['targets']) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
