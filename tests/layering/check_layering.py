#!/usr/bin/env python3
"""The dependency rule, checked on the sources: cli -> backends -> core, never back.

- core/ includes no backend, no CLI, and no kernel or C dataplane library header (linux/*,
  libmnl, libnftnl, libnftables, libbpf, libipset, netlink sockets): it must build anywhere.
- backends/ include nothing from cli/; backends/linux/ (plumbing every backend uses) includes no
  backend.
- cli/ includes no backend header except through the registry (core/dataplane_registry.h): it
  names no backend.

    check_layering.py [--top DIR]      exit 0 clean, 1 with one line per offending include
"""
import argparse
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)

KERNEL = re.compile(r"^(linux/|libmnl/|libnftnl/|nftables/|bpf/|libipset/|netlink/|"
                    r"sys/socket\.h$|net/if\.h$|sys/mount\.h$|sched\.h$)")

# (folder, rule name, predicate on the included path)
RULES = [
    ("core", "core includes a backend header", lambda p: p.startswith("backends/")),
    ("core", "core includes a CLI header", lambda p: p.startswith("cli/") or p.startswith("CLI/")),
    ("core", "core includes a kernel or dataplane library header", lambda p: KERNEL.match(p)),
    ("core", "core includes the BPF programs", lambda p: p.startswith("bpf/")),
    ("backends", "a backend includes a CLI header", lambda p: p.startswith("cli/")),
    ("backends/linux", "the shared Linux plumbing includes a backend",
     lambda p: p.startswith("backends/") and not p.startswith("backends/linux/")),
    ("cli", "the CLI names a backend", lambda p: p.startswith("backends/")),
]


def sources(top, folder):
    for root, _, files in os.walk(os.path.join(top, folder)):
        for f in sorted(files):
            if f.endswith((".h", ".hpp", ".cpp", ".cc", ".c")):
                yield os.path.join(root, f)


def check(top):
    bad = []
    for folder, name, hits in RULES:
        for path in sources(top, folder):
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for m in INCLUDE.finditer(text):
                if hits(m.group(2)):
                    line = text.count("\n", 0, m.start()) + 1
                    bad.append(f"{os.path.relpath(path, top)}:{line}: {name}: {m.group(2)}")
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", default=os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    a = ap.parse_args()
    bad = check(a.top)
    for b in bad:
        print(b)
    if bad:
        print(f"layering: {len(bad)} include(s) against cli -> backends -> core (docs/design.md)")
        return 1
    print("layering: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
