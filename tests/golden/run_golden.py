#!/usr/bin/env python3
"""Golden reports: runs each case in cases.json from the source tree and compares stdout and the
exit code with tests/golden/<name>.out. `--update` rewrites the files after a deliberate change;
review the diff before committing it."""
import argparse
import difflib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))


# Inputs that are copies of other inputs plus one member: (copy, original, member, its source).
# A copy that no longer matches its original would test a node the seed no longer is.
DERIVED = [("tests/fixtures/k8s/seed-iptables-nft.snapshot.json",
            "examples/seed/iptables-nft.snapshot.json", "k8s", "tests/fixtures/k8s/seed.json")]


def derived_drift():
    out = []
    for copy, original, member, source in DERIVED:
        doc = json.load(open(os.path.join(TOP, copy)))
        added = doc.pop(member, None)
        if doc != json.load(open(os.path.join(TOP, original))):
            out.append(f"{copy} is no longer {original} plus \"{member}\"")
        if added != json.load(open(os.path.join(TOP, source))):
            out.append(f"{copy}: its \"{member}\" is no longer {source}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dpinspect", required=True)
    ap.add_argument("--update", action="store_true")
    a = ap.parse_args()
    cases = json.load(open(os.path.join(HERE, "cases.json")))
    failed = 0
    for problem in derived_drift():
        print(f"FAIL {problem} (rebuild it from the two files)")
        failed += 1
    for c in cases:
        p = subprocess.run([a.dpinspect] + c["args"], cwd=TOP, capture_output=True, text=True)
        path = os.path.join(HERE, c["name"] + ".out")
        if a.update:
            with open(path, "w") as f:
                f.write(p.stdout)
        want = open(path).read() if os.path.exists(path) else ""
        ok = p.stdout == want and p.returncode == c["exit"]
        print(f"{'ok  ' if ok else 'FAIL'} {c['name']} (exit {p.returncode}, want {c['exit']})")
        if not ok:
            failed += 1
            sys.stdout.writelines(difflib.unified_diff(want.splitlines(True), p.stdout.splitlines(True),
                                                       "golden", "now"))
            if p.stderr:
                print("stderr:", p.stderr)
    print(f"{len(cases) + len(DERIVED) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
