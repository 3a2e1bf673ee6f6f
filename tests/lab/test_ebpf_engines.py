#!/usr/bin/env python3
"""inspect's two engines on the lab's eBPF node: the interpreter and the kernel must agree.

For seed.json and generate.py --seed 1, each as an eBPF node of Calico v3.30 and v3.32 (--versions):
  1. lab up --dataplane ebpf; flows from generate.py --flows (--count, explicit source ports)
  2. per flow, in the lab's private mount namespace and node netns:
       dpinspect inspect --dataplane ebpf --bpffs <globals> --policy-debug-dir <policy> --engine interp -o json
       dpinspect inspect ... --engine both -o json
     `both` must not be indeterminate; its verdict, decided_by (kind, tier,
     policy, rule index, the BPF rule's Calico rule id) and every stage's rule id must equal the
     interpreter's; every stage that ran a policy program must carry both engines' answers with
     `agree: true`, and the report `engines_agree: true`; its evidence says engine `both`.
     At least half the flows must have run a policy program in both engines (so the test cannot
     pass on flows that never reach one).
  3. `dpinspect snapshot` of the node, then `inspect --ruleset <snapshot> --engine both` on a few
     flows offline: the same answers; and as an unprivileged user (setpriv, uid 65534) `--engine
     kernel` exits 4 with one line naming root.
  4. `bpftool prog list` before the first and after the last dpinspect run: no program dpinspect
     loads (`dpi_pol_<k>`, `allowed_stub`, `drop_stub`) is left loaded, held by no process or a
     dpinspect (other users' labs and engine tests run on the machine meanwhile: theirs are held
     by their own processes, and the lab tests' own stubs, which a node's maps hold after their
     loader let go, are named lab_allow_stub / lab_drop_stub); the lab's bpffs has the same
     entries (nothing pinned).
At the end the host's /sys/fs/bpf, bpf mounts and our dpl-* netns are as before.

Usage: test_ebpf_engines.py --dpinspect build/cli/dpinspect [--ebpf-attach build/bpf/dpl-ebpf-attach]
       [--count 100] [--versions 3.30,3.32]   (root; exit 77 = skipped)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
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
from test_ebpf_inspect import bpf_rule_id, ebpf_source, flow_args, flow_text, run_json, with_sports  # noqa: E402

SKIP = 77
OFFLINE_FLOWS = 10


class Checks:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}" + ("" if ok or not detail else f"\n       {detail}"), flush=True)
        if not ok:
            self.failures.append(what)
        return ok


# The names the kernel engine gives what it loads (backends/ebpf/kernel_policy.cpp).
def dpinspect_named(name: str) -> bool:
    return name.startswith("dpi_pol_") or name in ("allowed_stub", "drop_stub")


def loaded_programs() -> dict[int, str]:
    cp = subprocess.run(["bpftool", "-j", "prog", "list"], capture_output=True, text=True, timeout=60)
    if cp.returncode != 0:
        raise labnet.LabError(f"bpftool prog list: {cp.stderr.strip()}")
    return {p["id"]: p.get("name", "") for p in json.loads(cp.stdout or "[]")}


def prog_holders() -> dict[int, set[str]]:
    """prog id -> the commands holding an fd to it (/proc/*/fdinfo's prog_id; this bpftool
    lists no pids)."""
    out: dict[int, set[str]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            for fd in os.listdir(f"/proc/{pid}/fdinfo"):
                for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
                    if line.startswith("prog_id:"):
                        out.setdefault(int(line.split()[1]), set()).add(comm)
        except OSError:
            continue  # gone meanwhile
    return out


def left_by_dpinspect(before: dict[int, str]) -> dict[int, str]:
    """Programs loaded since `before` that dpinspect could have left: its names, held by no process
    or by a dpinspect. Other users of the machine run labs and the engine tests meanwhile, whose
    programs are held by their own processes; a program whose holder just exited is freed, so a
    suspect must still be there, unheld, three times a second apart."""
    suspects: dict[int, str] | None = None
    for _ in range(3):
        after, holders = loaded_programs(), prog_holders()
        now = {i: n for i, n in after.items() if i not in before and dpinspect_named(n)
               and holders.get(i, set()) <= {"dpinspect"}}
        suspects = now if suspects is None else {i: n for i, n in suspects.items() if i in now}
        if not suspects:
            return {}
        time.sleep(1)
    return suspects or {}


def bpffs_files(lab: labnet.Lab) -> list[str]:
    root = str(Path(lab.info["ebpf"]["globals"]).parent.parent)
    cp = subprocess.run(ebpfnode.in_node_argv(lab.name, ["find", root]), capture_output=True, text=True, timeout=60)
    return sorted(cp.stdout.split()) if cp.returncode == 0 else [f"find failed: {cp.stderr.strip()}"]


def answer(doc: dict | None) -> tuple:
    """What the two engines must give alike: verdict, the deciding rule, each stage's rule."""
    if not doc:
        return ("no report",)
    d = doc.get("decided_by") or {}
    policy = d.get("policy") or {}
    stages = tuple((s.get("role"), s.get("endpoint"), s.get("outcome"),
                    bpf_rule_id((s.get("decision") or {}).get("rule"))) for s in doc.get("stages") or [])
    return (doc.get("verdict"), d.get("kind"), d.get("action"), d.get("tier"), policy.get("kind"),
            policy.get("namespace"), policy.get("name"), d.get("rule_index"), bpf_rule_id(d.get("rule")),
            d.get("summary"), stages)


def reason(doc: dict | None) -> str:
    r = (doc or {}).get("indeterminate_reason") or {}
    return f"{r.get('expr')}: {r.get('why')}"


def check_both(interp: dict, both: dict) -> tuple[str, bool]:
    """('' or what is wrong, whether a policy program ran in both engines)."""
    if both["exit"] >= 3 or both["json"] is None:
        return f"--engine both: exit {both['exit']}: {both['stderr'][-300:]}", False
    if interp["exit"] >= 3 or interp["json"] is None:
        return f"--engine interp: exit {interp['exit']}: {interp['stderr'][-300:]}", False
    di, db = interp["json"], both["json"]
    ev = (db.get("evidence") or {}).get("ebpf") or {}
    if ev.get("engine") != "both":
        return f"--engine both: evidence engine {ev.get('engine')!r}", False
    ran = [s for s in ev.get("stages") or [] if "engines" in s]
    for s in ran:
        e = s["engines"]
        if e.get("agree") is not True or e.get("interp") is None or e.get("kernel") is None:
            return f"stage {s.get('hook')} {s.get('prog_name')}: engines {json.dumps(e)}", bool(ran)
    if ran and ev.get("engines_agree") is not True:
        return f"engines_agree {ev.get('engines_agree')!r} with {len(ran)} stages run", True
    if db.get("verdict") == "indeterminate":
        return f"--engine both indeterminate (interp {di.get('verdict')}): {reason(db)}", bool(ran)
    if answer(db) != answer(di):
        return f"answers differ:\n      interp {answer(di)}\n      both   {answer(db)}", bool(ran)
    if both["exit"] != interp["exit"]:
        return f"exit codes: interp {interp['exit']}, both {both['exit']}", bool(ran)
    return "", bool(ran)


def run_case(c: Checks, label: str, scenario: Path, version: str, flows: list[dict], dpinspect: str,
             tmp: Path) -> None:
    name = f"en{os.getpid() % 100000}{label}{version.replace('.', '')}"
    print(f"== {label}, eBPF node v{version} (lab {name}), {len(flows)} flows", flush=True)
    t0 = time.monotonic()
    with labnet.Lab.up(name, scenario, labnet.EBPF, owner_pid=os.getpid(), calico_version=version) as lab:
        progs_before, pins_before = loaded_programs(), bpffs_files(lab)

        def argv(f: dict, engine: str, source: list[str] | None = None) -> list[str]:
            src = ebpf_source(lab) if source is None else source
            return ebpfnode.in_node_argv(lab.name, [dpinspect, "inspect", *src, "--engine", engine, *flow_args(f)])

        interp, both = (differential.inspect_batch(
            ebpfnode.in_node_argv(lab.name, [dpinspect, "inspect", *ebpf_source(lab), "--engine", engine]),
            [differential.flow_line(f, f.get("sport")) for f in flows], [argv(f, engine) for f in flows],
            labnet.state_dir(name) / f"flows-{engine}.jsonl") for engine in ("interp", "both"))
        problems, ran = [], 0
        for f, i, b in zip(flows, interp, both):
            what, engines_ran = check_both(i, b)
            ran += engines_ran
            if what:
                problems.append(f"{flow_text(f)}\n    {what}\n    repro: {' '.join(b['argv'][5:])}")
        c.check(not problems, f"{label} v{version}: --engine both agrees with --engine interp on every flow "
                f"({len(flows) - len(problems)}/{len(flows)}, none indeterminate; {ran} ran policy programs "
                f"in both engines)",
                "\n       ".join(problems[:10]))
        c.check(ran * 2 >= len(flows), f"{label} v{version}: at least half the flows ran a policy program "
                f"in both engines ({ran}/{len(flows)})")

        # Offline: the kernel engine runs a snapshot's programs just as well.
        snap = tmp / f"{name}.snap"
        cp = subprocess.run(ebpfnode.in_node_argv(lab.name, [dpinspect, "snapshot", *ebpf_source(lab, dataplane=False),
                                                             "-o", str(snap)]),
                            capture_output=True, text=True, timeout=120)
        if c.check(cp.returncode == 0, f"{label} v{version}: snapshot of the eBPF node", cp.stderr.strip()[-300:]):
            offline = [run_json([dpinspect, "inspect", "--ruleset", str(snap), "--dataplane", "ebpf", "--engine",
                                 "both", *flow_args(f)]) for f in flows[:OFFLINE_FLOWS]]
            bad = [f"{flow_text(f)}: {w}" for f, i, o in zip(flows, interp, offline)
                   for w, _ in [check_both(i, o)] if w]
            c.check(not bad, f"{label} v{version}: --ruleset <snapshot> --engine both answers as live interp "
                    f"({OFFLINE_FLOWS} flows)", "\n       ".join(bad[:5]))
            os.chmod(tmp, 0o755)
            os.chmod(snap, 0o644)
            cp = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", dpinspect, "inspect",
                                 "--ruleset", str(snap), "--engine", "kernel", *flow_args(flows[0])],
                                capture_output=True, text=True, timeout=60)
            err = cp.stderr.strip()
            c.check(cp.returncode == 4 and len(err.splitlines()) == 1 and "needs root" in err,
                    f"{label} v{version}: --engine kernel unprivileged exits 4 with one line naming root",
                    f"exit {cp.returncode}: {err[:300]}")

        left = left_by_dpinspect(progs_before)
        c.check(not left, f"{label} v{version}: no program dpinspect loaded stays loaded after it exits",
                f"left {left}")
        pins_after = bpffs_files(lab)
        c.check(pins_after == pins_before and len(pins_before) > 10,
                f"{label} v{version}: the lab's bpffs is as before ({len(pins_before)} entries)",
                f"before {pins_before}\n       after  {pins_after}")
    print(f"   ({round(time.monotonic() - t0, 1)} s)", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dpinspect", required=True)
    ap.add_argument("--ebpf-attach", help="dpl-ebpf-attach binary (default: found by ebpfnode.py)")
    ap.add_argument("--scenarios", type=Path, default=HERE / "scenarios")
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",") if x], default=[1])
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--versions", type=lambda s: [v for v in s.split(",") if v], default=["3.30", "3.32"])
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: test_ebpf_engines needs root (network namespaces, BPF)")
        return SKIP
    if why := labnet.netns_unusable() or ebpfnode.unusable():
        print(f"SKIP: test_ebpf_engines: {why}")
        return SKIP
    if args.ebpf_attach:
        os.environ["DPL_EBPF_ATTACH"] = args.ebpf_attach
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # still tear the labs down
    labnet.reap_stale()
    prefix = f"{labnet.PREFIX}en{os.getpid() % 100000}"
    before = host_state(prefix)
    c = Checks()
    with tempfile.TemporaryDirectory(prefix="dpl-ebpf-engines-") as tmpdir:
        tmp = Path(tmpdir)
        cases = [("seed", args.scenarios / "seed.json", 1)]
        for seed in args.seeds:
            path = tmp / f"gen{seed}.json"
            path.write_text(labnet.run([sys.executable, str(HERE / "generate.py"), "--seed", str(seed),
                                          "--single-endpoint-services", "--no-named-ports"]).stdout)
            cases.append((f"gen{seed}", path, seed))
        for label, scenario, flow_seed in cases:
            pods = json.loads(scenario.read_text())["pods"]
            flows = with_sports(oracle.read_flows(differential.generate_flows(
                scenario, args.count, flow_seed, tmp / f"{label}.flows.jsonl")), pods)
            for version in args.versions:
                sc = tmp / f"{label}-{version}.json"
                sc.write_text(json.dumps({**json.loads(scenario.read_text()), "calico_version": version}))
                try:
                    run_case(c, label, sc, version, flows, args.dpinspect, tmp)
                except (labnet.LabError, OSError, subprocess.SubprocessError) as e:
                    c.check(False, f"{label} v{version}: the eBPF node builds and dpinspect runs", str(e))
    after = host_state(prefix)
    c.check(before == after, "host unchanged (/sys/fs/bpf, bpf mounts, ip netns list)",
            f"before {before}\n       after  {after}")
    print(f"{'FAILED: ' + '; '.join(c.failures) if c.failures else 'all eBPF engine checks passed'}")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
