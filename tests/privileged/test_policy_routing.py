#!/usr/bin/env python3
"""Policy routing (ip rules) against the kernel.

A node namespace forwards from a client namespace to two uplinks: the main table routes out of e0,
table 100 out of e1. ip rules send marked packets (a prerouting rule marks tcp dport 443), one
client source address and udp to table 100, and a destination prefix to a blackhole. The forward
chain counts and accepts or drops by output interface. For each flow one real packet is sent from
the client; the rule whose counter moved is the kernel's answer, and `dpinspect inspect --netns`
must name the same rule and verdict (for the blackhole: deny with no forward rule reached). A rule
dpinspect cannot model (l3mdev) must make an affected flow indeterminate, not guessed.

    test_policy_routing.py --dpinspect build/cli/dpinspect      (root; exit 77 = skipped)
"""
import argparse
import json
import os
import subprocess
import sys
import time

SKIP = 77
PID = os.getpid()
NODE, CLIENT, UP0, UP1 = (f"dpi-pr{n}-{PID}" for n in ("n", "c", "u0", "u1"))

RULESET = """
table ip t {
	chain mangle_pre {
		type filter hook prerouting priority -150; policy accept;
		tcp dport 443 meta mark set 0x1 counter comment "mark-443"
	}
	chain filter_fwd {
		type filter hook forward priority 0; policy accept;
		oifname "e1" tcp dport 443 counter drop comment "via-e1-443"
		oifname "e1" counter drop comment "via-e1"
		oifname "e0" counter accept comment "via-e0"
	}
}
"""


def sh(*args, ns=None, check=True, stdin=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, check=check, input=stdin)


def veth(a_ns, a, a_addr, b_ns, b, b_addr):
    sh("ip", "link", "add", a, "netns", a_ns, "type", "veth", "peer", "name", b, "netns", b_ns)
    for ns, dev, addr in ((a_ns, a, a_addr), (b_ns, b, b_addr)):
        sh("ip", "addr", "add", addr, "dev", dev, ns=ns)
        sh("ip", "link", "set", dev, "up", ns=ns)


def build():
    for ns in (NODE, CLIENT, UP0, UP1):
        sh("ip", "netns", "add", ns)
    veth(NODE, "c0", "10.1.0.1/24", CLIENT, "eth0", "10.1.0.2/24")
    sh("ip", "addr", "add", "10.1.0.3/24", "dev", "eth0", ns=CLIENT)
    sh("ip", "route", "add", "default", "via", "10.1.0.1", ns=CLIENT)
    veth(NODE, "e0", "192.0.2.1/24", UP0, "eth0", "192.0.2.2/24")
    veth(NODE, "e1", "198.51.100.1/24", UP1, "eth0", "198.51.100.2/24")
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=NODE)
    sh("ip", "route", "add", "default", "via", "192.0.2.2", ns=NODE)
    sh("ip", "route", "add", "default", "via", "198.51.100.2", "table", "100", ns=NODE)
    sh("ip", "rule", "add", "pref", "100", "fwmark", "0x1/0x1", "lookup", "100", ns=NODE)
    sh("ip", "rule", "add", "pref", "110", "from", "10.1.0.3", "lookup", "100", ns=NODE)
    sh("ip", "rule", "add", "pref", "120", "ipproto", "udp", "dport", "5000-5100", "lookup", "100", ns=NODE)
    sh("ip", "rule", "add", "pref", "130", "to", "203.0.113.0/24", "blackhole", ns=NODE)
    sh("nft", "-f", "-", ns=NODE, stdin=RULESET)


def counters():
    """comment -> packets, for every rule of table t in the node."""
    doc = json.loads(sh("nft", "-j", "list", "table", "ip", "t", ns=NODE).stdout)
    out = {}
    for item in doc["nftables"]:
        r = item.get("rule")
        if r and r.get("comment"):
            for e in r["expr"]:
                if "counter" in e:
                    out[r["comment"]] = e["counter"]["packets"]
    return out


