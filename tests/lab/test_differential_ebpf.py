#!/usr/bin/env python3
"""Three-way differential: the same scenario as an nftables node, an iptables-nft node and eBPF nodes.

For seed.json and generate.py --seed 1, 2, 3 (200 flows each): real packets through every node; the
kernel must agree with itself across dataplanes, flow by flow:

  fate       delivered or not, equal on the nftables, iptables-nft and eBPF nodes (every version);
  where      (--where) when the nft node drops in a workload chain (cali-tw-<iface> / cali-fw-<iface>), the eBPF
             node's DROPPED_BY_POLICY moved on that interface, on the matching hook (tc egress = to
             the workload = cali-tw, tc ingress = cali-fw);
  counters   on the eBPF node, each policy verdict counter that moved (ACCEPTED_BY_POLICY /
             DROPPED_BY_POLICY per interface and hook) has exactly one deciding rule among the rule
             counters that moved, of the right action and policy direction, and no other non-pass rule
             moved; an undelivered flow moved DROPPED_BY_POLICY;
  kind       (--where) an nft drop by "End of tier T" is an eBPF end-of-tier deny of tier T, "Drop if no
             profiles matched" is the no-profile rule (id 0).

Afterwards the host's /sys/fs/bpf, its bpf mounts and `ip netns list` must be as before.

Without --where the nftables and iptables-nft nodes only give fates, their probes sent many at a time
(the per-flow trace oracle costs ~30 ms a flow idle and far more on a loaded machine).

Usage: test_differential_ebpf.py --ebpf-attach build/bpf/dpl-ebpf-attach [--seeds 1,2,3] [--count 200]
       [--versions 3.30,3.32] [--seed-versions 3.30,3.32] [--where]     (root; exit 77 = skipped)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import differential  # noqa: E402
import labnet  # noqa: E402
import oracle  # noqa: E402

SKIP = 77
WL_CHAIN = re.compile(r"^cali-(tw|fw)-(\S+)$")
TIER_RE = re.compile(r"End of tier (\S+?)\.")


# --------------------------------------------------------------------------------------------
# The host must not notice


def host_state(netns_prefix: str = labnet.PREFIX) -> dict:
    """What the lab must leave as it found it. Other users of the machine may run labs of their own
    meanwhile: the netns list is compared for our own labs' prefix only."""
    paths = []
    for root, dirs, files in os.walk("/sys/fs/bpf"):
        paths += [os.path.join(root, n) for n in dirs + files]
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if " - bpf " in line]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")
    return {"/sys/fs/bpf": sorted(paths), "bpf mounts": sorted(mounts),
            "ip netns list": sorted(n.split()[0] for n in netns if n.strip() and n.startswith(netns_prefix))}


# --------------------------------------------------------------------------------------------
# One scenario


def run_lab(name: str, scenario: Path, dataplane: str, version: str | None, flows: list[dict],
            trace: bool, rendered: Path | None = None) -> tuple[list, str]:
    """The oracle's results for every flow, and how long building and probing took. Nodes with
    rules and trace=False: fates only, many probes at once (oracle.probe_fates). rendered: the
    scenario already rendered for this node (render.py, its nftables layout for an eBPF node)."""
    t0 = time.monotonic()
    with labnet.Lab.up(name, scenario, dataplane, rendered, owner_pid=os.getpid(), calico_version=version) as lab:
        t1 = time.monotonic()
        if dataplane != labnet.EBPF and not trace:
            results = oracle.probe_fates(lab, flows)
        else:
            with oracle.for_lab(lab, counters=dataplane == labnet.EBPF, timeout=0.5) as orc:
                results = [orc.run_flow(f) for f in flows]
        return results, f"up {t1 - t0:.1f} s, flows {time.monotonic() - t1:.1f} s"


def flow_text(flow: dict) -> str:
    port = flow.get("dport", f"icmp {flow.get('icmp_type', 8)}")
    return f"{flow['from']} -> {flow['to']} {flow['proto']} {flow['src']} -> {flow['dst']}:{port}"


