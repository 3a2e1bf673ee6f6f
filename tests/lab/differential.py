"""Differential test: dpinspect's answer vs the kernel's, flow by flow, on one lab.

For a scenario and a layout: bring a lab up, run every flow through the oracle (one trace monitor for
the whole batch), then ask `dpinspect inspect --netns <node> ... --ct new -o json` about the same
flows (with the source port the oracle actually used) and compare:
  verdict   dpinspect allow <-> kernel ACCEPT, deny <-> DROP
  rule      decided_by.rule (family, table, chain, handle) == the kernel's deciding rule
Since iptables-nft compat (xt) expressions are decoded from their kernel payloads, an
`indeterminate` answer is a disagreement in both layouts, printed with both explanations.

A flow to a service with several endpoints (kube-proxy picks one at random) runs as many
connections (oracle.run_random_flow); every (endpoint, verdict, rule) the kernel picked must be one
of dpinspect's outcomes, and every outcome's endpoint must have been picked. dpinspect may answer
such a flow `indeterminate` only because its outcomes differ; an undecided outcome is indeterminate.

CLI: python3 differential.py --scenario S.json --layout nftables --flows F.jsonl --dpinspect PATH
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import labnet
import oracle

HERE = Path(__file__).resolve().parent
VERDICTS = {"allow": "ACCEPT", "deny": "DROP"}
ECHO = {"icmp": 8, "icmpv6": 128}  # echo request, the default ICMP type of a flow


# --------------------------------------------------------------------------------------------
# dpinspect


def dpinspect_argv(binary: str, node_ns: str, flow: dict, sport: int | None) -> list[str]:
    argv = [binary, "inspect", "--netns", node_ns, "--src", flow["src"], "--dst", flow["dst"],
            "--proto", flow["proto"]]
    if flow["proto"] in ("tcp", "udp"):
        if sport:
            argv += ["--sport", str(sport)]
        argv += ["--dport", str(flow["dport"])]
    elif flow["proto"] in ("icmp", "icmpv6"):
        argv += ["--icmp-type", str(flow.get("icmp_type", ECHO[flow["proto"]])),
                 "--icmp-code", str(flow.get("icmp_code", 0))]
    return argv + ["--ct", "new", "-o", "json"]


def run_dpinspect(binary: str, node_ns: str, flow: dict, sport: int | None) -> dict:
    """{"exit", "json" (parsed or None), "stderr", "argv"}; exit 3+ is a dpinspect error."""
    argv = dpinspect_argv(binary, node_ns, flow, sport)
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    try:
        doc = json.loads(cp.stdout) if cp.stdout.strip() else None
    except json.JSONDecodeError:
        doc = None
    return {"exit": cp.returncode, "json": doc, "stderr": cp.stderr.strip()[-2000:], "argv": argv}


def flow_line(flow: dict, sport: int | None) -> dict:
    """The flow as a line of `inspect --flows`, with the same fields dpinspect_argv passes."""
    line = {"src": flow["src"], "dst": flow["dst"], "proto": flow["proto"], "ct": "new"}
    if flow["proto"] in ("tcp", "udp"):
        if sport:
            line["sport"] = sport
        line["dport"] = flow["dport"]
    elif flow["proto"] in ("icmp", "icmpv6"):
        line["icmp_type"] = flow.get("icmp_type", ECHO[flow["proto"]])
        line["icmp_code"] = flow.get("icmp_code", 0)
    return line


def inspect_batch(prefix: list[str], lines: list[dict], repros: list[list[str]], flows_file: Path) -> list[dict]:
    """One `PREFIX --flows FILE -o json` (PREFIX: dpinspect inspect and its source options) for
    every flow, so the node's dataplane is read once: per flow {"exit", "json" (parsed or None),
    "stderr", "argv"} as a run of its own would give; "argv" is that single flow's command line
    (repros), to reproduce it. An error of the whole run (exit 3+) is every flow's."""
    flows_file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    cp = subprocess.run([*prefix, "--flows", str(flows_file), "-o", "json"], capture_output=True, text=True,
                        timeout=600)
    docs: list = []
    if cp.returncode < 3:
        for out in cp.stdout.splitlines():
            try:
                docs.append(json.loads(out))
            except json.JSONDecodeError:
                docs.append(None)
    if len(docs) != len(lines):
        docs = [None] * len(lines)
    exits = {"allow": 0, "deny": 1}
    return [{"exit": max(cp.returncode, 3) if doc is None else exits.get(doc.get("verdict"), 2), "json": doc,
             "stderr": cp.stderr.strip()[-2000:], "argv": argv} for doc, argv in zip(docs, repros)]


