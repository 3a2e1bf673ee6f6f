#!/usr/bin/env python3
"""Calico's own rule dumps (../shared/fixtures/calico) load into a private namespace the way they
were captured, and dpinspect reads and evaluates them live without errors: `detect` names the
layout, and a spread of flows gets a verdict (or indeterminate with a reason), never a failure."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netnslib import SKIP, Netns, root_args, sh  # noqa: E402

# (dump, loader, expected detect kind)
DUMPS = [
    ("cali-nftables-dump.txt", "nft", "nftables"),
    ("cali-iptables-dump.txt", "iptables", "iptables-nft"),
    ("iptables-dump.txt", "iptables", "iptables-nft"),
    ("foreign-nft-dump.txt", "nft-on-iptables", "none"),
]

EMPTY_TABLES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
"""

FLOWS = [
    ("10.0.0.1", "10.0.0.2", "tcp", "80", "eth0", "eth1"),
    ("192.168.1.5", "10.0.0.2", "udp", "53", "cali1234567890a", "eth0"),
    ("10.0.0.9", "192.168.1.5", "tcp", "9099", "eth0", "cali1234567890a"),
    ("192.168.1.5", "192.168.1.6", "icmp", None, "cali1234567890a", "calib234567890a"),
]


def main():
    a = root_args(__doc__)
    if a is None:
        return SKIP
    passed = failed = 0
    for dump, loader, kind in DUMPS:
        with Netns("cf") as n:
            ns = n.ns
            text = open(os.path.join(a.fixtures, dump)).read()
            if loader == "nft":
                sh("nft", "-f", "-", ns=ns, stdin=text)
            elif loader == "iptables":
                sh("iptables-nft-restore", ns=ns, stdin=text)
            else:
                # The dump leaves out the base chains iptables had already created.
                sh("iptables-nft-restore", ns=ns, stdin=EMPTY_TABLES)
                sh("nft", "-f", "-", ns=ns, stdin=text)
            d = subprocess.run([a.dpinspect, "detect", "--netns", ns, "-o", "json"], capture_output=True, text=True)
            det = json.loads(d.stdout) if d.returncode == 0 else {}
            ok = d.returncode == 0 and det.get("kind") == kind and det["counts"]["rules"] > 0
            print(f"{'ok  ' if ok else 'FAIL'} {dump}: detect {det.get('kind')} ({det.get('counts')}) {d.stderr.strip()}")
            passed += ok
            failed += not ok
            for src, dst, proto, dport, iif, oif in FLOWS:
                args = [a.dpinspect, "inspect", "--netns", ns, "--src", src, "--dst", dst, "--proto", proto,
                        "--iif", iif, "--oif", oif, "-o", "json"]
                if dport:
                    args += ["--dport", dport]
                p = subprocess.run(args, capture_output=True, text=True)
                rep = json.loads(p.stdout) if p.returncode <= 2 and p.stdout else {}
                ok = p.returncode <= 2 and rep.get("schema") == "dpinspect.report/v1"
                if ok and rep["verdict"] == "indeterminate":
                    ok = bool((rep.get("indeterminate_reason") or {}).get("why"))
                print(f"{'ok  ' if ok else 'FAIL'}   {proto} {src} -> {dst}:{dport}: {rep.get('verdict')} "
                      f"{(rep.get('decided_by') or {}).get('summary', '')} {p.stderr.strip()}")
                passed += ok
                failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
