#!/usr/bin/env python3
"""`dpinspect watch` against the kernel: real denied probes on a Calico-shaped lab node.

Flow logs on (nftables layout, the seed plus a deny rule, log rules as Felix renders them): each
denied probe (UDP to a deny rule, UDP and ICMP to the end of tier "default") is reported exactly
once through NFLOG with its policy, rule index and tier, and the allowed connection is not;
`--source kfree_skb` reports the same drop through the tracepoint. Flow logs off (iptables-nft
layout, no log rules): `watch` says so and reports the drop through kfree_skb. Unprivileged:
exit 4. Nothing runs in the root namespace.

    test_watch_live.py --dpinspect build/cli/dpinspect      (root; exit 77 = skipped)
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lab"))

SKIP = 77
SEED = HERE.parent / "lab" / "scenarios" / "seed.json"

# One datagram per probe (no retransmission), and one raw ICMP echo request.
PROBE = """
import socket, sys
kind, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind == "udp":
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", (ip, port))
elif kind == "icmp":
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    msg = bytearray(b"\\x08\\x00\\x00\\x00\\x12\\x34\\x00\\x01")
    csum = sum((msg[i] << 8) + msg[i + 1] for i in range(0, 8, 2))
    csum = ~((csum & 0xffff) + (csum >> 16)) & 0xffff
    msg[2], msg[3] = csum >> 8, csum & 0xff
    s.sendto(bytes(msg), (ip, 0))
else:
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((ip, port))
    except OSError:
        pass
