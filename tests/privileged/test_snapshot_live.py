#!/usr/bin/env python3
"""`dpinspect snapshot --netns` writes the sectioned format (docs/snapshot.md) from a live namespace,
and the snapshot answers as the live namespace does (root; exits 77 = skipped otherwise).

A private namespace gets a small nftables ruleset and a veth with an address; then:
  - the snapshot's schema is dpinspect.snapshot/v2, its source names the namespace, its nftables
    section holds ruleset, xt, ipsets and node (the namespace's interface), and nothing of the
    nftables backend is left at the top level; no ebpf section (no Calico maps there);
  - inspect --ruleset SNAPSHOT gives the verdict and deciding rule that inspect --netns gives, for an
    allowed and a dropped flow.
The namespace is deleted afterwards; the root namespace is not touched.

    test_snapshot_live.py --dpinspect build/cli/dpinspect
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

RULESET = """
table inet dpi_snap {
  chain forward {
    type filter hook forward priority 0; policy drop;
    tcp dport 80 accept comment "web"
  }
}
"""
FLOW = ["--iif", "dpisnap0", "--oif", "dpisnap0", "--src", "10.99.0.2", "--dst", "10.99.0.3",
        "--proto", "tcp"]


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dpinspect", required=True)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces, nftables)")
        return 77
    ns = f"dpi-snap-{os.getpid()}"
    failed = 0

    def check(name, ok, detail=""):
        nonlocal failed
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))
        failed += 0 if ok else 1

    sh("ip", "netns", "add", ns)
    try:
        ex = ["ip", "netns", "exec", ns]
        sh(*ex, "ip", "link", "set", "lo", "up")
        sh(*ex, "ip", "link", "add", "dpisnap0", "type", "veth", "peer", "name", "dpisnap1")
        sh(*ex, "ip", "addr", "add", "10.99.0.1/24", "dev", "dpisnap0")
        sh(*ex, "ip", "link", "set", "dpisnap0", "up")
        sh(*ex, "ip", "link", "set", "dpisnap1", "up")
        sh(*ex, "nft", "-f", "-", input=RULESET)
        with tempfile.TemporaryDirectory() as tmp:
            snap = os.path.join(tmp, "node.snapshot.json")
            p = subprocess.run([a.dpinspect, "snapshot", "--netns", ns, "-o", snap], capture_output=True,
                               text=True, timeout=60)
            check("snapshot exits 0", p.returncode == 0 and p.stderr == "", f"{p.returncode} {p.stderr!r}")
            if p.returncode != 0:
                return 1
            doc = json.load(open(snap))
            check("schema v2", doc.get("schema") == "dpinspect.snapshot/v2", doc.get("schema"))
            check("source names the namespace", doc.get("source") == f"live netns {ns}", doc.get("source"))
            sec = doc.get("nftables", {})
            check("nftables section: ruleset, xt, ipsets, node",
                  all(k in sec for k in ("ruleset", "xt", "ipsets", "node")), sorted(sec))
            check("nothing of nftables at the top level",
                  not any(k in doc for k in ("ruleset", "xt", "ipsets", "node")), sorted(doc))
            check("no ebpf section without Calico's maps", "ebpf" not in doc, sorted(doc))
            names = [i.get("name") for i in sec.get("node", {}).get("interfaces", [])]
            check("the node is the namespace's", "dpisnap0" in names, names)
            tables = [o["table"]["name"] for o in sec.get("ruleset", {}).get("nftables", []) if "table" in o]
            check("the ruleset is the namespace's", tables == ["dpi_snap"], tables)
            # What `-o FILE` says it wrote is what the file holds.
            items = sec.get("ruleset", {}).get("nftables", [])
            count = {k: sum(k in o for o in items) for k in ("table", "chain", "rule", "set")}
            said = (f"wrote {snap} ({os.path.getsize(snap)} bytes, dpinspect.snapshot/v2, live netns {ns})\n"
                    f"  ebpf:      no section (no ebpf dataplane found)\n"
                    f"  nftables:  {count['table']} tables, {count['chain']} chains, {count['rule']} rules, "
                    f"{count['set']} sets; {len(sec['xt'])} rules with iptables-nft (xt) expressions, "
                    f"{len(sec['ipsets'])} ipsets; {len(sec['node']['interfaces'])} interfaces, "
                    f"{len(sec['node']['routes'])} routes\n")
            check("-o FILE: stdout says the file, its size and each section's counts", p.stdout == said,
                  f"{p.stdout!r}, want {said!r}")
            for dport, want in (("80", 0), ("22", 1)):
                runs = {}
                for where in (["--netns", ns], ["--ruleset", snap]):
                    p = subprocess.run([a.dpinspect, "inspect", *where, *FLOW, "--dport", dport, "-o", "json"],
                                       capture_output=True, text=True, timeout=60)
                    rep = json.loads(p.stdout) if p.stdout else {}
                    runs[where[0]] = (p.returncode, rep.get("verdict"), json.dumps(rep.get("decided_by", {}).get("rule")))
                check(f"dport {dport}: snapshot answers as live (exit {want})",
                      runs["--netns"] == runs["--ruleset"] and runs["--netns"][0] == want, runs)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    print(f"{'FAILED' if failed else 'passed'}: {failed} failure(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