def run_dpinspect_batch(binary: str, node_ns: str, flows: list[dict], sports: list[int | None],
                        workdir: Path) -> list[dict]:
    return inspect_batch([binary, "inspect", "--netns", node_ns], [flow_line(f, sp) for f, sp in zip(flows, sports)],
                         [dpinspect_argv(binary, node_ns, f, sp) for f, sp in zip(flows, sports)],
                         workdir / "dpinspect-flows.jsonl")


def dp_rule(doc: dict | None) -> tuple | None:
    rule = ((doc or {}).get("decided_by") or {}).get("rule")
    if not rule:
        return None
    return (rule.get("family"), rule.get("table"), rule.get("chain"), rule.get("handle"))


def kernel_rule(kernel: dict) -> tuple | None:
    rule = kernel.get("deciding_rule")
    if not rule:
        return None
    return (rule["family"], rule["table"], rule["chain"], rule["handle"])


def same_rule(kernel_ref: tuple | None, dp_ref: tuple | None) -> bool:
    """Equal (family, table, chain, handle); a family dpinspect leaves out is not held against it."""
    if kernel_ref is None or dp_ref is None:
        return kernel_ref == dp_ref
    return kernel_ref[1:] == dp_ref[1:] and dp_ref[0] in (None, kernel_ref[0])


# --------------------------------------------------------------------------------------------
# Comparison


def reason_text(reason) -> str:
    """indeterminate_reason is {"expression", "rule", "why"} (a plain string is accepted too)."""
    if isinstance(reason, dict):
        rule = reason.get("rule") or {}
        return (f"{reason.get('why')} [expression {reason.get('expression')!r} in "
                f"{rule.get('table')}/{rule.get('chain')} handle {rule.get('handle')}]")
    return str(reason or "")


@dataclass
class Outcome:
    verdict_ok: bool
    rule_ok: bool
    indeterminate: bool = False
    problem: str = ""


def compare(kernel: dict, dp: dict, layout: str) -> Outcome:
    doc = dp["json"]
    if dp["exit"] >= 3 or doc is None:
        return Outcome(False, False, problem=f"dpinspect error (exit {dp['exit']}): {dp['stderr'][-300:]}")
    if "picks" in kernel:
        return compare_random(kernel, doc)
    verdict = doc.get("verdict")
    if verdict == "indeterminate":
        return Outcome(False, False, indeterminate=True,
                       problem=f"indeterminate: {reason_text(doc.get('indeterminate_reason'))}")
    verdict_ok = VERDICTS.get(verdict) == kernel["verdict"]
    rule_ok = same_rule(kernel_rule(kernel), dp_rule(doc))
    problem = "" if verdict_ok and rule_ok else ("verdict" if not verdict_ok else "rule")
    return Outcome(verdict_ok, rule_ok, problem=problem)


def outcome_endpoint(nat: list[dict] | None) -> str | None:
    """Where a report's (or an outcome's) DNAT sent the flow: the last dnat's "ip:port", or None."""
    to = [n.get("to") for n in nat or [] if n.get("kind") == "dnat"]
    return to[-1] if to else None


