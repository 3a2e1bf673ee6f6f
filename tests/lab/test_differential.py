#!/usr/bin/env python3
"""Differential test: dpinspect vs the kernel on seed.json and generated scenarios, both layouts.

For each scenario (seed.json, and generate.py --seed 1, 2, 3) and each layout (nftables,
iptables-nft): one lab, 200 generated flows, each through the kernel oracle and through dpinspect.
Every verdict and every deciding rule must agree, in both layouts; `indeterminate` counts as a
disagreement. Prints one line per scenario/layout:

    seed nftables: 200/200 verdicts, 200/200 rules, 0 indeterminate  ({'up': 0.4, 'oracle': 5.1, ...})

Usage: test_differential.py --dpinspect build/cli/dpinspect [--seeds 1,2,3] [--count 200]
(root; exit 77 = skipped)
"""

from __future__ import annotations

import argparse
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


def scenarios(args, tmp: Path) -> list[tuple[str, Path, int]]:
    """(label, scenario file, flow seed): the checked-in seed plus freshly generated ones."""
    cases = [("seed", args.scenarios / "seed.json", 1)]
    for seed in args.seeds:
        path = tmp / f"gen{seed}.json"
        cp = labnet.run([sys.executable, str(HERE / "generate.py"), "--seed", str(seed)])
        path.write_text(cp.stdout)
        cases.append((f"gen{seed}", path, seed))
    return cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dpinspect", required=True)
    ap.add_argument("--scenarios", type=Path, default=HERE / "scenarios")
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",") if x], default=[1, 2, 3])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--layouts", type=lambda s: s.split(","), default=list(labnet.LAYOUTS))
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: test_differential needs root (network namespaces, nftables)")
        return SKIP
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # still tear the labs down
    labnet.reap_stale()

    t0, results = time.monotonic(), []
    with tempfile.TemporaryDirectory(prefix="dpl-diff-") as tmpdir:
        tmp = Path(tmpdir)
        for label, scenario, flow_seed in scenarios(args, tmp):
            flows_file = differential.generate_flows(scenario, args.count, flow_seed, tmp / f"{label}.flows.jsonl")
            flows = oracle.read_flows(flows_file)
            for layout in args.layouts:
                name = f"df{os.getpid()}{label}{layout[0]}"
                stats = differential.run_one(scenario, layout, flows, args.dpinspect, name, f"{label} {layout}")
                differential.report(stats)
                results.append(stats)

    print(f"\n== summary ({time.monotonic() - t0:.1f} s)")
    for stats in results:
        print(f"{'ok  ' if stats.ok else 'FAIL'} {stats.line()}")
    failed = [s.label for s in results if not s.ok]
    if failed:
        print(f"FAILED: disagreements in {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
