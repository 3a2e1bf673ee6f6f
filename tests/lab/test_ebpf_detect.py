#!/usr/bin/env python3
"""`dpinspect detect --netns NODE` on the lab's eBPF node lists the programs attached to its cali*
interfaces, as the kernel reports them.

For the seed's eBPF node (v3.32; dpl-ebpf-attach attaches with tc clsact):
  1. `dpinspect detect --dataplane ebpf --bpffs <globals> --policy-debug-dir <policy> --netns <node>
     -o json` (in the lab's private mount namespace, where its bpffs is) lists, under
     `ebpf.attached.programs`, exactly the (interface, hook, mode, prog id) set that
     `tc -j filter show dev <iface> ingress|egress` reports in the node netns for every cali*
     interface (every pod has one program on each hook), with the program name and tag that
     `bpftool -j prog show id N` gives;
  2. the same ids as `bpftool -j net show` in the node netns (its tc and tcx lists);
  3. the text output has one `attached:` line per program, with its id;
  4. --netns naming a namespace that does not exist: exit 3; the lab's maps are not needed for
     the error (nothing is read).

Usage: test_ebpf_detect.py --dpinspect build/cli/dpinspect [--ebpf-attach build/bpf/dpl-ebpf-attach]
       (root; exit 77 = skipped)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ebpfnode  # noqa: E402
import labnet  # noqa: E402
from test_differential_ebpf import host_state  # noqa: E402
from test_seed_walkthrough import Checks  # noqa: E402

SKIP = 77


def kernel_tc(lab: labnet.Lab) -> set[tuple]:
    """(iface, hook, 'tc', prog id) of every bpf filter on the pods' clsact hooks, per `tc`."""
    out = set()
    for pod in lab.topology["pods"]:
        for hook in ("ingress", "egress"):
            cp = labnet.run(["tc", "-j", "filter", "show", "dev", pod["iface"], hook], ns=lab.node_ns)
            for f in json.loads(cp.stdout or "[]"):
                prog = (f.get("options") or {}).get("prog") or {}
                if "id" in prog:
                    out.add((pod["iface"], hook, "tc", int(prog["id"])))
    return out


def bpftool_net(lab: labnet.Lab) -> set[tuple]:
    """(iface, hook, mode, prog id) from `bpftool net show` in the node netns (tc and tcx)."""
    cp = labnet.run(["bpftool", "-j", "net", "show"], ns=lab.node_ns)
    out = set()
    for block in json.loads(cp.stdout or "[]"):
        for mode in ("tc", "tcx"):
            for e in block.get(mode) or []:
                dev = e.get("devname", "")
                if dev.startswith("cali") and "id" in e:
                    out.add((dev, e.get("kind", "").replace("clsact/", "").replace("tcx/", ""), mode, int(e["id"])))
    return out


def prog_info(prog_id: int) -> dict:
    cp = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)], capture_output=True, text=True,
                        timeout=30)
    return json.loads(cp.stdout) if cp.returncode == 0 and cp.stdout.strip() else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dpinspect", required=True)
    ap.add_argument("--ebpf-attach")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: test_ebpf_detect needs root (network namespaces, BPF)")
        return SKIP
    if why := labnet.netns_unusable() or ebpfnode.unusable():
        print(f"SKIP: test_ebpf_detect: {why}")
        return SKIP
    # Absolute: the commands run under nsenter --mount, whose working directory is not ours.
    args.dpinspect = os.path.abspath(args.dpinspect)
    if args.ebpf_attach:
        os.environ["DPL_EBPF_ATTACH"] = os.path.abspath(args.ebpf_attach)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    labnet.reap_stale()
    prefix = f"{labnet.PREFIX}dt{os.getpid() % 100000}"
    before = host_state(prefix)
    c = Checks()
    name = f"dt{os.getpid() % 100000}"
    with labnet.Lab.up(name, HERE / "scenarios" / "seed.json", labnet.EBPF, owner_pid=os.getpid(),
                       calico_version="3.32") as lab:
        info = lab.info["ebpf"]
        source = ["--dataplane", "ebpf", "--bpffs", info["globals"], "--policy-debug-dir", info["policy_dir"],
                  "--netns", lab.node_ns]
        cp = subprocess.run(ebpfnode.in_node_argv(lab.name, [args.dpinspect, "detect", *source, "-o", "json"]),
                            capture_output=True, text=True, timeout=60)
        c.check(cp.returncode == 0, "detect --netns exits 0", f"exit {cp.returncode}: {cp.stderr.strip()}")
        doc = json.loads(cp.stdout) if cp.stdout.strip() else {}
        attached = (doc.get("ebpf") or {}).get("attached") or {}
        progs = attached.get("programs") or []
        got = {(p["iface"], p["hook"], p["mode"], p["prog_id"]) for p in progs}
        want = kernel_tc(lab)
        pods = len(lab.topology["pods"])
        c.check(len(want) == 2 * pods, f"tc reports one program per hook on each of the {pods} cali* interfaces",
                sorted(want))
        c.check(got == want, "detect lists exactly the programs `tc filter show` reports",
                f"detect {sorted(got)}\n      tc     {sorted(want)}")
        c.check(attached.get("interfaces") == pods, "detect counts the cali* interfaces", attached.get("interfaces"))
        net = bpftool_net(lab)
        c.check({(i, h, m, p) for i, h, m, p in net} == want, "bpftool net show reports the same programs",
                sorted(net))
        bad = []
        for p in progs:
            bi = prog_info(p["prog_id"])
            if bi.get("name") != p["name"] or bi.get("tag") != p["tag"]:
                bad.append((p["prog_id"], p["name"], p["tag"], bi.get("name"), bi.get("tag")))
        c.check(progs and not bad, "each program's name and tag are bpftool's", bad)
        c.check(not attached.get("notes"), "nothing was left unread", attached.get("notes"))

        cp = subprocess.run(ebpfnode.in_node_argv(lab.name, [args.dpinspect, "detect", *source]),
                            capture_output=True, text=True, timeout=60)
        lines = [line for line in cp.stdout.splitlines() if line.startswith("attached:")]
        c.check(cp.returncode == 0 and len(lines) == len(want)
                and all(any(f"prog {p} " in line for line in lines) for _, _, _, p in want),
                "text: one `attached:` line per program, with its id", cp.stdout[-1500:])

        bad_ns = f"{lab.node_ns}-missing"
        cp = subprocess.run(ebpfnode.in_node_argv(lab.name, [args.dpinspect, "detect", "--dataplane", "ebpf",
                                                             "--bpffs", info["globals"], "--netns", bad_ns]),
                            capture_output=True, text=True, timeout=60)
        c.check(cp.returncode == 3 and bad_ns in cp.stderr, "a --netns that does not exist: exit 3, named",
                f"exit {cp.returncode}: {cp.stderr.strip()}")
    after = host_state(prefix)
    c.check(before == after, "host unchanged (/sys/fs/bpf, bpf mounts, ip netns list)",
            [k for k in before if before[k] != after.get(k)])
    print(f"{len(c.failures)} failed" if c.failures else "all checks passed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
