#!/usr/bin/env python3
"""Replaces one section of RELIABILITY.md (between <!-- NAME:begin --> and <!-- NAME:end -->)
with the text read from stdin, creating the file (with its header) when missing. The
sections keep the order fuzz, soak, faults.

Usage: md-section.py RELIABILITY.md NAME [--merge-rows] < section.md

With --merge-rows, table rows of the old section (lines starting with "| `") whose first
cell is not in the new section are kept, after the new rows: a run of some fuzz targets
updates their rows and leaves the others'.
"""
import re
import sys

ORDER = ["fuzz", "soak", "faults", "ci"]
HEADER = """# Reliability

Figures from the reliability scripts, each section written by the script that measured it
(command, date, versions in the section). Rerun with the command shown; `scripts/reliability-ci`
runs the short subset CI runs. The checks themselves are described in `reliability/src/lib.rs`
(soak and faults) and `fuzz/fuzz_targets/*.rs` (one property per target, in its header).
"""


def main():
    path, name = sys.argv[1], sys.argv[2]
    body = sys.stdin.read().strip("\n")
    try:
        text = open(path, encoding="utf-8").read()
    except FileNotFoundError:
        text = HEADER
    sections = {}
    for n in ORDER:
        m = re.search(rf"<!-- {n}:begin -->\n(.*?)<!-- {n}:end -->", text, re.S)
        if m:
            sections[n] = m.group(1).strip("\n")
    if "--merge-rows" in sys.argv[3:] and name in sections:
        first = lambda line: line.split("|")[1].strip()
        new_rows = [l for l in body.splitlines() if l.startswith("| `")]
        have = {first(l) for l in new_rows}
        kept = [l for l in sections[name].splitlines() if l.startswith("| `") and first(l) not in have]
        if kept:
            lines = body.splitlines()
            last = max(i for i, l in enumerate(lines) if l.startswith("| `"))
            body = "\n".join(lines[: last + 1] + kept + lines[last + 1 :])
    sections[name] = body
    head = text.split("<!-- ", 1)[0].rstrip("\n") if "<!-- " in text else text.rstrip("\n")
    out = [head, ""]
    for n in ORDER + [k for k in sections if k not in ORDER]:
        if n in sections:
            out += [f"<!-- {n}:begin -->", sections[n], f"<!-- {n}:end -->", ""]
    open(path, "w", encoding="utf-8").write("\n".join(out))


main()
