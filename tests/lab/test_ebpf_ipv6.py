#!/usr/bin/env python3
"""IPv6 on the lab's eBPF node, with the kernel as the judge (ctest lab_ebpf_ipv6).

For seed.json and generated scenarios (generate.py --seed N), made dual-stack (every pod also gets
fd00:65::<its v4 address as the low 32 bits>, the node fd00:18::2), on the eBPF node of each version
(3.30, 3.32):
  1. node.py populates the v6 maps as Felix would (cali_v6_routes, IPv6Ready + v6 policy indices in
     ifstate, cali_v6_ip_sets) and loads the `p6<I|E>_<iface>` programs (polprog.py, IPv6 builder) with
     their `<iface>_<dir>_v6.json`; bpf/calico_tc.bpf.c parses IPv6, tracks it in cali_v6_ct*, fills
     the state with the 16-byte addresses and tail-calls the v6 policy index;
  2. the pods get their v6 addresses (routes as Calico's CNI sets them: a /128 per pod on the node,
     the pods' default via fe80::1 on the cali side);
  3. real packets: for every ordered pair of pods TCP (the destination's first served port, else
     80), UDP 53 and ICMPv6 echo, plus pod -> world (2001:db8::1) TCP 443 and ICMPv6 echo;
  4. per flow the kernel's verdict (DROPPED_BY_POLICY / ACCEPTED_BY_POLICY counters of the hooks the
     flow crosses) and its deciding rule id (cali_rule_ctrs2, as the v4 eBPF oracle reads them) must
     equal `dpinspect inspect --dataplane ebpf`'s verdict and `calico_rule_id` (one `--flows` run per
     node answers every flow, after the kernel has run them);
  5. no report may say IPv6 is unsupported; the host's /sys/fs/bpf and netns list are unchanged.

Usage: test_ebpf_ipv6.py --dpinspect build/cli/dpinspect [--ebpf-attach build/bpf/dpl-ebpf-attach]
       [--seeds 1] [--versions 3.30,3.32]   (root; exit 77 = skipped)
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import differential  # noqa: E402
import ebpfnode  # noqa: E402
import labnet  # noqa: E402
import oracle  # noqa: E402
from test_differential_ebpf import host_state  # noqa: E402

SKIP = 77
POD6_BASE = int(ipaddress.IPv6Address("fd00:65::"))
NODE6, REMOTE6, WORLD6 = "fd00:18::2", "fd00:18::1", "2001:db8::1"
GW6 = "fe80::1"
SPORT = 41000
WAIT = 0.4  # below TCP's 1 s initial retransmission: one SYN per flow


def pod_ip6(v4: str) -> str:
    return str(ipaddress.IPv6Address(POD6_BASE + int(ipaddress.IPv4Address(v4))))


def dual_stack(sc: dict) -> dict:
    sc = json.loads(json.dumps(sc))
    for pod in sc["pods"]:
        pod["ip6"] = pod_ip6(pod["ip"])
    sc.setdefault("node", {})["ip6"] = NODE6
    sc["ip6_pool"] = "fd00:65::/96"
    return sc


def add_v6_addresses(lab: labnet.Lab, sc: dict) -> None:
    """What Calico's CNI and Felix set up for a dual-stack pod, on top of labnet's v4 wiring."""
    nns, topo = lab.node_ns, lab.topology
    uplink = topo["node"].get("uplink") or "eth0"
    labnet.sysctl(nns, "net.ipv6.conf.all.forwarding", 1)
    labnet.run(["ip", "-n", nns, "-6", "addr", "add", f"{NODE6}/64", "dev", uplink, "nodad"])
    labnet.run(["ip", "-n", lab.remote_ns, "-6", "addr", "add", f"{REMOTE6}/64", "dev", "eth0", "nodad"])
    labnet.run(["ip", "-n", nns, "-6", "route", "add", "default", "via", REMOTE6, "dev", uplink])
    ip6 = {f"{p['namespace']}/{p['name']}": p["ip6"] for p in sc["pods"]}
    for pod in topo["pods"]:
        key = f"{pod['namespace']}/{pod['name']}"
        pns, iface = lab.endpoint_ns(f"pod:{key}"), pod["iface"]
        labnet.run(["ip", "-n", pns, "-6", "addr", "add", f"{ip6[key]}/128", "dev", "eth0", "nodad"])
        labnet.run(["ip", "-n", nns, "-6", "addr", "add", f"{GW6}/64", "dev", iface, "nodad"])
        labnet.run(["ip", "-n", pns, "-6", "route", "add", "default", "via", GW6, "dev", "eth0"])
        labnet.run(["ip", "-n", nns, "-6", "route", "add", f"{ip6[key]}/128", "dev", iface])


def flows_of(sc: dict) -> list[dict]:
    out = []
    for src in sc["pods"]:
        skey = f"{src['namespace']}/{src['name']}"
        for dst in sc["pods"]:
            if dst is src:
                continue
            tcp = next((s["port"] for s in dst.get("serve", []) if s["proto"] == "tcp"), 80)
            for proto, dport in (("tcp", tcp), ("udp", 53), ("icmpv6", None)):
                out.append({"src_pod": skey, "src": src["ip6"], "dst": dst["ip6"], "proto": proto,
                            "dport": dport, "to": f"{dst['namespace']}/{dst['name']}"})
        for proto, dport in (("tcp", 443), ("icmpv6", None)):
            out.append({"src_pod": skey, "src": src["ip6"], "dst": WORLD6, "proto": proto, "dport": dport,
                        "to": "world"})
    return out


# --------------------------------------------------------------------------------------------
# The kernel side: real packets, counters and rule counters of the eBPF node


def send(ns: str, flow: dict) -> socket.socket:
    with labnet.in_netns(ns):
        if flow["proto"] == "tcp":
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((flow["src"], SPORT))
            s.setblocking(False)
            try:
                s.connect((flow["dst"], flow["dport"]))
            except BlockingIOError:
                pass
        elif flow["proto"] == "udp":
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.bind((flow["src"], SPORT))
            s.sendto(b"dpl", (flow["dst"], flow["dport"]))
        else:
            s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            s.bind((flow["src"], 0))
            s.sendto(struct.pack("!BBHHH", 128, 0, 0, 0x1234, 1) + b"dpl", (flow["dst"], 0))
    return s


class Kernel:
    def __init__(self, lab: labnet.Lab):
        self.o = oracle.EbpfOracle(lab)
        self.lab = lab

    def __enter__(self):
        self.o.__enter__()
        ct6 = self.o.maps.spec(self.o.version, "ct6").name
        self.ct6 = ebpfnode.map_fds(self.lab.name, [ct6])[ct6]
        self.ct6_info = self.o.bpfsys.map_info(self.ct6)
        return self

    def __exit__(self, *exc):
        os.close(self.ct6)
        self.o.__exit__(*exc)

    def flush_ct6(self) -> None:
        for key in self.o.bpfsys.map_keys(self.ct6, self.ct6_info.key_size):
            self.o.bpfsys.map_delete(self.ct6, key)

    def run(self, flow: dict) -> dict:
        self.flush_ct6()
        before_pc, before_rc = self.o.policy_counters(), self.o.rule_counters()
        sock = send(self.lab.endpoint_ns(f"pod:{flow['src_pod']}"), flow)
        try:
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                select.select([sock], [], [], 0.02)
                if any(v[1] != before_pc.get(k, (0, 0))[1] for k, v in self.o.policy_counters().items()):
                    break  # the drop program ran
        finally:
            sock.close()
        after_pc, after_rc = self.o.policy_counters(), self.o.rule_counters()
        moved = self.o._counter_moves(before_pc, after_pc)
        rules = [{"id": rid, "packets": n - before_rc.get(rid, 0), "rule": self.o.rule_ids.get(str(rid))}
                 for rid, n in sorted(after_rc.items()) if n != before_rc.get(rid, 0)]
        decisions, problems = self.o._decisions(moved, rules)
        dropped = any(m["reason"] == "dropped_by_policy" for m in moved)
        # A drop decides; an allowed flow is decided by its last stage, the destination workload's
        # ingress policy (tc egress) when the flow reaches one, as dpinspect reports it.
        deciding = next((d for d in decisions if d["verdict"] == "DROP"),
                        next((d for d in decisions if d["hook"] == "tc egress"),
                             decisions[-1] if decisions else None))
        return {"verdict": "deny" if dropped else ("allow" if moved else "none"),
                "rule_id": deciding["rule_id"] if deciding else None, "problems": problems, "moved": moved}


# --------------------------------------------------------------------------------------------
# dpinspect


def dpinspect_argv(dpinspect: str, lab: labnet.Lab, flow: dict) -> list[str]:
    info = lab.info["ebpf"]
    argv = [dpinspect, "inspect", "--dataplane", "ebpf", "--bpffs", info["globals"],
            "--policy-debug-dir", info["policy_dir"], "--src", flow["src"], "--dst", flow["dst"],
            "--proto", flow["proto"]]
    if flow["proto"] in ("tcp", "udp"):
        argv += ["--sport", str(SPORT), "--dport", str(flow["dport"])]
    else:
        argv += ["--icmp-type", "128", "--icmp-code", "0"]
    return ebpfnode.in_node_argv(lab.name, argv + ["--ct", "new", "-o", "json"])


def dpinspect_answer(run: dict) -> dict:
    """A flow's answer out of differential.inspect_batch's run: verdict, rule id and why."""
    doc = run["json"]
    if doc is None:
        return {"verdict": f"exit {run['exit']}", "rule_id": None, "why": run["stderr"][-300:]}
    rule = (doc.get("decided_by") or {}).get("rule") or {}
    rid = rule.get("calico_rule_id") if rule.get("kind") == "bpf" else None
    why = ((doc.get("indeterminate_reason") or {}).get("why")) or (doc.get("decided_by") or {}).get("summary", "")
    return {"verdict": doc.get("verdict"), "rule_id": None if rid is None else int(str(rid), 0), "why": why}


def dpinspect_answers(dpinspect: str, lab: labnet.Lab, flows: list[dict]) -> list[dict]:
    """Every flow through one `inspect --dataplane ebpf --flows` run in the node (its maps and policy
    programs read once, not once per flow); each answer is what that flow's own run (dpinspect_argv)
    gives."""
    info = lab.info["ebpf"]
    prefix = ebpfnode.in_node_argv(lab.name, [dpinspect, "inspect", "--dataplane", "ebpf", "--bpffs", info["globals"],
                                              "--policy-debug-dir", info["policy_dir"]])
    runs = differential.inspect_batch(prefix, [differential.flow_line(f, SPORT) for f in flows],
                                      [dpinspect_argv(dpinspect, lab, f) for f in flows],
                                      labnet.state_dir(lab.name) / "ipv6-flows.jsonl")
    return [dpinspect_answer(r) for r in runs]


# --------------------------------------------------------------------------------------------


def run_case(label: str, scenario: Path, version: str, dpinspect: str) -> tuple[int, list[str]]:
    sc = dual_stack(json.loads(scenario.read_text()))
    path = scenario.with_name(f"{label}.v6.json")
    path.write_text(json.dumps(sc))
    name = f"e6{os.getpid() % 10000}{label[:4]}{version.replace('.', '')}"
    problems, n, verdicts = [], 0, {"allow": 0, "deny": 0, "none": 0}
    t0 = time.monotonic()
    with labnet.Lab.up(name, path, labnet.EBPF, owner_pid=os.getpid(), calico_version=version) as lab:
        add_v6_addresses(lab, sc)
        flows = flows_of(sc)
        with Kernel(lab) as kernel:
            kernels = [kernel.run(flow) for flow in flows]
        # --ct new: the answers do not depend on the conntrack entries the kernel's runs left.
        answers = dpinspect_answers(dpinspect, lab, flows)
        for flow, k, d in zip(flows, kernels, answers):
            n += 1
            verdicts[k["verdict"]] += 1
            what = f"{flow['src_pod']} -> {flow['to']} {flow['proto']}/{flow['dport'] or ''}"
            if "not evaluated by the eBPF backend yet" in d["why"] or "IPv6" == d["why"]:
                problems.append(f"{what}: dpinspect still says IPv6 is unsupported: {d['why']}")
            if k["problems"]:
                problems.append(f"{what}: kernel side unclear: {k['problems']} moved {k['moved']}")
                continue
            if k["verdict"] == "none":
                problems.append(f"{what}: no policy counter moved in the kernel")
                continue
            if d["verdict"] != k["verdict"]:
                problems.append(f"{what}: verdict kernel {k['verdict']} dpinspect {d['verdict']} ({d['why']})")
            elif d["rule_id"] != k["rule_id"]:
                problems.append(f"{what}: rule id kernel {k['rule_id']} dpinspect {d['rule_id']} ({d['why']})")
    print(f"{'ok  ' if not problems else 'FAIL'} {label} v{version}: {n} IPv6 flows, "
          f"{n - len(problems)} agree with the kernel (kernel: {verdicts['allow']} allowed, {verdicts['deny']} "
          f"denied) ({time.monotonic() - t0:.1f} s)", flush=True)
    for p in problems[:20]:
        print("  " + p, flush=True)
    return n, problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dpinspect", required=True)
    ap.add_argument("--ebpf-attach")
    ap.add_argument("--seeds", default="1", help="generated scenarios (generate.py --seed), comma-separated")
    ap.add_argument("--versions", default="3.30,3.32")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root (netns, bpffs, BPF)")
        return SKIP
    why = labnet.netns_unusable() or ebpfnode.unusable()
    if why:
        print(f"SKIP: {why}")
        return SKIP
    if args.ebpf_attach:
        os.environ["DPL_EBPF_ATTACH"] = args.ebpf_attach
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # still tear the labs down
    labnet.reap_stale()
    prefix = f"{labnet.PREFIX}e6{os.getpid() % 10000}"
    before = host_state(prefix)
    failed = False
    with tempfile.TemporaryDirectory(prefix="dpl-ebpf-ipv6-") as tmpdir:
        tmp = Path(tmpdir)
        cases = [("seed", tmp / "seed.json")]
        cases[0][1].write_text((HERE / "scenarios" / "seed.json").read_text())
        for seed in [s for s in args.seeds.split(",") if s]:
            path = tmp / f"gen{seed}.json"
            path.write_text(labnet.run([sys.executable, str(HERE / "generate.py"), "--seed", seed,
                                          "--single-endpoint-services", "--no-named-ports"]).stdout)
            cases.append((f"gen{seed}", path))
        for label, path in cases:
            for version in args.versions.split(","):
                _, problems = run_case(label, path, version, args.dpinspect)
                failed = failed or bool(problems)
    after = host_state(prefix)
    changed = [k for k in before if before[k] != after[k]]
    print(f"{'ok  ' if not changed else 'FAIL'} host unchanged (/sys/fs/bpf, bpf mounts, ip netns list)"
          + (f": {', '.join(changed)} differ" if changed else ""))
    return 1 if failed or changed else 0


if __name__ == "__main__":
    sys.exit(main())
