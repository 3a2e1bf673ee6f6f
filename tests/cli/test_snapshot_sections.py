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
    # Both layers judge the flow (docs/inspect.md, "Both layers"). Both deny the seed's denied flow;
    # the eBPF denial is at the client's tc ingress hook, before netfilter's: it decides.
    layers = {la["dataplane"]: la for la in (json.loads(out).get("layers", []) if code == 1 else [])}
    ebpf, nft = layers.get("ebpf", {}), layers.get("nftables", {})
    check("auto, denied: both layers deny, the first in packet order (eBPF) decides",
          ebpf.get("verdict") == "deny" and ebpf.get("decided") is True and nft.get("verdict") == "deny"
          and nft.get("applies") is True and nft.get("decided") is False, f"{layers!r}")
    code, out, err = run(a.dpinspect, ["inspect", "--ruleset", BOTH, "-o", "json"] + FLOWS["allowed"])
    layers = {la["dataplane"]: la for la in (json.loads(out).get("layers", []) if code == 0 else [])}
    check("auto, allowed: both layers allow, both decided",
          all(layers.get(dp, {}).get("verdict") == "allow" and layers.get(dp, {}).get("decided") is True
              for dp in ("ebpf", "nftables")), f"exit {code}, {layers!r} {err!r}")
    code, out, err = run(a.dpinspect, ["inspect", "--ruleset", BOTH] + FLOWS["allowed"])
    check("auto, text: one line per layer", code == 0 and "  layers (packet order):\n    ebpf (tc)" in out
          and "\n    nftables (netfilter)" in out, f"exit {code}, {out!r}")
    # A flow touching no workload: outside the eBPF layer; netfilter's answer is the report's.
    host = ["--src", "172.18.0.9", "--dst", "8.8.8.8", "--proto", "udp", "--dport", "53"]
    code, out, err = run(a.dpinspect, ["inspect", "--ruleset", BOTH, "-o", "json"] + host)
    want_code, want_out, _ = run(a.dpinspect, ["inspect", "--dataplane", "nftables", "--ruleset", BOTH, "-o",
                                               "json"] + host)
    rep = json.loads(out) if out else {}
    layers = {la["dataplane"]: la for la in rep.get("layers", [])}
    check("auto, no local workload: eBPF does not apply, the nftables answer is the report's",
          code == want_code and layers.get("ebpf", {}).get("applies") is False
          and layers.get("nftables", {}).get("decided") is True and rep.get("dataplane", {}).get("kind") == "nftables"
          and rep.get("verdict") == json.loads(want_out).get("verdict"), f"exit {code}/{want_code}, {layers!r} {err!r}")
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