def random_split(doc: dict) -> bool:
    """dpinspect's answer for a random choice whose outcomes differ: indeterminate, every outcome decided."""
    outs = doc.get("outcomes") or []
    why = ((doc.get("indeterminate_reason") or {}).get("why") or "") if isinstance(
        doc.get("indeterminate_reason"), dict) else str(doc.get("indeterminate_reason") or "")
    return (doc.get("verdict") == "indeterminate" and "random choice" in why and bool(outs)
            and all(o.get("verdict") in VERDICTS for o in outs))


def dp_answers(doc: dict) -> list[tuple]:
    """(endpoint, kernel verdict name, rule ref) per outcome; a report without outcomes is one answer."""
    outs = doc.get("outcomes") or []
    if not outs:
        return [(outcome_endpoint(doc.get("nat")), VERDICTS.get(doc.get("verdict")), dp_rule(doc))]
    out = []
    for o in outs:
        r = o.get("rule")
        ref = (r.get("family"), r.get("table"), r.get("chain"), r.get("handle")) if r else None
        out.append((outcome_endpoint(o.get("nat")), VERDICTS.get(o.get("verdict")), ref))
    return out


def compare_random(kernel: dict, doc: dict) -> Outcome:
    """A service with several endpoints: the kernel's picks against dpinspect's outcomes.

    Every (endpoint, verdict, deciding rule) the kernel showed must be one of dpinspect's outcomes,
    and every outcome's endpoint must have been picked by some connection. dpinspect's verdict may be
    indeterminate only because its outcomes differ (a random choice), never inside an outcome."""
    verdict = doc.get("verdict")
    outs = doc.get("outcomes") or []
    if verdict == "indeterminate" and not random_split(doc) or any(
            o.get("verdict") not in VERDICTS for o in outs):
        return Outcome(False, False, indeterminate=True,
                       problem=f"indeterminate: {reason_text(doc.get('indeterminate_reason'))}")
    answers = dp_answers(doc)
    verdict_ok = rule_ok = True
    problems = []
    for pick in kernel["picks"]:
        same_ep = [a for a in answers if a[0] == pick["endpoint"] and a[1] == pick["verdict"]]
        if not same_ep:
            verdict_ok = rule_ok = False
            problems.append(f"kernel {pick['endpoint']} {pick['verdict']} (sport {pick['sport']}) not an outcome")
        elif not any(same_rule(kernel_rule(pick), a[2]) for a in same_ep):
            rule_ok = False
            problems.append(f"kernel {pick['endpoint']} {pick['verdict']} by {kernel_rule(pick)} (sport "
                            f"{pick['sport']}): outcomes name {[a[2] for a in same_ep]}")
    picked = {p["endpoint"] for p in kernel["picks"]}
    for a in answers:
        if a[0] not in picked:
            verdict_ok = False
            problems.append(f"outcome {a[0]} {a[1]} never picked in {len(kernel['picks'])} connections")
    problem = "" if verdict_ok and rule_ok else (
        ("verdict" if not verdict_ok else "rule") + ": random endpoints: " + "; ".join(dict.fromkeys(problems)))
    return Outcome(verdict_ok, rule_ok, problem=problem)


@dataclass
class Stats:
    label: str
    total: int = 0
    verdicts: int = 0
    rules: int = 0
    indeterminate: int = 0  # also counted as disagreements
    disagreements: list = field(default_factory=list)
    groups: Counter = field(default_factory=Counter)  # (problem, kernel chain, dpinspect chain) -> flows
    seconds: dict = field(default_factory=dict)
    docs: list = field(default_factory=list)  # dpinspect's JSON report per flow (None on error)
    random_flows: int = 0  # flows to services with several endpoints
    connections: int = 0   # connections those flows sent (picks)
    split: int = 0         # random-endpoint flows whose endpoints got different verdicts

    def line(self) -> str:
        extra = (f", {self.random_flows} random-endpoint flows ({self.connections} connections, "
                 f"{self.split} with verdicts differing by endpoint)" if self.random_flows else "")
        return (f"{self.label}: {self.verdicts}/{self.total} verdicts, {self.rules}/{self.total} rules, "
                f"{self.indeterminate} indeterminate{extra}")

    @property
    def ok(self) -> bool:
        return not self.disagreements


