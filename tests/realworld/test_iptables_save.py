#!/usr/bin/env python3
"""`--iptables-save` (text input) against the kernel and against the live path.

Real-world GKE dumps (../shared/fixtures/real-world): for each of the 23 flows,
`dpinspect inspect --iptables-save NAME.load --ipset-save NAME.ipsets --node node.json` (node.json
written from meta.json's topology) must give the kernel's verdict, with the deciding rule in the
kernel's chain and its text equal to the kernel rule's `load_rule` line. The same dump is also
loaded into a namespace (ipset restore + iptables-nft-restore, as test_realworld.py does) and read
live with `--netns`: both paths must agree on verdict, decided_by.kind, summary and chain.

The lab's seed-platform scenario in the iptables layout (tests/lab/render.py --layout iptables-nft)
gets the same live-vs-text comparison for a handful of flows. Prints "N passed, M failed".
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netnslib import SKIP, Node, root_args  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.join(HERE, "..", "lab")


def node_json(uplink, node_ip, peer_ip, workloads):
    """NodeInfo for a node with one uplink and /32 workload routes (the namespace Node builds)."""
    addr, plen = node_ip.split("/")
    ifs = [{"index": 1, "name": "lo", "up": True, "addrs": ["127.0.0.1/8"]},
           {"index": 2, "name": uplink, "up": True, "addrs": [node_ip]}]
    routes = [{"dst": "127.0.0.0/8", "type": "local", "dev": "lo", "table": 255},
              {"dst": addr + "/32", "type": "local", "dev": uplink, "table": 255},
              {"dst": "0.0.0.0/0", "type": "unicast", "dev": uplink, "gateway": peer_ip.split("/")[0],
               "table": 254}]
    net = subprocess.run(["python3", "-c", f"import ipaddress;print(ipaddress.ip_interface('{node_ip}').network)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    routes.append({"dst": net, "type": "unicast", "dev": uplink, "table": 254})
    for i, (iface, ip) in enumerate(workloads):
        ifs.append({"index": 3 + i, "name": iface, "up": True, "addrs": []})
        routes.append({"dst": ip + "/32", "type": "unicast", "dev": iface, "table": 254})
    return {"interfaces": ifs, "routes": routes}


def inspect(binary, source, flow):
    args = [binary, "inspect", *source, "--src", flow["src"], "--dst", flow["dst"], "--proto", flow["proto"],
            "-o", "json"]
    if flow.get("dport") is not None:
        args += ["--dport", str(flow["dport"])]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode > 2:
        raise RuntimeError(f"dpinspect {' '.join(source)} failed ({p.returncode}): {p.stderr.strip()}")
    return json.loads(p.stdout)


def key(rep):
    d = rep["decided_by"]
    return {"verdict": rep["verdict"], "kind": d.get("kind"), "summary": d.get("summary"),
            "chain": (d.get("rule") or {}).get("chain")}


class Tally:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail):
        print(f"{name:28} {'ok' if ok else 'FAIL'}  {detail}")
        self.passed += ok
        self.failed += not ok


def compare_live_text(t, name, live, text):
    lk, tk = key(live), key(text)
    diff = {k: (lk[k], tk[k]) for k in lk if lk[k] != tk[k]}
    t.check(name + " live=text", not diff, json.dumps(diff) if diff else f"{tk['verdict']} {tk['chain']}")


def realworld(binary, fixtures, t, tmp):
    flows = [json.loads(l) for l in open(os.path.join(fixtures, "flows.jsonl"))]
    for dump in sorted({f["dump"] for f in flows}):
        meta = json.load(open(os.path.join(fixtures, dump + ".meta.json")))
        topo = meta["topology"]
        up = topo["uplink"]
        node = os.path.join(tmp, dump + ".node.json")
        with open(node, "w") as f:
            json.dump(node_json(up["name"], up["node_ip"], up["peer_ip"],
                                [(w["iface"], w["ip"]) for w in topo["workloads"]]), f)
        rules = os.path.join(fixtures, dump + ".load")
        ipsets = os.path.join(fixtures, dump + ".ipsets")
        text_src = ["--iptables-save", rules, "--node", node]
        if os.path.exists(ipsets):
            text_src += ["--ipset-save", ipsets]
        with Node(dump, meta) as ns:
            ns.load(ipsets, rules)
            for f in (f for f in flows if f["dump"] == dump):
                text = inspect(binary, text_src, f)
                live = inspect(binary, ["--netns", ns.ns], f)
                k = f["kernel"]
                want = {"ACCEPT": "allow", "DROP": "deny"}[k["verdict"]]
                rule = text["decided_by"].get("rule") or {}
                problems = []
                if text["verdict"] != want:
                    problems.append(f"verdict {text['verdict']} != kernel {want}")
                if rule.get("chain") != k["deciding_rule"]["chain"]:
                    problems.append(f"chain {rule.get('chain')} != kernel {k['deciding_rule']['chain']}")
                # A chain policy decides without a rule: no load_rule; both say "policy accept".
                want_text = k["deciding_rule"].get("load_rule") or k["deciding_rule"]["rule"]
                if rule.get("text") != want_text:
                    problems.append(f"rule text {rule.get('text')!r} != {want_text!r}")
                t.check(f["id"] + " text=kernel", not problems,
                        "; ".join(problems) or f"{want} {rule.get('chain')} line {rule.get('handle')}")
                compare_live_text(t, f["id"], live, text)


def lab(binary, t, tmp):
    out = os.path.join(tmp, "seed-platform")
    subprocess.run([sys.executable, os.path.join(LAB, "render.py"), os.path.join(LAB, "scenarios", "seed-platform.json"),
                    "--layout", "iptables-nft", "--out", out], check=True, capture_output=True)
    topo = json.load(open(os.path.join(out, "topology.json")))
    n = topo["node"]
    pods = [(p["iface"], p["ip"]) for p in topo["pods"]]
    node_file = os.path.join(tmp, "seed-platform.node.json")
    with open(node_file, "w") as f:
        json.dump(node_json(n["uplink"], f"{n['ip']}/{n['prefix']}", n["remote_ip"], pods), f)
    meta = {"topology": {"uplink": {"name": n["uplink"], "node_ip": f"{n['ip']}/{n['prefix']}",
                                    "peer_ip": n["remote_ip"]},
                         "workloads": [{"iface": i, "ip": ip} for i, ip in pods]}}
    rules, ipsets = os.path.join(out, "iptables.rules"), os.path.join(out, "ipsets.restore")
    flows = [{"src": "10.65.0.2", "dst": "10.65.0.3", "proto": "tcp", "dport": 80},
             {"src": "10.65.0.2", "dst": "10.65.0.5", "proto": "tcp", "dport": 9001},
             {"src": "10.65.0.2", "dst": "10.96.0.10", "proto": "tcp", "dport": 80},
             {"src": "10.65.0.2", "dst": "10.65.0.4", "proto": "tcp", "dport": 6379},
             {"src": "10.65.0.2", "dst": "8.8.8.8", "proto": "udp", "dport": 53}]
    with Node("seed-platform", meta) as ns:
        ns.load(ipsets, rules)
        for f in flows:
            text = inspect(binary, ["--iptables-save", rules, "--ipset-save", ipsets, "--node", node_file], f)
            live = inspect(binary, ["--netns", ns.ns], f)
            compare_live_text(t, f"lab {f['dst']}:{f['dport']}", live, text)


def main():
    a = root_args(__doc__)
    if a is None:
        return SKIP
    t = Tally()
    with tempfile.TemporaryDirectory(prefix="dpi-iptsave-") as tmp:
        realworld(a.dpinspect, a.fixtures, t, tmp)
        lab(a.dpinspect, t, tmp)
    print(f"{t.passed} passed, {t.failed} failed")
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