def check_flow(flow: dict, results: dict[str, dict]) -> list[str]:
    """Problems with one flow across the nodes (labels -> oracle results)."""
    out = []
    fates = {label: bool(r.get("delivered")) for label, r in results.items()}
    if len(set(fates.values())) > 1:
        out.append("fate: " + ", ".join(f"{label} {'delivered' if d else 'not delivered'} ({results[label]['outcome']})"
                                        for label, d in fates.items()))
    nft = results["nftables"]
    nft_rule = nft.get("deciding_rule") or {}
    for label, r in results.items():
        if not label.startswith("ebpf"):
            continue
        out += [f"{label} counters: {p}" for p in r.get("problems", [])]
        drops = [d for d in r.get("decisions", []) if d["verdict"] == "DROP"]
        if not r.get("delivered") and not drops:
            out.append(f"{label}: not delivered ({r['outcome']}) but no DROPPED_BY_POLICY moved")
        if r.get("delivered") and drops:
            out.append(f"{label}: delivered but DROPPED_BY_POLICY moved on {drops[0]['iface']}")
        if nft.get("verdict") != "DROP" or not drops:
            continue
        m = WL_CHAIN.match(nft_rule.get("chain") or "")
        if m:
            hook = "tc egress" if m.group(1) == "tw" else "tc ingress"
            if (drops[0]["iface"], drops[0]["hook"]) != (m.group(2), hook):
                out.append(f"{label} where: nft dropped in {nft_rule['chain']}, eBPF on "
                           f"{drops[0]['iface']} {drops[0]['hook']}")
        text, rule = nft_rule.get("rule") or "", drops[0].get("rule") or {}
        tier = TIER_RE.search(text)
        if tier and not (rule.get("end_of_tier") and rule.get("tier") == tier.group(1)):
            out.append(f"{label} kind: nft end of tier {tier.group(1)}, eBPF rule {rule}")
        if "Drop if no profiles matched" in text and not rule.get("no_profile"):
            out.append(f"{label} kind: nft no profile matched, eBPF rule {rule}")
    return out