def explain(flow: dict, kernel: dict, dp: dict, outcome: Outcome) -> str:
    doc = dp["json"] or {}
    k_rule = kernel.get("deciding_rule") or {}
    lines = [f"DISAGREE ({outcome.problem}): {flow['from']} -> {flow['to']}  {flow['src']} -> {flow['dst']} "
             f"{flow['proto']} dport={flow.get('dport')} sport={kernel.get('sport')}",
             f"  kernel:    {kernel['verdict']} by {k_rule.get('table')}/{k_rule.get('chain')} "
             f"handle {k_rule.get('handle')}: {k_rule.get('rule')}",
             f"             path {kernel.get('path')}",
             f"  dpinspect: {doc.get('verdict')} by {json.dumps((doc.get('decided_by') or {}).get('rule'))} "
             f"kind={(doc.get('decided_by') or {}).get('kind')}",
             f"             summary: {(doc.get('decided_by') or {}).get('summary')}",
             f"             reason: {reason_text(doc.get('indeterminate_reason'))}",
             f"  repro: {' '.join(dp['argv'])}"]
    if "picks" in kernel:
        lines.insert(3, "             picks " + ", ".join(
            f"{p['sport']}->{p['endpoint']} {p['verdict']}" for p in kernel["picks"]))
        lines.insert(-1, "             outcomes " + "; ".join(
            f"{o.get('choice')} -> {outcome_endpoint(o.get('nat'))} {o.get('verdict')} {json.dumps(o.get('rule'))}"
            for o in doc.get("outcomes") or []))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# One scenario + layout


def generate_flows(scenario: Path, count: int, seed: int, out: Path) -> Path:
    cp = labnet.run([sys.executable, str(HERE / "generate.py"), "--flows", "--scenario", str(scenario),
                     "--count", str(count), "--seed", str(seed)])
    out.write_text(cp.stdout)
    return out


def run_one(scenario: Path | None, layout: str, flows: list[dict], dpinspect: str, lab_name: str,
            label: str | None = None, rendered: Path | None = None,
            snapshot: Path | None = None) -> Stats:
    """snapshot: also save the lab node's dataplane there (`dpinspect snapshot`) before teardown."""
    stats = Stats(label or f"{(scenario or rendered).stem} {layout}", total=len(flows))
    t0 = time.monotonic()
    with labnet.Lab.up(lab_name, scenario, layout, rendered, owner_pid=os.getpid()) as lab:
        t1 = time.monotonic()
        with oracle.Oracle(lab, counters=False, timeout=0.5) as orc:
            kernels = []
            for f in flows:
                endpoints = orc.service_endpoints(f)
                kernels.append(orc.run_random_flow(f, endpoints) if len(endpoints) > 1 else orc.run_flow(f))
        t2 = time.monotonic()
        # Kept for debugging a failure (and by a mock dpinspect in development).
        (labnet.state_dir(lab_name) / "kernel.jsonl").write_text(
            "".join(json.dumps({**f, "kernel": k}) + "\n" for f, k in zip(flows, kernels)))
        answers = run_dpinspect_batch(dpinspect, lab.node_ns, flows, [k.get("sport") for k in kernels],
                                      labnet.state_dir(lab_name))
        t3 = time.monotonic()
        if snapshot:
            labnet.run([dpinspect, "snapshot", "--netns", lab.node_ns, "-o", str(snapshot)])
    stats.seconds = {"up": round(t1 - t0, 2), "oracle": round(t2 - t1, 2), "dpinspect": round(t3 - t2, 2),
                     "total": round(time.monotonic() - t0, 2)}
    for flow, kernel, dp in zip(flows, kernels, answers):
        stats.docs.append(dp["json"])
        if "picks" in kernel:
            stats.random_flows += 1
            stats.connections += len(kernel["picks"])
            stats.split += len({p["verdict"] for p in kernel["picks"]}) > 1
        outcome = compare(kernel, dp, layout)
        stats.verdicts += outcome.verdict_ok
        stats.rules += outcome.rule_ok
        stats.indeterminate += outcome.indeterminate
        if outcome.problem:
            stats.disagreements.append(explain(flow, kernel, dp, outcome))
            stats.groups[disagreement_group(kernel, dp, outcome)] += 1
    return stats


