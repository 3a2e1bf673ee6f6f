#!/usr/bin/env python3
"""Real GKE Calico rules (../shared/fixtures/real-world) against the verdicts the kernel recorded.

Each dump is loaded with ipset + iptables-nft-restore into a private node namespace shaped like
the node in its meta.json (uplink, workload veths, /32 routes). For each of the 23 flows,
dpinspect reads that namespace live and must give the kernel's verdict and deciding rule
(table, chain, handle), or `indeterminate` naming an iptables-nft compat (xt) expression.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netnslib import SKIP, Node, root_args  # noqa: E402


def run_dpinspect(binary, ns, flow):
    args = [binary, "inspect", "--netns", ns, "--src", flow["src"], "--dst", flow["dst"],
            "--proto", flow["proto"], "-o", "json"]
    if flow.get("dport") is not None:
        args += ["--dport", str(flow["dport"])]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode > 2:
        raise RuntimeError(f"dpinspect failed ({p.returncode}): {p.stderr.strip()}")
    return json.loads(p.stdout), p.returncode


def main():
    a = root_args(__doc__)
    if a is None:
        return SKIP
    flows = [json.loads(l) for l in open(os.path.join(a.fixtures, "flows.jsonl"))]
    dumps = sorted({f["dump"] for f in flows})
    passed = failed = indeterminate = 0
    for dump in dumps:
        meta = json.load(open(os.path.join(a.fixtures, dump + ".meta.json")))
        with Node(dump, meta) as node:
            node.load(os.path.join(a.fixtures, dump + ".ipsets"), os.path.join(a.fixtures, dump + ".load"))
            for f in (f for f in flows if f["dump"] == dump):
                rep, rc = run_dpinspect(a.dpinspect, node.ns, f)
                k = f["kernel"]
                want_verdict = {"ACCEPT": "allow", "DROP": "deny"}[k["verdict"]]
                want_rule = (k["deciding_rule"].get("table"), k["deciding_rule"].get("chain"),
                             k["deciding_rule"].get("handle"))
                rule = rep["decided_by"].get("rule") or {}
                got_rule = (rule.get("table"), rule.get("chain"), rule.get("handle"))
                expected_rc = {"allow": 0, "deny": 1, "indeterminate": 2}[rep["verdict"]]
                if rep["verdict"] == "indeterminate":
                    why = (rep.get("indeterminate_reason") or {}).get("why", "")
                    ok = "iptables-nft compat" in why and rc == 2
                    indeterminate += 1
                    status = "indeterminate (xt)" if ok else "WRONG indeterminate"
                else:
                    ok = rep["verdict"] == want_verdict and got_rule == want_rule and rc == expected_rc
                    status = "ok" if ok else "MISMATCH"
                print(f"{f['id']:6} {status:20} kernel {k['verdict']:6} {want_rule}  dpinspect "
                      f"{rep['verdict']:13} {got_rule}  {rep['decided_by'].get('summary', '')}")
                if not ok:
                    print("   dpinspect said:", json.dumps(rep.get("indeterminate_reason") or rep["decided_by"]))
                passed += ok
                failed += not ok
    print(f"real-world flows: {passed} agree with the kernel ({indeterminate} of them indeterminate on an xt match), "
          f"{failed} disagree")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
