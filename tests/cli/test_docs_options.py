#!/usr/bin/env python3
"""Docs that cannot drift: every command `dpinspect --help` lists has a page docs/CMD.md, every
long option `dpinspect CMD --help` lists appears in that page's option table, and every option in
the table exists.

The option table is the first Markdown table (under "## Options" when the page has that heading)
whose first column holds the options as `--name`.

    test_docs_options.py --dpinspect build/cli/dpinspect
"""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
REQUIRED = ["inspect", "detect", "snapshot", "trace"]


def help_text(dpinspect, *args):
    p = subprocess.run([dpinspect, *args, "--help"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        sys.exit(f"dpinspect {' '.join(args)} --help exited {p.returncode}: {p.stderr}")
    return p.stdout


def help_options(text):
    """Long options of the "Options:" section of CLI11's help: lines like
    '  -o,--output TEXT:{text,json}=text' or '  --src ADDR REQUIRED'."""
    section = text.split("\nOptions:\n", 1)[1] if "\nOptions:\n" in text else ""
    section = re.split(r"\n(?:Subcommands|Positionals):\n", section)[0]
    return set(re.findall(r"^ {2}(?:-\w,)?(--[\w][\w-]*)", section, re.M))


def subcommands(text):
    section = text.split("\nSubcommands:\n", 1)[1] if "\nSubcommands:\n" in text else ""
    return re.findall(r"^ {2}(\w[\w-]*)", section, re.M)


def doc_options(path):
    """Options in the first column of the option table: the first table under '## Options', or
    without that heading the first table of the page whose first column names `--options`."""
    text = open(path).read()
    m = re.search(r"^## Options\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    tables = re.findall(r"(?:^\|.*\n?)+", m.group(1) if m else text, re.M)
    for table in tables:
        opts = set()
        for line in table.splitlines():
            cell = re.match(r"^\|\s*([^|]*)\|", line)
            if cell:
                opts |= set(re.findall(r"`(--[\w][\w-]*)`", cell.group(1)))
        if opts:
            return opts
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dpinspect", required=True)
    a = ap.parse_args()
    commands = subcommands(help_text(a.dpinspect))
    failed = 0
    for cmd in REQUIRED + [c for c in commands if c not in REQUIRED]:
        page = os.path.join(TOP, "docs", f"{cmd}.md")
        if cmd not in commands:
            print(f"FAIL {cmd}: `dpinspect --help` does not list the command")
            failed += 1
            continue
        if not os.path.exists(page):
            print(f"FAIL {cmd}: no docs/{cmd}.md (every command has a page)")
            failed += 1
            continue
        in_help = help_options(help_text(a.dpinspect, cmd))
        in_doc = doc_options(page)
        if in_doc is None:
            print(f"FAIL {cmd}: docs/{cmd}.md has no option table (`--name` in a table's first column)")
            failed += 1
            continue
        undocumented = sorted(in_help - in_doc)
        stale = sorted(in_doc - in_help)
        if undocumented:
            print(f"FAIL {cmd}: in --help but not in the option table of docs/{cmd}.md: {' '.join(undocumented)}")
        if stale:
            print(f"FAIL {cmd}: in docs/{cmd}.md's option table but not in --help: {' '.join(stale)}")
        if undocumented or stale:
            failed += 1
        else:
            print(f"ok   {cmd}: {len(in_help)} options, help and docs/{cmd}.md agree")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
