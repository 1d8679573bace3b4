#!/usr/bin/env python3
"""`ticket list` prints its rows as it reads them (issue 23) and keeps its output as it was.

`--json` is written in chunks of rows; the document must still be the one JSON array the encoder
makes of the whole list, byte for byte: checked against the same data rendered in the encoder's
layout (sorted keys, `key : value`, two-space indent, an empty array as `[`, a blank line, `]`) for
lists that end before, at and past a chunk's end. A table is read twice (to size
its columns, then to print): every row must fit the widths its header line gives.

    python3 Tests/CLI/ticket-list.py [PATH/TO/tierline]

Runs only the CLI on a temporary store; no network.
"""
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, require, tl  # noqa: E402


def encoder_layout(value):
    """VALUE as the CLI's JSON encoder lays it out."""
    text = json.dumps(value, indent=2, sort_keys=True, separators=(",", " : "), ensure_ascii=False)
    # The encoder writes an empty array as `[`, an empty line, and `]` at the array's indent.
    return re.sub(r"^( *)(.*)\[\]", lambda m: f"{m.group(1)}{m.group(2)}[\n\n{m.group(1)}]", text, flags=re.M) + "\n"


def main():
    harness.find_binary()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as work:
        harness.private_copy(work)
        store = os.path.join(work, "north")
        require("init", tl("init", "--site", "north", "--store", store).returncode == 0)
        count = 260  # past the first chunk of 256 rows
        made = 0
        for n in range(count):
            args = ["ticket", "create", "--store", store, "--subject", f"Printer {n} on floor {n % 7}"]
            if n % 3 == 0:
                args += ["--tag", "printer", "--assignee", "agent-with-a-long-name" * (n % 2 + 1)]
            made += tl(*args).returncode == 0
        require(f"{count} tickets created", made == count, f"{made} created")

        for limit in ["1", "255", "256", "257", "1000000"]:
            p = tl("ticket", "list", "--store", store, "--json", "--limit", limit)
            rows = json.loads(p.stdout) if p.returncode == 0 else None
            check(f"--json --limit {limit}: every row, in the encoder's bytes",
                  rows is not None and len(rows) == min(int(limit), count) and p.stdout == encoder_layout(rows),
                  p.stderr or p.stdout[:600])
        p = tl("ticket", "list", "--store", store, "--json", "--status", "merged")
        check("--json with no match: an empty array", p.returncode == 0 and p.stdout == "[\n\n]\n", repr(p.stdout))
        p = tl("ticket", "list", "--store", store, "--status", "merged")
        check("a table with no match says so", p.returncode == 0 and p.stdout == "no tickets\n", repr(p.stdout))

        p = tl("ticket", "list", "--store", store, "--limit", "1000000")
        lines = p.stdout.splitlines()
        # The last column starts where its header's dashes start, on every row: the widths were
        # measured over all rows before the first was printed.
        last = lines[1].rfind(" -") + 1 if len(lines) > 1 else 0
        rows = [line for line in lines[2:] if line[:1].strip()]
        check("table: every row, in columns sized by all of them",
              p.returncode == 0 and len(rows) == count and last > 0 and all(line[last:].startswith("Printer ") for line in rows),
              p.stderr or "\n".join(lines[:5]))
    harness.summary("ticket-list", started)
    sys.exit(1 if harness.failed else 0)


if __name__ == "__main__":
    main()
