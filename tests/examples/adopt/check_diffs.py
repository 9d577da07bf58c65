#!/usr/bin/env python3
"""Checks that a document shows the diffs of examples/adopt as they are.

Usage: check_diffs.py --doc docs/adopting.md --dir examples/adopt [--update]

Each section of the document between

    <!-- diff: BEFORE AFTER -->
    ...
    <!-- end diff -->

must be exactly what this script makes of `diff -u BEFORE AFTER` (files of
--dir): a line with the diff's size, then the diff in a ```diff block. The
section between `<!-- diff sizes -->` and `<!-- end diff sizes -->`, if
there is one, must be the table of their sizes. Fails, naming the section,
when one differs; with --update, rewrites the sections instead (run it
after changing an example or its twin).
"""

import argparse
import pathlib
import re
import subprocess
import sys

SECTION = re.compile(r"<!-- diff: (\S+) (\S+) -->\n(.*?)<!-- end diff -->\n",
                     re.S)
SIZES = re.compile(r"<!-- diff sizes -->\n(.*?)<!-- end diff sizes -->\n", re.S)


def diff_section(directory, before, after):
    """The text of a section, the size of the diff then the diff, and the
    numbers of lines added and removed."""
    result = subprocess.run(
        ["diff", "-u", "--label", before, "--label", after,
         str(directory / before), str(directory / after)],
        capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):
        sys.exit(f"diff {before} {after}: {result.stderr}")
    lines = result.stdout.splitlines()[2:]  # without the --- and +++ lines
    added = sum(1 for line in lines if line.startswith("+"))
    removed = sum(1 for line in lines if line.startswith("-"))
    return (f"`diff -u {before} {after}`: {added} lines added, "
            f"{removed} removed.\n\n```diff\n{result.stdout}```\n",
            added, removed)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--doc", required=True, type=pathlib.Path)
    parser.add_argument("--dir", required=True, type=pathlib.Path)
    parser.add_argument("--update", action="store_true")
    args = parser.parse_args()

    text = args.doc.read_text()
    stale = []
    rows = ["| file | against | lines added | lines removed |",
            "| --- | --- | ---: | ---: |"]

    def replace(m):
        before, after, shown = m.groups()
        expected, added, removed = diff_section(args.dir, before, after)
        rows.append(f"| `{after}` | `{before}` | {added} | {removed} |")
        if shown != expected:
            stale.append(f"{before} -> {after}")
        return f"<!-- diff: {before} {after} -->\n{expected}<!-- end diff -->\n"

    updated, count = SECTION.subn(replace, text)
    if count == 0:
        sys.exit(f"{args.doc}: no <!-- diff: ... --> section")

    def replace_sizes(m):
        table = "\n".join(rows) + "\n"
        if m.group(1) != table:
            stale.append("the table of sizes")
        return f"<!-- diff sizes -->\n{table}<!-- end diff sizes -->\n"

    updated = SIZES.sub(replace_sizes, updated)
    if args.update:
        if updated != text:
            args.doc.write_text(updated)
        print(f"{args.doc}: {len(stale)} sections rewritten")
        return
    if stale:
        sys.exit(f"{args.doc} does not show these diffs as they are: "
                 f"{', '.join(stale)}.\nRun: python3 {sys.argv[0]} "
                 f"--doc {args.doc} --dir {args.dir} --update")
    print(f"{args.doc}: {count} diff sections, each as it is")


if __name__ == "__main__":
    main()