def send(src, dst, proto, dport):
    """One packet from the client: a TCP SYN or a UDP datagram, from src."""
    code = (
        "import socket,sys\n"
        f"s=socket.socket(socket.AF_INET,socket.SOCK_{'STREAM' if proto == 'tcp' else 'DGRAM'})\n"
        f"s.bind(('{src}',0))\n"
        "s.setblocking(False)\n"
        "try:\n"
        f"    s.connect(('{dst}',{dport})) if '{proto}'=='tcp' else s.sendto(b'x',('{dst}',{dport}))\n"
        "except OSError: pass\n")
    sh(sys.executable, "-c", code, ns=CLIENT, check=False)
    time.sleep(0.3)


def dpinspect(binary, src, dst, proto, dport, *extra):
    p = subprocess.run([binary, "inspect", "--netns", NODE, "--src", src, "--dst", dst, "--proto", proto,
                        "--dport", str(dport), "-o", "json", *extra], capture_output=True, text=True)
    if p.returncode > 2:
        raise RuntimeError(f"dpinspect failed ({p.returncode}): {p.stderr.strip()}")
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dpinspect", required=True)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root to build network namespaces")
        return SKIP
    flows = [  # src, dst, proto, dport, what decides it, the ip rule the report must name (or None)
        ("10.1.0.2", "8.8.8.8", "tcp", 80, "main table", None),
        ("10.1.0.2", "8.8.8.8", "tcp", 443, "fwmark rule", "100: from all fwmark 0x1/0x1 lookup 100"),
        ("10.1.0.3", "8.8.8.8", "tcp", 80, "source rule", "110: from 10.1.0.3/32 lookup 100"),
        ("10.1.0.2", "8.8.8.8", "udp", 5050, "ipproto/dport rule", "120: from all ipproto 17 dport 5000-5100 lookup 100"),
        ("10.1.0.2", "8.8.8.8", "udp", 6000, "main table (port outside the rule)", None),
        ("10.1.0.2", "203.0.113.9", "tcp", 80, "blackhole rule", "130: from all to 203.0.113.0/24 blackhole"),
    ]
    passed = failed = 0
    try:
        build()
        for src, dst, proto, dport, what, ip_rule in flows:
            before = counters()
            send(src, dst, proto, dport)
            after = counters()
            moved = sorted(c for c in after if c != "mark-443" and after[c] > before.get(c, 0))
            rep = dpinspect(a.dpinspect, src, dst, proto, dport)
            rule = ((rep.get("decided_by") or {}).get("rule") or {}).get("comment")
            if moved:
                kernel = ("allow" if moved[0] == "via-e0" else "deny", moved[0])
            else:  # dropped by routing before the forward hook
                kernel = ("deny", None)
            got = (rep["verdict"], rule if moved else None)
            ok = len(moved) <= 1 and got == kernel
            if ok and not moved:
                ok = "blackhole" in (rep.get("decided_by") or {}).get("summary", "")
            # The report names the ip rule that chose the route (none for the default rules).
            said = " ".join(rep.get("assumptions", [])) + " " + (rep.get("decided_by") or {}).get("summary", "")
            if ok and ip_rule:
                ok = ip_rule in said
            if ok and not ip_rule:
                ok = "routed by ip rule" not in said
            print(f"{'ok  ' if ok else 'FAIL'} {proto} {src} -> {dst}:{dport} ({what}): kernel {kernel}, "
                  f"dpinspect {got} {(rep.get('decided_by') or {}).get('summary', '')}")
            passed += ok
            failed += not ok
        # A rule dpinspect cannot model, ahead of the others: every lookup it could decide is refused
        # (--iif given, so that it is the forwarding lookup that meets it).
        sh("ip", "rule", "add", "pref", "50", "l3mdev", "unreachable", ns=NODE)
        rep = dpinspect(a.dpinspect, "10.1.0.2", "8.8.8.8", "tcp", 80, "--iif", "c0")
        why = (rep.get("indeterminate_reason") or {}).get("why", "")
        ok = rep["verdict"] == "indeterminate" and "l3mdev" in why
        print(f"{'ok  ' if ok else 'FAIL'} an l3mdev rule makes the route indeterminate: {rep['verdict']} {why}")
        passed += ok
        failed += not ok
    finally:
        for ns in (NODE, CLIENT, UP0, UP1):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
