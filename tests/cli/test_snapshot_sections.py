#!/usr/bin/env python3
"""Snapshots with one section per dataplane (schema dpinspect.snapshot/v2, docs/snapshot.md), no root.

tests/fixtures/snapshot/seed-both.v2.snapshot.json holds the seed scenario's nftables node in its
`nftables` section and its eBPF node in its `ebpf` section. Each backend must read its own section
exactly as it reads the same content in the old formats (plain `nft -j` output with --node, and the
version 1 eBPF snapshot), --dataplane auto must find both (the eBPF layer answers first), and a
snapshot without a backend's section, or with a schema this dpinspect does not know, is refused
with one line naming the file.

    test_snapshot_sections.py --dpinspect build/cli/dpinspect
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
BOTH = "tests/fixtures/snapshot/seed-both.v2.snapshot.json"
EBPF_V1 = "tests/fixtures/ebpf/seed-v3.32.snapshot.json"
NFT_OLD = ["--ruleset", "examples/seed/nftables.json", "--node", "examples/seed/node.json"]
FLOWS = {
    "denied": ["--src", "10.65.0.2", "--dst", "10.65.0.5", "--proto", "tcp", "--dport", "9001"],
    "allowed": ["--src", "10.65.0.2", "--dst", "10.65.0.3", "--proto", "tcp", "--dport", "80"],
    "by pod name": ["--src", "client/client", "--dst", "management-ui/management-ui", "--proto", "tcp",
                    "--dport", "9001"],
}


def run(dpinspect, args):
    p = subprocess.run([dpinspect] + args, cwd=TOP, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def without_source(text, fmt):
    """The report minus where it was read from (the one thing that differs between the files)."""
    if fmt == "json":
        doc = json.loads(text)
        doc.get("dataplane", {}).pop("source", None)
        return doc
    return [line for line in text.splitlines() if "dataplane:" not in line and "source" not in line]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dpinspect", required=True)
    a = ap.parse_args()
    failed = 0

    def check(name, ok, detail=""):
        nonlocal failed
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))
        failed += 0 if ok else 1

    # Each backend reads its own section as it reads the old files.
    for flow, args in FLOWS.items():
        for fmt in ("text", "json"):
            out = ["-o", fmt]
            for dp, old in (("nftables", NFT_OLD), ("ebpf", ["--ruleset", EBPF_V1])):
                if dp == "ebpf" and flow == "by pod name":
                    continue  # the eBPF section carries no node information to resolve pods
                want = run(a.dpinspect, ["inspect", "--dataplane", dp] + old + args + out)
                got = run(a.dpinspect, ["inspect", "--dataplane", dp, "--ruleset", BOTH] + args + out)
                same = (got[0] == want[0] and got[2] == want[2] == "" and
                        without_source(got[1], fmt) == without_source(want[1], fmt))
                check(f"{dp} section, {flow}, {fmt}: as the old format", same,
                      f"exit {got[0]} vs {want[0]}, stderr {got[2]!r}")

    # auto: both dataplanes are there; the eBPF layer (tc) meets the packet first.
    code, out, err = run(a.dpinspect, ["inspect", "--ruleset", BOTH, "-o", "json"] + FLOWS["denied"])
    check("auto: the eBPF section answers first", code == 1 and json.loads(out)["dataplane"]["kind"] == "ebpf",
          f"exit {code}, {err!r}")
    code, out, err = run(a.dpinspect, ["detect", "--ruleset", BOTH, "-o", "json"])
    det = json.loads(out) if code == 0 else {}
    check("detect: both dataplanes found", det.get("dataplanes", {}).get("ebpf") is True and
          det.get("dataplanes", {}).get("nftables") is True, f"exit {code}, {out[:300]!r} {err!r}")

    # A node's --node may be a sectioned snapshot.
    code, out, err = run(a.dpinspect, ["inspect", "--ruleset", "examples/seed/nftables.json",
                                       "--node", BOTH] + FLOWS["denied"])
    check("--node reads the nftables section's node", code == 1 and err == "", f"exit {code}, {err!r}")

    with tempfile.TemporaryDirectory() as tmp:
        doc = json.load(open(os.path.join(TOP, BOTH)))
        only_ebpf = dict(doc)
        del only_ebpf["nftables"]
        p_only = os.path.join(tmp, "only-ebpf.json")
        json.dump(only_ebpf, open(p_only, "w"))
        code, out, err = run(a.dpinspect, ["inspect", "--dataplane", "nftables", "--ruleset", p_only] +
                             FLOWS["denied"])
        check("no nftables section, --dataplane nftables: exit 3 naming file and section",
              code == 3 and out == "" and "only-ebpf.json" in err and "no nftables section" in err
              and err.count("\n") == 1, f"exit {code}, {err!r}")
        code, out, err = run(a.dpinspect, ["inspect", "--ruleset", p_only, "-o", "json"] + FLOWS["denied"])
        check("no nftables section, auto: the eBPF answer",
              code == 1 and json.loads(out)["dataplane"]["kind"] == "ebpf", f"exit {code}, {err!r}")

        future = dict(doc)
        future["schema"] = "dpinspect.snapshot/v9"
        p_future = os.path.join(tmp, "future.json")
        json.dump(future, open(p_future, "w"))
        code, out, err = run(a.dpinspect, ["inspect", "--dataplane", "nftables", "--ruleset", p_future] +
                             FLOWS["denied"])
        check("unknown schema: exit 3 naming it", code == 3 and out == "" and "dpinspect.snapshot/v9" in err
              and "future.json" in err, f"exit {code}, {err!r}")

        bad = dict(doc)
        bad["nftables"] = [1, 2]
        p_bad = os.path.join(tmp, "bad-section.json")
        json.dump(bad, open(p_bad, "w"))
        code, out, err = run(a.dpinspect, ["inspect", "--dataplane", "nftables", "--ruleset", p_bad] +
                             FLOWS["denied"])
        check("nftables section not an object: exit 3", code == 3 and out == "" and "bad-section.json" in err
              and "nftables" in err, f"exit {code}, {err!r}")

    print(f"{'FAILED' if failed else 'passed'}: {failed} failure(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