def _decision_key(d: dict | None) -> tuple:
    if not d:
        return ()
    pol = d.get("policy") or {}
    # Rule texts in summaries carry the mark values themselves.
    summary = re.sub(r"0x[0-9a-f]+|packets \d+ bytes \d+", "?", d.get("summary") or "")
    return (d.get("kind"), d.get("action"), d.get("direction"), d.get("endpoint"), d.get("tier"),
            pol.get("kind"), pol.get("namespace"), pol.get("name"), d.get("rule_index"),
            d.get("rule_index_exact"), json.dumps(d.get("nflog")), summary)


def attribution_key(doc: dict | None) -> tuple:
    """What dpinspect says a flow means in Calico's terms, without rule texts and mark values: equal
    for the same scenario rendered with another mark mask."""
    if not doc:
        return ("no report",)
    return (doc.get("verdict"), _decision_key(doc.get("decided_by")),
            tuple((s.get("role"), s.get("endpoint"), s.get("outcome"), _decision_key(s.get("decision")))
                  for s in doc.get("stages") or []))


def disagreement_group(kernel: dict, dp: dict, outcome: Outcome) -> tuple:
    """Disagreements sharing a cause usually share this: what kind, which chain each side named."""
    k = kernel.get("deciding_rule") or {}
    d = ((dp["json"] or {}).get("decided_by") or {}).get("rule") or {}
    return (outcome.problem.split(":")[0], f"{kernel['verdict']} {k.get('table')}/{k.get('chain')}",
            f"{(dp['json'] or {}).get('verdict')} {d.get('table')}/{d.get('chain')}")


def report(stats: Stats, out=sys.stdout, max_shown: int = 10) -> None:
    print(f"{stats.line()}  ({stats.seconds})", file=out, flush=True)
    for (problem, k, d), n in stats.groups.most_common():
        print(f"  {n:4d} x {problem}: kernel {k}  vs  dpinspect {d}", file=out)
    for text in stats.disagreements[:max_shown]:
        print(text, file=out)
    if len(stats.disagreements) > max_shown:
        print(f"  ... and {len(stats.disagreements) - max_shown} more disagreements", file=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", type=Path)
    ap.add_argument("--rendered", type=Path, help="pre-rendered directory instead of --scenario")
    ap.add_argument("--layout", choices=labnet.LAYOUTS, required=True)
    ap.add_argument("--flows", type=Path, help="flows JSONL (default: generate.py --count 200 --seed 1)")
    ap.add_argument("--dpinspect", required=True)
    ap.add_argument("--name", default=f"diff{os.getpid()}")
    args = ap.parse_args(argv)
    if not args.scenario and not args.rendered:
        ap.error("need --scenario or --rendered")
    if args.flows:
        flows = oracle.read_flows(args.flows)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            flows = oracle.read_flows(generate_flows(args.scenario, 200, 1, Path(tmp) / "flows.jsonl"))
    stats = run_one(args.scenario, args.layout, flows, args.dpinspect, args.name, rendered=args.rendered)
    report(stats, max_shown=50)
    return 0 if stats.ok else 1


if __name__ == "__main__":
    sys.exit(main())
