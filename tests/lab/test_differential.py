#!/usr/bin/env python3
"""Differential test: dpinspect vs the kernel on seed.json and generated scenarios, both layouts.

For each scenario (seed.json, and generate.py --seed 1, 2, 3) and each layout (nftables,
iptables-nft): one lab, 200 generated flows, each through the kernel oracle and through dpinspect;
plus scenarios/services.json with its 9 flows in scenarios/services.flows.jsonl (a multi-endpoint
service whose endpoints get different verdicts, named ports), and host endpoints:
scenarios/hostendpoints.json with scenarios/hostendpoints.flows.jsonl (normal, applyOnForward,
preDNAT and doNotTrack policies, failsafe ports; to/from the host and forwarded) and
`generate.py --seed 1 --host-endpoints` with --hep-count flows.
Every verdict and every deciding rule must agree, in both layouts; `indeterminate` counts as a
disagreement. The first generated scenario runs a second time with Felix's mark mask set to other
bits (--mark-mask, default 0xfff00000): the kernel must agree there too, and dpinspect must give
every flow the same Calico meaning as with the default mask. Each scenario's two live labs are also
snapshotted and given to `dpinspect compare`: every flow must come out `same` (the migration
question: one policy, both dataplanes). Prints one line per scenario/layout:

    seed nftables: 200/200 verdicts, 200/200 rules, 0 indeterminate  ({'up': 0.4, 'oracle': 5.1, ...})

With --dual-stack seed,services,N: also the dual-stack scenarios (pods with IPv6 addresses, Felix's IPv6
tables), about 40% of their flows IPv6; --dual-stack-only runs just those.

Usage: test_differential.py --dpinspect build/cli/dpinspect [--seeds 1,2,3] [--count 200] [--mark-mask M]
       [--no-services] [--no-seed] [--no-hostendpoints] [--hep-seeds 1] [--hep-count 80]
       [--dual-stack seed,1 [--dual-stack-only]] [--shard K/N]
(root; exit 77 = skipped)
--shard K/N runs only shard K of N of the scenarios above, each with both layouts, its compare and,
for the first generated one, its mark_mask run (shard_of: each scenario joins the shard with the
fewest flows so far): ctest runs the N shards side by side as separate tests, and a scenario added
to the list joins a shard by itself.
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

import differential  # noqa: E402
import labnet  # noqa: E402
import oracle  # noqa: E402

SKIP = 77


def scenarios(args, tmp: Path) -> list[tuple[str, Path, int | Path]]:
    """(label, scenario file, flow seed or flow file): the checked-in seed, freshly generated ones,
    and services.json with its own flows (a service whose endpoints get different verdicts, which
    the generated scenarios need not have, and named ports)."""
    cases: list[tuple[str, Path, int | Path]] = []
    if args.seed and not args.dual_stack_only:
        cases.append(("seed", args.scenarios / "seed.json", 1))
    cases += dual_stack_cases(args, tmp)
    for seed in [] if args.dual_stack_only else args.seeds:
        path = tmp / f"gen{seed}.json"
        cp = labnet.run([sys.executable, str(HERE / "generate.py"), "--seed", str(seed)])
        path.write_text(cp.stdout)
        cases.append((f"gen{seed}", path, seed))
    if args.services and not args.dual_stack_only:
        cases.append(("services", args.scenarios / "services.json", args.scenarios / "services.flows.jsonl"))
    if not args.dual_stack_only:
        cases += host_endpoint_cases(args, tmp)
    return cases


def host_endpoint_cases(args, tmp: Path) -> list[tuple[str, Path, int | Path]]:
    """Host endpoints: hostendpoints.json with its hand-written flows (every policy class, failsafe,
    both directions to the host and forwarded), and `generate.py --host-endpoints` seeds, whose
    flow counts are --hep-count (HEP flows are a third of them)."""
    cases: list[tuple[str, Path, int | Path]] = []
    if args.hostendpoints:
        cases.append(("hostendpoints", args.scenarios / "hostendpoints.json",
                      args.scenarios / "hostendpoints.flows.jsonl"))
    for seed in args.hep_seeds:
        path = tmp / f"hepgen{seed}.json"
        cp = labnet.run([sys.executable, str(HERE / "generate.py"), "--seed", str(seed), "--host-endpoints"])
        path.write_text(cp.stdout)
        cases.append((f"hepgen{seed}", path, seed))
    return cases


def shard_of(args, cases: list) -> list:
    """--shard K/N: shard K's cases. Each case, in list order, goes to the shard with the fewest
    flows so far (the first of equals): a case weighs its flow count, twice for the scenario that
    also runs with --mark-mask. Every case is in exactly one shard; the same list always splits the
    same way. Without --shard: every case."""
    if not args.shard:
        return cases
    k, n = args.shard
    load, mine = [0] * n, []
    for case in cases:
        label, _, flow_seed = case
        flows = len(flow_seed.read_text().splitlines()) if isinstance(flow_seed, Path) else flow_count(args, label)
        masked = bool(args.mark_mask and args.seeds and label == f"gen{args.seeds[0]}")
        to = load.index(min(load))
        load[to] += flows * (2 if masked else 1)
        if to == k:
            mine.append(case)
    if not mine:  # a shard that checks nothing must not pass
        sys.exit(f"test_differential: --shard {k}/{n}: no scenario in this shard ({len(cases)} in all)")
    return mine


def flow_count(args, label: str) -> int:
    """Flows generated for a scenario without a flow file."""
    return args.hep_count if label.startswith("hepgen") else args.count


def shard_arg(text: str) -> tuple[int, int]:
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit() and int(k) < int(n)):
        raise argparse.ArgumentTypeError(f"{text!r}: K/N with 0 <= K < N")
    return int(k), int(n)


def dual_stack_cases(args, tmp: Path) -> list[tuple[str, Path, int | Path]]:
    """Dual-stack scenarios (--dual-stack seed,services,N,...): seed.json with `"dual_stack": true`,
    and generate.py --seed N --dual-stack, their flows partly IPv6 (generate.py --flows); services.json
    with `"dual_stack": true` and its 9 flows, each also over IPv6 (a v6 ClusterIP whose endpoints get
    different verdicts)."""
    import generate
    import scenario as scn
    cases: list[tuple[str, Path, int | Path]] = []
    for item in args.dual_stack:
        path = tmp / f"{item}-ds.json"
        if item in ("seed", "services"):
            path.write_text(json.dumps({**json.loads((args.scenarios / f"{item}.json").read_text()),
                                        "dual_stack": True}))
            flows: int | Path = 1
            if item == "services":
                v4 = oracle.read_flows(args.scenarios / "services.flows.jsonl")
                gen = generate.FlowGen(scn.load(path), 0)
                flows = tmp / "services-ds.flows.jsonl"
                flows.write_text("".join(json.dumps(f) + "\n" for f in v4 + [gen._as_v6(f) for f in v4]))
            cases.append((f"{item}_ds", path, flows))
        else:
            cp = labnet.run([sys.executable, str(HERE / "generate.py"), "--seed", item, "--dual-stack"])
            path.write_text(cp.stdout)
            cases.append((f"gen{item}_ds", path, int(item)))
    return cases


def attribution_changes(flows: list[dict], default: differential.Stats, masked: differential.Stats) -> list[str]:
    """Flows whose Calico meaning (kind, tier, policy, rule index, stages) differs between the two runs."""
    out = []
    for flow, a, b in zip(flows, default.docs, masked.docs):
        if differential.attribution_key(a) != differential.attribution_key(b):
            out.append(f"  {masked.label}: {flow['src']} -> {flow['dst']} {flow['proto']} {flow.get('dport')}\n"
                       f"    default mask: {((a or {}).get('decided_by') or {}).get('summary')}\n"
                       f"    mark_mask:    {((b or {}).get('decided_by') or {}).get('summary')}")
    return out


def summary_expectations(flows: list[dict], stats: differential.Stats) -> list[str]:
    """Flows with `expect` (hostendpoints.flows.jsonl): every listed text must be in dpinspect's
    summary, so the report names the host endpoint's chain and the policy (or failsafe rule) in
    both layouts, not only the kernel rule."""
    out = []
    for flow, doc in zip(flows, stats.docs):
        summary = ((doc or {}).get("decided_by") or {}).get("summary") or ""
        missing = [e for e in flow.get("expect", []) if e not in summary]
        if missing:
            out.append(f"  {stats.label}: {flow['src']} -> {flow['dst']} {flow['proto']} {flow.get('dport')}: "
                       f"summary lacks {missing}\n    summary: {summary}")
    return out


def random_outcomes(doc: dict | None) -> list[tuple] | None:
    """(endpoint, verdict) of each outcome of a random-endpoint answer, or None for other answers."""
    if not doc or not differential.random_split(doc):
        return None
    return sorted(((differential.outcome_endpoint(o.get("nat")), o["verdict"]) for o in doc["outcomes"]), key=str)


def compare_layouts(dpinspect: str, label: str, snaps: dict, flows: list[dict], tmp: Path,
                    docs: dict) -> list[str]:
    """The same scenario in both layouts, as snapshots of the live labs: `dpinspect compare` must
    find every flow with the same verdict and the same Calico meaning (each side's verdicts were
    just checked against the kernel). A flow to a service whose endpoints get different verdicts is
    `indeterminate` on both sides (a random choice); there the two live reports must have the same
    (endpoint, verdict) outcomes instead."""
    flows_file = tmp / f"{label}.compare.jsonl"
    keep = ("src", "dst", "proto", "dport", "icmp_type", "icmp_code")
    flows_file.write_text("".join(json.dumps({k: f[k] for k in keep if k in f}) + "\n" for f in flows))
    cp = labnet.run([dpinspect, "compare", "--before", str(snaps["nftables"]), "--after", str(snaps["iptables-nft"]),
                     "--flows", str(flows_file), "-o", "json"], check=False, timeout=300)
    try:
        doc = json.loads(cp.stdout)
    except ValueError:
        return [f"  {label}: compare exited {cp.returncode}: {cp.stderr.strip()}"]
    counts = doc["counts"]
    print(f"{label} compare nftables -> iptables-nft: {counts}", flush=True)
    out = []
    random_ok = 0
    for i, f in enumerate(doc["flows"]):
        if f["change"] == "indeterminate":
            nft, ipt = (random_outcomes(docs[layout][i]) for layout in ("nftables", "iptables-nft"))
            if nft is not None and nft == ipt:
                random_ok += 1
                continue
        if f["change"] != "same":
            fl = f["flow"]
            dst = f"[{fl['dst']}]" if ":" in fl["dst"] else fl["dst"]
            out.append(f"  {label} {f['change']}: {fl['proto']} {fl['src']} -> {dst}:{fl['dport']}\n"
                       f"    nftables:     {f['before']['meaning']}\n"
                       f"    iptables-nft: {f['after']['meaning']}")
    if random_ok:
        print(f"{label}: {random_ok} indeterminate = random endpoints with the same outcomes in both layouts")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dpinspect", required=True)
    ap.add_argument("--scenarios", type=Path, default=HERE / "scenarios")
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",") if x], default=[1, 2, 3])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--no-services", dest="services", action="store_false",
                    help="leave out scenarios/services.json (and its flow file)")
    ap.add_argument("--shard", type=shard_arg, default=None,
                    help="K/N: only shard K (0-based) of N (shard_of)")
    ap.add_argument("--no-seed", dest="seed", action="store_false", help="leave out scenarios/seed.json")
    ap.add_argument("--no-hostendpoints", dest="hostendpoints", action="store_false",
                    help="leave out scenarios/hostendpoints.json (and its flow file)")
    ap.add_argument("--hep-seeds", type=lambda s: [int(x) for x in s.split(",") if x], default=[1],
                    help="generate.py --host-endpoints seeds ('' for none)")
    ap.add_argument("--hep-count", type=int, default=80, help="flows per --hep-seeds scenario")
    ap.add_argument("--layouts", type=lambda s: s.split(","), default=list(labnet.LAYOUTS))
    ap.add_argument("--dual-stack", type=lambda s: [x for x in s.split(",") if x], default=[],
                    help="also run these dual-stack scenarios: 'seed' (seed.json), 'services' "
                         "(services.json) and/or generated seeds, e.g. seed,services,2")
    ap.add_argument("--dual-stack-only", action="store_true",
                    help="run only the --dual-stack scenarios (not seed, --seeds, services)")
    ap.add_argument("--mark-mask", default="0xfff00000",
                    help="also run the first generated scenario with this Felix mark mask and require "
                         "the same Calico meaning for every flow ('' to skip)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: test_differential needs root (network namespaces, nftables)")
        return SKIP
    if why := labnet.netns_unusable():
        print(f"SKIP: test_differential: {why}")
        return SKIP
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # still tear the labs down
    labnet.reap_stale()

    t0, results, mask_failures, compare_failures = time.monotonic(), [], [], []
    expect_failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dpl-diff-") as tmpdir:
        tmp = Path(tmpdir)
        for label, scenario, flow_seed in shard_of(args, scenarios(args, tmp)):
            count = flow_count(args, label)
            flows_file = flow_seed if isinstance(flow_seed, Path) else differential.generate_flows(
                scenario, count, flow_seed, tmp / f"{label}.flows.jsonl")
            flows = oracle.read_flows(flows_file)
            masked = None
            if args.mark_mask and args.seeds and label == f"gen{args.seeds[0]}":
                masked = tmp / f"{label}-mask.json"
                masked.write_text(json.dumps({**json.loads(scenario.read_text()), "mark_mask": args.mark_mask}))
            snaps, docs = {}, {}
            for layout in args.layouts:
                name = f"df{os.getpid()}{label}{layout[0]}"
                snaps[layout] = tmp / f"{label}-{layout}.snapshot.json"
                stats = differential.run_one(scenario, layout, flows, args.dpinspect, name, f"{label} {layout}",
                                             snapshot=snaps[layout])
                differential.report(stats)
                results.append(stats)
                expect_failures += summary_expectations(flows, stats)
                docs[layout] = stats.docs
                if masked:
                    # The same node with Felix's mark mask set to other bits: the kernel must still
                    # agree, and the Calico meaning of every flow must be the same as with the default.
                    m = differential.run_one(masked, layout, flows, args.dpinspect, name + "m",
                                             f"{label} mark_mask {args.mark_mask} {layout}")
                    differential.report(m)
                    results.append(m)
                    mask_failures += attribution_changes(flows, stats, m)
            if len(snaps) == 2:
                compare_failures += compare_layouts(args.dpinspect, label, snaps, flows, tmp, docs)

    print(f"\n== summary ({time.monotonic() - t0:.1f} s)")
    for stats in results:
        print(f"{'ok  ' if stats.ok else 'FAIL'} {stats.line()}")
    if args.mark_mask and any(" mark_mask " in s.label for s in results):  # not in every --shard
        print(f"{'ok  ' if not mask_failures else 'FAIL'} mark_mask {args.mark_mask}: "
              f"{len(mask_failures)} flows explained differently than with the default mask")
        for text in mask_failures[:10]:
            print(text)
    if len(args.layouts) == 2:
        print(f"{'ok  ' if not compare_failures else 'FAIL'} compare nftables vs iptables-nft snapshots: "
              f"{len(compare_failures)} problems")
        for text in compare_failures[:10]:
            print(text)
    hep_flows = args.scenarios / "hostendpoints.flows.jsonl"
    ran_hep = any(s.label.startswith("hostendpoints ") for s in results)  # not in every --shard
    if ran_hep and hep_flows.exists() and any("expect" in f for f in oracle.read_flows(hep_flows)):
        print(f"{'ok  ' if not expect_failures else 'FAIL'} summaries name what decided: "
              f"{len(expect_failures)} flows without the expected text")
        for text in expect_failures[:10]:
            print(text)
    failed = [s.label for s in results if not s.ok] + (["mark_mask"] if mask_failures else []) + \
        (["compare"] if compare_failures else []) + (["summaries"] if expect_failures else [])
    if failed:
        print(f"FAILED: disagreements in {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
