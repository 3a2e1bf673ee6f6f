#!/usr/bin/env python3
"""Host endpoints on the lab's eBPF node, with the kernel as the judge.

scenarios/hostendpoints.json on an eBPF node (v3.32 by default): node.py loads the uplink's host
endpoint programs (polprog's host programs: pre-DNAT, apply-on-forward and normal tiers) and
Felix's failsafe ports into cali_v4_fsafes2, and dpl-ebpf-attach puts calico_from_hep /
calico_to_hep on eth0. Every flow of scenarios/hostendpoints.flows.jsonl between the remote
netns and the node itself (remote -> host, host -> remote) is sent for real (oracle.EbpfOracle:
Calico's policy verdict and rule counters) and asked of `dpinspect inspect --dataplane ebpf`:
the verdict and, for every policy stage, the rule id the kernel recorded must agree; a failsafe
flow must be allowed with no policy program run (no counter moves) and reported as decision kind
`failsafe`. Indeterminate or an error is a disagreement. On the scenario's own version (3.30) an
nftables node of the same scenario answers the same flows too: the eBPF report must have the same
verdict and deciding decision (kind, action, direction, endpoint, tier, policy, rule index). Not
compared yet: the stages and summaries (the nftables report has a pre-DNAT stage of its own and
names the failsafe chain; the eBPF backend names no pre-DNAT stage and quotes the fsafes entry).

Left out, and why (tests/lab/README.md, "Host endpoints on the eBPF node"):
  - untracked (do_not_track) policies: Felix runs them in an XDP program the lab does not build;
    the eBPF node's scenario is hostendpoints.json without them (their flows stay, decided by
    the other policies);
  - forwarded flows (remote <-> pod): the lab's pod routes carry NAT_OUT, and nat-outgoing pod
    traffic through a host endpoint is indeterminate by design; the lab's calico_tc.bpf.c has no
    apply-on-forward path either;
  - pod <-> host flows never cross the host endpoint.

Prints a line per node; exit 1 on any disagreement, 77 when not root (~10 s on an idle machine).

Usage: test_ebpf_hostendpoints.py --dpinspect build/cli/dpinspect [--ebpf-attach ...] [--versions 3.30,3.32]
       [--verbose]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import labnet  # noqa: E402
import oracle  # noqa: E402
from test_differential_ebpf import host_state  # noqa: E402
from test_ebpf_inspect import (bpf_rule_id, check_kernel, ebpf_source, in_ebpf_node, inspect_all,  # noqa: E402
                               kernel_verdict, run_nft_node, with_sports)

SKIP = 77
ENDS = ("remote", "host")


def scenario_without_untracked(src: Path, dst: Path) -> None:
    sc = json.loads(src.read_text())
    sc["policies"] = [p for p in sc["policies"] if not p.get("do_not_track")]
    dst.write_text(json.dumps(sc, indent=1))


def stage_key(role: str, iface: str) -> tuple[str, str]:
    """(policy direction, interface) of a report stage role ("ingress of host endpoint", ...)."""
    return role.split(" of ")[0].split()[-1], iface


def kernel_stage_keys(kernel: dict, heps: set[str]) -> dict[tuple[str, str], int | None]:
    out = {}
    for d in kernel["decisions"]:
        hook_dir = d["hook"].removeprefix("tc ")
        direction = hook_dir if d["iface"] in heps else {"ingress": "egress", "egress": "ingress"}[hook_dir]
        out[(direction, d["iface"])] = d["rule_id"]
    return out


def check(flow: dict, kernel: dict, dp: dict, heps: set[str]) -> str:
    doc = dp["json"]
    if dp["exit"] >= 3 or doc is None:
        return f"error: dpinspect exit {dp['exit']}: {dp['stderr'][-300:]}"
    decided = doc.get("decided_by") or {}
    if decided.get("kind") == "failsafe":
        # calico_tc_main skips policy: no policy program runs, no counter moves.
        if kernel_verdict(kernel) != "allow" or kernel["counters"] or kernel["rule_counters"]:
            return f"failsafe: kernel {kernel['verdict']} counters {kernel['counters']}"
        return "" if doc.get("verdict") == "allow" else f"failsafe with verdict {doc.get('verdict')}"
    if doc.get("verdict") == "indeterminate" or kernel.get("problems"):
        return check_kernel(flow, kernel, dp)
    if doc.get("verdict") != kernel_verdict(kernel):
        return f"verdict: kernel {kernel_verdict(kernel)} ({kernel['outcome']}), dpinspect {doc.get('verdict')}"
    k = kernel_stage_keys(kernel, heps)
    d = {stage_key(s.get("role") or "", s.get("endpoint") or ""): bpf_rule_id((s.get("decision") or {}).get("rule"))
         for s in doc.get("stages") or []}
    if k != d:
        return f"rule ids: kernel {k}, dpinspect {d}"
    return ""


def run_version(version: str, scenario: Path, flows: list[dict], dpinspect: str,
                name: str) -> tuple[list[dict], list[dict]]:
    with labnet.Lab.up(name, scenario, labnet.EBPF, owner_pid=os.getpid(), calico_version=version) as lab:
        with oracle.for_lab(lab, counters=True, timeout=0.5) as orc:
            kernels = [orc.run_flow(f) for f in flows]
        answers = inspect_all(in_ebpf_node(lab, [dpinspect, "inspect", *ebpf_source(lab)]), flows,
                              labnet.state_dir(name))
    return kernels, answers


def check_kernel_all(flows: list[dict], kernels: list[dict], answers: list[dict], heps: set[str],
                     verbose: bool) -> tuple[int, list[str]]:
    problems = []
    agree = 0
    # The scenario's flows are a mix: denied by a host endpoint program, allowed by one (a rule
    # counter moved), allowed by a failsafe (no policy program ran). A node whose programs never
    # ran would miss one of them.
    kinds = {("deny" if k["verdict"] == "DROP" else "policy" if k["rule_counters"] else "no policy")
             for k in kernels}
    if kinds != {"deny", "policy", "no policy"}:
        problems.append(f"the kernel's verdicts are not the scenario's mix: {sorted(kinds)}")
    for f, k, a in zip(flows, kernels, answers):
        why = check(f, k, a, heps)
        if verbose:
            d = (a["json"] or {}).get("decided_by") or {}
            print(f"  {f['src']} -> {f['dst']} {f['proto']}/{f.get('dport', '')}: kernel {k['verdict']} "
                  f"{[r['id'] for r in k['rule_counters']]}; dpinspect {(a['json'] or {}).get('verdict')} "
                  f"{d.get('kind')}: {d.get('summary')}")
        if why:
            problems.append(f"{f['src']} -> {f['dst']} {f['proto']}/{f.get('dport', f.get('icmp_type'))} "
                            f"({f.get('note', '')}): {why}")
        else:
            agree += 1
    return agree, problems


def decision_fields(doc: dict | None) -> tuple:
    """What the nftables and eBPF reports of a host endpoint flow share today: the verdict and the
    deciding decision's kind, action, direction, endpoint, tier, policy and rule index."""
    d = (doc or {}).get("decided_by") or {}
    pol = d.get("policy") or {}
    return ((doc or {}).get("verdict"), d.get("kind"), d.get("action"), d.get("direction"), d.get("endpoint"),
            d.get("tier"), pol.get("name"), d.get("rule_index"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dpinspect", required=True)
    ap.add_argument("--ebpf-attach", help="dpl-ebpf-attach binary (default: found by ebpfnode.py)")
    ap.add_argument("--versions", type=lambda s: [v for v in s.split(",") if v], default=["3.30", "3.32"])
    ap.add_argument("--verbose", action="store_true", help="each flow's kernel and dpinspect answers")
    args = ap.parse_args()
    args.dpinspect = os.path.abspath(args.dpinspect)  # it runs under nsenter --mount
    if os.geteuid() != 0:
        print("SKIP: test_ebpf_hostendpoints needs root (network namespaces, BPF)")
        return SKIP
    if why := labnet.netns_unusable():
        print(f"SKIP: test_ebpf_hostendpoints: {why}")
        return SKIP
    if args.ebpf_attach:
        os.environ["DPL_EBPF_ATTACH"] = args.ebpf_attach
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # still tear the lab down
    labnet.reap_stale()
    prefix = f"{labnet.PREFIX}eh{os.getpid() % 100000}"
    before = host_state(prefix)
    t0, failed = time.monotonic(), False
    with tempfile.TemporaryDirectory(prefix="dpl-ebpf-hep-") as tmpdir:
        scenario = Path(tmpdir) / "hostendpoints-ebpf.json"
        scenario_without_untracked(HERE / "scenarios" / "hostendpoints.json", scenario)
        pods = json.loads(scenario.read_text())["pods"]
        flows = [f for f in oracle.read_flows(HERE / "scenarios" / "hostendpoints.flows.jsonl")
                 if f.get("from", "remote") in ENDS and f.get("to") in ENDS]
        flows = with_sports(flows, pods)
        heps = {h["interface"] for h in json.loads(scenario.read_text()).get("host_endpoints", [])}
        tag = f"eh{os.getpid() % 100000}"
        scenario_version = json.loads(scenario.read_text())["calico_version"]
        nft = None
        if scenario_version in args.versions:
            nft = run_nft_node(f"{tag}nft", scenario, "nftables", flows, args.dpinspect, Path(tmpdir) / "nft.snap")
            print(f"    nftables node v{scenario_version}: {nft['seconds']} s", flush=True)
        for n, version in enumerate(args.versions):
            t1 = time.monotonic()
            kernels, answers = run_version(version, scenario, flows, args.dpinspect, f"{tag}v{n}")
            agree, problems = check_kernel_all(flows, kernels, answers, heps, args.verbose)
            print(f"hostendpoints eBPF v{version}: {len(flows)} remote<->host flows, {agree}/{len(flows)} agree "
                  f"with the kernel (verdict, rule ids, failsafe), {len(problems)} disagree "
                  f"({time.monotonic() - t1:.1f} s)", flush=True)
            if nft is not None and version == scenario_version:
                same = 0
                for f, a, o in zip(flows, answers, nft["answers"]):
                    mine, theirs = decision_fields(a["json"]), decision_fields(o["json"])
                    if mine == theirs:
                        same += 1
                    else:
                        problems.append(f"{f['src']} -> {f['dst']} {f['proto']}/{f.get('dport', '')}: eBPF "
                                        f"{mine} vs nftables {theirs}")
                print(f"hostendpoints eBPF v{version} vs nftables: {same}/{len(flows)} same verdict, kind, "
                      "action, direction, endpoint, tier, policy, rule index", flush=True)
            for p in problems:
                print("  " + p, flush=True)
            failed |= bool(problems) or not flows
    after = host_state(prefix)
    changed = [k for k in before if before[k] != after[k]]
    print(f"{'ok  ' if not changed else 'FAIL'} host unchanged (/sys/fs/bpf, bpf mounts, ip netns list)"
          + (f": {', '.join(changed)} differ" if changed else "") + f"  ({time.monotonic() - t0:.1f} s)")
    return 1 if failed or changed else 0


if __name__ == "__main__":
    sys.exit(main())
