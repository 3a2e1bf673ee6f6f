#!/usr/bin/env python3
"""meta random against the kernel: kube-proxy's iptables-mode service as iptables-translate writes
it (tests/fixtures/nft/meta-random.nft, three endpoints picked with `meta random` rules).

The fixture is loaded into a private namespace whose own addresses are the endpoints; the node
opens connections to the ClusterIP from distinct source ports, and the accepted socket's local
address is the endpoint the kernel's nat OUTPUT chain picked. Every picked endpoint must be one of
`dpinspect inspect --netns`'s outcomes (by its dnat), with an allow verdict, and every outcome's
endpoint must have been picked by some connection (40 connections: each endpoint has a chance of at
least 1/3, so one going unpicked by luck has odds below 1e-6).

    test_meta_random_live.py --dpinspect build/cli/dpinspect      (root; exit 77 = skipped)
"""
import argparse
import json
import os
import subprocess
import sys

SKIP = 77
NS = f"dpi-mr-{os.getpid()}"
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "fixtures", "nft", "meta-random.nft")
SERVICE, PORT, CONNECTIONS = "10.96.0.30", 80, 40

# Runs inside the namespace: one listener on every address, one connection per source port.
PROBE = f"""
import json, socket
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 8080))
srv.listen(64)
picked = []
for sport in range(41000, 41000 + {CONNECTIONS}):
    c = socket.socket()
    c.settimeout(2)
    c.bind(("172.18.0.2", sport))
    c.connect(("{SERVICE}", {PORT}))
    a, _ = srv.accept()
    picked.append("%s:%d" % a.getsockname()[:2])
    a.close()
    c.close()
print(json.dumps(picked))
"""


def sh(*args, ns=None, check=True, stdin=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, input=stdin)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dpinspect", required=True)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("skipped: needs root (network namespaces)")
        return SKIP
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "link", "set", "lo", "up", ns=NS)
        # A veth pair inside the namespace (the dummy driver may be missing).
        sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p", ns=NS)
        sh("ip", "link", "set", "eth0p", "up", ns=NS)
        sh("ip", "addr", "add", "172.18.0.2/24", "dev", "eth0", ns=NS)
        for ep in ("10.1.0.5", "10.1.0.6", "10.1.0.7"):
            sh("ip", "addr", "add", ep + "/32", "dev", "eth0", ns=NS)
        sh("ip", "link", "set", "eth0", "up", ns=NS)
        # The ClusterIP needs a route before the nat OUTPUT chain translates it.
        sh("ip", "route", "add", "default", "dev", "eth0", ns=NS)
        sh("nft", "-f", FIXTURE, ns=NS)
        picked = json.loads(sh("python3", "-c", PROBE, ns=NS).stdout)
        p = subprocess.run([a.dpinspect, "inspect", "--netns", NS, "--src", "172.18.0.2", "--dst",
                            SERVICE, "--proto", "tcp", "--dport", str(PORT), "-o", "json"],
                           capture_output=True, text=True)
        rep = json.loads(p.stdout)
    finally:
        sh("ip", "netns", "del", NS, check=False)
    outcomes = {}
    for o in rep["outcomes"]:
        tos = [n["to"] for n in o["nat"] if n["kind"] == "dnat"]
        if len(tos) == 1:
            outcomes[tos[0]] = o["verdict"]
    failures = []
    if len(outcomes) != 3 or len(rep["outcomes"]) != 3:
        failures.append(f"want three outcomes with one dnat each, got {rep['outcomes']}")
    for ep in sorted(set(picked)):
        if outcomes.get(ep) != "allow":
            failures.append(f"the kernel picked {ep} (connection accepted); dpinspect's outcomes: {outcomes}")
    for ep in outcomes:
        if ep not in picked:
            failures.append(f"outcome {ep} was never picked in {CONNECTIONS} connections")
    if p.returncode != 0 or rep["verdict"] != "allow":
        failures.append(f"verdict {rep['verdict']} (exit {p.returncode}); every connection was accepted")
    counts = {ep: picked.count(ep) for ep in sorted(set(picked))}
    print(f"kernel picks over {CONNECTIONS} connections: {counts}; dpinspect outcomes: {outcomes}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