"""

failed = 0


def check(ok, what):
    global failed
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    failed += not ok


def probe(ns, kind, ip, port=0):
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PROBE, kind, ip, str(port)],
                   capture_output=True, check=False)


def watch(binary, ns, *extra):
    """A running watch, returned once it said what it watches (its sources are open)."""
    p = subprocess.Popen([binary, "watch", "--netns", ns, "-o", "json", "--timeout", "20", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    while True:
        line = p.stderr.readline()
        lines.append(line)
        if not line or "dpinspect: watching" in line:
            return p, "".join(lines)


def stop(p):
    """SIGINT, as Ctrl-C: the events, then the summary."""
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    docs = [json.loads(line) for line in out.splitlines() if line.strip()]
    return p.returncode, [d for d in docs if d.get("type") == "event"], \
        [d for d in docs if d.get("type") == "summary"], err


def matching(events, proto, dst, dport=None):
    return [e for e in events if (e.get("flow") or {}).get("proto") == proto and e["flow"]["dst"] == dst
            and e["flow"].get("dport") == dport]


def scenario(flow_logs):
    sc = json.loads(SEED.read_text())
    sc["flow_logs"] = flow_logs
    # A deny rule (index 1) beside the seed's allow: "the right policy" is a named one.
    sc["policies"][0]["egress"].append({"action": "deny", "protocol": "udp", "dst_ports": [7000]})
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(sc, f)
    f.close()
    return Path(f.name)


def flow_logs_on(binary, labnet):
    path = scenario(True)
    try:
        with labnet.Lab.up(f"wl{os.getpid()}", path, "nftables", owner_pid=os.getpid()) as lab:
            client = lab.endpoint_ns("pod:client/client")
            backend = lab.pod("stars/backend")["ip"]
            ui = lab.pod("management-ui/management-ui")["ip"]
            frontend = lab.pod("stars/frontend")["ip"]

            p, hello = watch(binary, lab.node_ns)
            check("group(s) 1,2" in hello or "group(s) 2,1" in hello,
                  f"watch subscribes to the ruleset's log groups: {hello.strip()}")
            probe(client, "udp", backend, 7000)   # deny rule 1 of client/allow-stars
            probe(client, "udp", ui, 9001)        # end of tier default
            probe(client, "icmp", frontend)       # end of tier default
            probe(client, "tcp", frontend, 80)    # allowed: logged as API0, not shown
            code, events, summary, err = stop(p)
            check(code == 0 and len(events) == 3 and len(summary) == 1 and summary[0]["events"] == 3,
                  f"nflog: exit {code}, {len(events)} events (3 denied probes), summary {summary} {err.strip()}")
            rule = matching(events, "udp", backend, 7000)
            x = (rule[0].get("explanation") or {}) if len(rule) == 1 else {}
            check(len(rule) == 1 and rule[0]["nflog"]["prefix"].startswith("DPE1|") and
                  x.get("kind") == "policy_rule" and "allow-stars" in (x.get("policy") or "") and
                  x.get("rule_index") == 1 and x.get("tier") == "default" and rule[0]["agrees"] is True,
                  f"nflog: the deny rule's probe once, policy/rule/tier {x.get('policy')} {x.get('rule_index')} "
                  f"{x.get('tier')}: {rule}")
            for proto, dst, port in (("udp", ui, 9001), ("icmp", frontend, None)):
                got = matching(events, proto, dst, port)
                x = (got[0].get("explanation") or {}) if len(got) == 1 else {}
                check(len(got) == 1 and got[0]["nflog"]["prefix"] == "DPE|default" and
                      got[0]["nflog"]["group"] == 2 and x.get("kind") == "end_of_tier_deny" and
                      x.get("tier") == "default" and got[0]["agrees"] is True,
                      f"nflog: {proto} probe to {dst} once, end of tier default: {got}")

            p, _ = watch(binary, lab.node_ns, "--source", "kfree_skb")
            probe(client, "udp", ui, 9001)
            code, events, summary, err = stop(p)
            got = matching(events, "udp", ui, 9001)
            x = (got[0].get("explanation") or {}) if len(got) == 1 else {}
            check(code == 0 and len(got) == 1 and got[0]["drop_reason"]["name"] == "NETFILTER_DROP" and
                  x.get("kind") == "end_of_tier_deny" and x.get("tier") == "default",
                  f"kfree_skb with flow logs on: the probe once, NETFILTER_DROP, end of tier: {events} {err.strip()}")
    finally:
        path.unlink()


def flow_logs_off(binary, labnet):
    path = scenario(False)
    try:
        with labnet.Lab.up(f"wk{os.getpid()}", path, "iptables-nft", owner_pid=os.getpid()) as lab:
            client = lab.endpoint_ns("pod:client/client")
            backend = lab.pod("stars/backend")["ip"]
            ui = lab.pod("management-ui/management-ui")["ip"]
            p, hello = watch(binary, lab.node_ns, "--endpoint", "client/client")
            check("no Calico log (NFLOG) rules" in hello and "kernel drops" in hello,
                  f"flow logs off: watch says so and watches kernel drops: {hello.strip()}")
            probe(client, "udp", ui, 9001)
            probe(client, "udp", backend, 7000)
            code, events, summary, err = stop(p)
            got = matching(events, "udp", ui, 9001)
            x = (got[0].get("explanation") or {}) if len(got) == 1 else {}
            check(code == 0 and len(got) == 1 and got[0]["source"] == "kfree_skb" and
                  x.get("kind") == "end_of_tier_deny" and x.get("tier") == "default",
                  f"flow logs off: the end-of-tier probe once through kfree_skb: {events} {err.strip()}")
            got = matching(events, "udp", backend, 7000)
            x = (got[0].get("explanation") or {}) if len(got) == 1 else {}
            check(len(got) == 1 and x.get("kind") == "policy_rule" and x.get("rule_index") == 1,
                  f"flow logs off: the deny rule's probe once, rule 1: {got}")

            p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "--inh-caps=-all", binary, "watch", "--netns", lab.node_ns, "--timeout", "1"],
                               capture_output=True, text=True)
            check(p.returncode == 4 and "watch needs root" in p.stderr and "--ruleset" not in p.stderr,
                  f"unprivileged watch: exit {p.returncode} {p.stderr.strip()}")
    finally:
        path.unlink()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dpinspect", required=True)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root to build network namespaces and load BPF")
        return SKIP
    import labnet
    flow_logs_on(a.dpinspect, labnet)
    flow_logs_off(a.dpinspect, labnet)
    print("failed" if failed else "all passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