def run_scenario(label: str, scenario: Path, flows: list[dict], versions: list[str],
                 where: bool) -> tuple[dict, list[str]]:
    nodes = [("nftables", "nftables", None), ("iptables-nft", "iptables-nft", None)]
    nodes += [(f"ebpf-{v}", labnet.EBPF, v) for v in versions]
    t0 = time.monotonic()
    # The nftables node and the eBPF nodes (which take only the topology from it) share one
    # rendering of the scenario, rendered once.
    # The labs wait on probes most of the time: run them side by side (distinct names, no shared state).
    with tempfile.TemporaryDirectory(prefix="dpl-diff3-render-") as tmp, \
            ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        rendered = Path(tmp) / "render"
        labnet.render(scenario.resolve(), "nftables", rendered)
        futures = {node: pool.submit(run_lab, f"t{os.getpid() % 100000}{label}{i}", scenario, dp, v, flows,
                                     where and node == "nftables", rendered if dp != "iptables-nft" else None)
                   for i, (node, dp, v) in enumerate(nodes)}
        per_node, broken, timing = {}, [], {}
        for node, fut in futures.items():
            try:
                per_node[node], timing[node] = fut.result()
            except (labnet.LabError, OSError) as e:
                broken.append(f"  {label}: the {node} node failed: {e}")
    problems, stats = [], {"flows": len(flows), "seconds": round(time.monotonic() - t0, 1)}
    if broken:
        return {**stats, "agree": 0, "delivered": 0, "where": 0, "nodes": [n for n, _, _ in nodes]}, broken
    agree = 0
    for i, flow in enumerate(flows):
        issues = check_flow(flow, {node: per_node[node][i] for node in per_node})
        if issues:
            problems.append(f"  {label}: {flow_text(flow)}\n    " + "\n    ".join(issues))
        else:
            agree += 1
    stats["agree"] = agree
    stats["delivered"] = sum(1 for r in per_node["nftables"] if r.get("delivered"))
    stats["where"] = sum(1 for r in per_node["nftables"] if r.get("verdict") == "DROP" and
                         WL_CHAIN.match((r.get("deciding_rule") or {}).get("chain") or ""))
    stats["nodes"] = list(per_node)
    stats["timing"] = timing
    return stats, problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ebpf-attach", help="dpl-ebpf-attach binary (default: found by ebpfnode.py)")
    ap.add_argument("--scenarios", type=Path, default=HERE / "scenarios")
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",") if x], default=[1, 2, 3])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--versions", type=lambda s: s.split(","), default=["3.30", "3.32"],
                    help="Calico versions of the eBPF node for the generated scenarios")
    ap.add_argument("--where", action="store_true",
                    help="also trace every flow on the nftables node (nft monitor trace) and check that the eBPF "
                         "node dropped at the same interface/hook and for the same kind of rule (slower)")
    ap.add_argument("--seed-versions", type=lambda s: s.split(","), default=["3.30", "3.32"],
                    help="Calico versions of the eBPF node for seed.json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: test_differential_ebpf needs root (network namespaces, BPF)")
        return SKIP
    import ebpfnode
    if why := labnet.netns_unusable() or ebpfnode.unusable():
        print(f"SKIP: test_differential_ebpf: {why}")
        return SKIP
    if args.ebpf_attach:
        os.environ["DPL_EBPF_ATTACH"] = args.ebpf_attach
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # still tear the labs down
    labnet.reap_stale()
    before = host_state(f"{labnet.PREFIX}t{os.getpid() % 100000}")

    t0, failures, lines = time.monotonic(), [], []
    with tempfile.TemporaryDirectory(prefix="dpl-diff3-") as tmpdir:
        tmp = Path(tmpdir)
        cases = [("seed", args.scenarios / "seed.json", 1, args.seed_versions)]
        for seed in args.seeds:
            path = tmp / f"gen{seed}.json"
            path.write_text(labnet.run([sys.executable, str(HERE / "generate.py"), "--seed", str(seed),
                                          "--single-endpoint-services", "--no-named-ports"]).stdout)
            cases.append((f"gen{seed}", path, seed, args.versions))
        for label, scenario, flow_seed, versions in cases:
            flows = oracle.read_flows(differential.generate_flows(scenario, args.count, flow_seed,
                                                                  tmp / f"{label}.flows.jsonl"))
            stats, problems = run_scenario(label, scenario, flows, versions, args.where)
            where = f", {stats['where']} nft drops in workload chains located" if args.where else ""
            line = (f"{label} {' / '.join(stats['nodes'])}: {stats['agree']}/{stats['flows']} flows agree "
                    f"({stats['delivered']} delivered{where}), {len(problems)} disagreements  ({stats['seconds']} s)")
            print(line, flush=True)
            print("  " + "; ".join(f"{node}: {t}" for node, t in stats.get("timing", {}).items()), flush=True)
            for text in problems[:15]:
                print(text, flush=True)
            lines.append(("ok  " if not problems else "FAIL") + " " + line)
            failures += problems

    after = host_state(f"{labnet.PREFIX}t{os.getpid() % 100000}")
    changed = [k for k in before if before[k] != after[k]]
    print(f"\n== summary ({time.monotonic() - t0:.1f} s)")
    for line in lines:
        print(line)
    print(f"{'ok  ' if not changed else 'FAIL'} host unchanged (/sys/fs/bpf, bpf mounts, ip netns list)"
          + (f": {', '.join(changed)} differ" if changed else ""))
    if changed:
        for k in changed:
            print(f"  {k}: before {before[k]}\n  {k}: after  {after[k]}")
    return 1 if failures or changed else 0


if __name__ == "__main__":
    sys.exit(main())
