#!/usr/bin/env python3
"""Docs that cannot drift: every command `dpinspect --help` lists has a page docs/CMD.md, every
long option `dpinspect CMD --help` lists appears in that page's option table, and every option in
the table exists.

The option table is the first Markdown table (under "## Options" when the page has that heading)
whose first column holds the options as `--name`.

`detect` as documented: every example of docs/detect.md that reads a file of this repository
(`$ dpinspect detect --ruleset FILE ...`) prints exactly the output shown; every version clue
`detect` prints (on the files below) is a row of the page's "Version clues" table, whose hint is
the one printed (the highest of the clues seen); every row is seen; and the hints
docs/report-schema.md lists for `calico_version_hint` are those of the table.

    test_docs_options.py --dpinspect build/cli/dpinspect
"""
import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
REQUIRED = ["inspect", "detect", "snapshot", "trace", "watch"]


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


# Rulesets that between them show every version clue of `detect`.
CLUE_FILES = ["examples/seed/nftables.json", "examples/seed/iptables-nft.json",
              "examples/seed/platform-iptables-nft.snapshot.json", "tests/fixtures/nft/mark-mask.json",
              "tests/fixtures/nft/exprs.json", "tests/fixtures/nft/detect-v3.32.json"]


def version_key(hint):
    return tuple(int(x) for x in re.findall(r"\d+", hint))


def clue_rows(text):
    """(regex, hint) of each row of the "Version clues" table: the first column is the clue as
    printed, in backticks, with … where the text varies."""
    m = re.search(r"^Version clues.*?\n\n((?:\|[^\n]*\n)+)", text, re.M | re.S)
    rows = []
    for line in (m.group(1).splitlines()[2:] if m else []):
        cells = [c.strip() for c in line.strip("|").split("|")]
        clue = re.match(r"`(.*)`$", cells[0])
        if clue and len(cells) > 1:
            rows.append((re.compile("^" + ".*".join(map(re.escape, clue.group(1).split("…"))) + "$"),
                         cells[1].strip("`")))
    return rows


def run_json(dpinspect, args):
    p = subprocess.run([dpinspect, *args], cwd=TOP, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def check_detect_docs(dpinspect):
    """Problems of docs/detect.md and the version hints of docs/report-schema.md."""
    problems = []
    page = open(os.path.join(TOP, "docs", "detect.md")).read()
    # The examples: a command line, then its output up to the next command or the block's end.
    examples = 0
    for block in re.findall(r"^```\w*\n(.*?)^```", page, re.M | re.S):
        parts = re.split(r"^\$ (dpinspect detect [^\n]*)\n", block, flags=re.M)
        for cmd, shown in zip(parts[1::2], parts[2::2]):
            args = cmd.split()[1:]
            files = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--ruleset"]
            if "#" in cmd or not files or not all(os.path.exists(os.path.join(TOP, f)) for f in files):
                continue  # live reads (root, a node) are shown, not run
            examples += 1
            code, out, err = run_json(dpinspect, args)
            shown = shown.rstrip("\n") + "\n"
            if "-o" in args and "json" in args:
                try:
                    same = json.loads(out) == json.loads(shown)
                except ValueError as e:
                    same = False
                    problems.append(f"docs/detect.md `{cmd}`: not JSON ({e})")
            else:
                same = out == shown
            if code != 0 or not same:
                problems.append(f"docs/detect.md `{cmd}` shows other output than dpinspect prints "
                                f"(exit {code}):\n--- shown\n{shown}--- printed\n{out}{err}")
    if examples < 3:
        problems.append(f"docs/detect.md: only {examples} examples read a file of the repository")
    # The version clues and hints.
    rows = clue_rows(page)
    if len(rows) < 3:
        problems.append("docs/detect.md: cannot read the \"Version clues\" table (`clue` | hint)")
    seen = set()
    for f in CLUE_FILES:
        code, out, err = run_json(dpinspect, ["detect", "--ruleset", f, "-o", "json"])
        if code != 0:
            problems.append(f"detect --ruleset {f} exited {code}: {err.strip()}")
            continue
        d = json.loads(out)
        hints = []
        for clue in d["clues"]:
            if not re.search(r"\bv3\.\d+", clue):
                continue
            match = [i for i, (rx, _) in enumerate(rows) if rx.match(clue)]
            if not match:
                problems.append(f"{f}: clue {clue!r} is not in docs/detect.md's version clue table")
            for i in match:
                seen.add(i)
                hints.append(rows[i][1])
        want = max(hints, key=version_key) if hints else None
        if d["calico_version_hint"] != want:
            problems.append(f"{f}: detect prints hint {d['calico_version_hint']!r}, docs/detect.md's "
                            f"table gives {want!r} for its clues")
    for i, (rx, hint) in enumerate(rows):
        if i not in seen:
            problems.append(f"docs/detect.md: no file of CLUE_FILES shows the clue /{rx.pattern}/ ({hint})")
    schema = open(os.path.join(TOP, "docs", "report-schema.md")).read()
    m = re.search(r"^\| `calico_version_hint` \|[^\n]*", schema, re.M)
    listed = set(re.findall(r'"(v3\.\d+\+)"', m.group(0))) if m else set()
    if listed != {hint for _, hint in rows}:
        problems.append(f"docs/report-schema.md lists hints {sorted(listed)} for calico_version_hint, "
                        f"docs/detect.md {sorted({h for _, h in rows})}")
    return problems


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
    problems = check_detect_docs(a.dpinspect)
    for p in problems:
        print(f"FAIL detect: {p}")
    if not problems:
        print("ok   detect: docs/detect.md's examples, version clues and hints as printed")
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
