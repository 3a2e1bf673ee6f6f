#!/usr/bin/env python3
"""dpinspect is read-only on an eBPF node: every pinned map's bytes are unchanged by every command.

On the lab's eBPF node (seed.json, v3.32; --versions 3.30,3.32 for both): dump every map pinned in the lab's bpffs (every
key and value, per-CPU values of every CPU; prog arrays as the program ids in their slots, with each
program's tag; bpftool, in the lab's mount namespace), the policy-debug JSON files and the manifest (sha256, mode, mtime); then for each
dpinspect command

  inspect --dataplane ebpf      a denied flow and an allowed one through a service
  inspect --dataplane auto      the denied flow
  inspect --counters            the denied flow (its rule counter read twice)
  detect, detect --netns (also lists the programs attached to cali* interfaces)
  snapshot -o FILE
  compare --before FILE --after FILE   (compare has no --bpffs yet: an eBPF side is a snapshot)

(all with --bpffs <globals> --policy-debug-dir <policy>, in the lab's private mount namespace and node
netns) require it to succeed (exit 0/1/2, inspect; 0 detect, snapshot, compare) and dump again: the
dump must equal the first one byte for byte. Nothing is excluded, counters and conntrack included:
no traffic is sent during the check. The kernel's own IPv6 chatter (router solicitations, MLD) would
go through the tc programs and count, so IPv6 is disabled in the lab's namespaces first, and the
check starts only once two dumps a second apart are equal; a quiet interval without any command is
checked the same way, so a changing map is blamed on a command only if it moves with it.

Usage: test_ebpf_readonly.py --dpinspect build/cli/dpinspect [--ebpf-attach ...] [--versions 3.32]
       test_ebpf_readonly.py dump BPFFS_DIR POLICY_DIR MANIFEST    (internal: in the lab's mount ns)
"""

from __future__ import annotations

import argparse
import hashlib
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

SKIP = 77


# --------------------------------------------------------------------------------------------
# The dump (runs inside the lab's mount namespace)


def _bpftool_batch(lines: list[str]) -> list:
    """One bpftool process for many commands (a map dump of 240 000 prog-array slots is syscall
    bound: C, not Python)."""
    with tempfile.NamedTemporaryFile("w", suffix=".bpftool") as f:
        f.write("".join(line + "\n" for line in lines))
        f.flush()
        cp = subprocess.run(["bpftool", "-j", "batch", "file", f.name], capture_output=True, text=True)
    if cp.returncode != 0:
        raise RuntimeError(f"bpftool batch: {cp.stderr.strip()[-500:]}")
    return json.loads(cp.stdout)


def _value_bytes(hexes: list[str]) -> bytes:
    return bytes(int(h, 16) for h in hexes)


def dump(bpffs: str, policy_dir: str, manifest: str) -> dict:
    """Every map pinned under bpffs: its info (`map show`) and every entry (`map dump`: per-CPU
    values of every CPU; prog arrays as the program ids in their occupied slots), the programs those
    hold (name, tag, size, map ids), and the files of the policy dir plus the manifest."""
    pins = []
    for root, _dirs, files in os.walk(bpffs):
        for name in sorted(files):
            if root == bpffs and name in ("maps.debug", "progs.debug"):
                continue  # the kernel's bpf_preload iterators of every bpffs, not pins
            pins.append(os.path.join(root, name))
    out: dict = {"maps": {}, "programs": {}, "files": {}}
    results = _bpftool_batch([f"map show pinned {p}" for p in pins] + [f"map dump pinned {p}" for p in pins])
    prog_ids: set[int] = set()
    for path, show, entries in zip(pins, results[:len(pins)], results[len(pins):]):
        info = show.get("output") or {}
        info = {k: v for k, v in info.items() if k not in ("bytes_memlock", "frozen", "pinned")}
        out["maps"][path] = {"info": info, "entries": entries.get("output"), "error": entries.get("error")}
        if info.get("type") == "prog_array":
            prog_ids |= {int.from_bytes(_value_bytes(e["value"]), "little") for e in entries.get("output") or []}
    if prog_ids:
        for pid, res in zip(sorted(prog_ids), _bpftool_batch([f"prog show id {i}" for i in sorted(prog_ids)])):
            o = res.get("output") or {}
            out["programs"][str(pid)] = [o.get("name"), o.get("tag"), o.get("bytes_xlated"), o.get("map_ids")]
    for path in sorted(Path(policy_dir).glob("*")) + [Path(manifest)]:
        st = path.stat()
        out["files"][str(path)] = [hashlib.sha256(path.read_bytes()).hexdigest(), oct(st.st_mode), st.st_mtime_ns]
    return out


def differences(a: dict, b: dict) -> list[str]:
    out = []
    for section in ("maps", "programs", "files"):
        for k in sorted(set(a[section]) | set(b[section])):
            x, y = a[section].get(k), b[section].get(k)
            if x == y:
                continue
            if section == "maps" and x and y and x.get("info") == y.get("info"):
                ex = {json.dumps(e.get("key")): e for e in x.get("entries") or []}
                ey = {json.dumps(e.get("key")): e for e in y.get("entries") or []}
                moved = [key for key in sorted(set(ex) | set(ey)) if ex.get(key) != ey.get(key)]
                first = moved[0] if moved else None
                out.append(f"map {k}: {len(moved)} entries differ (first: {str(ex.get(first))[:200]} -> "
                           f"{str(ey.get(first))[:200]})")
            else:
                out.append(f"{section[:-1]} {k}: {x} -> {y}")
    return out


# --------------------------------------------------------------------------------------------
# The check


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "dump":
        json.dump(dump(*sys.argv[2:5]), sys.stdout, sort_keys=True)
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dpinspect", required=True)
    ap.add_argument("--ebpf-attach", help="dpl-ebpf-attach binary (default: found by ebpfnode.py)")
    ap.add_argument("--scenarios", type=Path, default=HERE / "scenarios")
    ap.add_argument("--versions", type=lambda s: s.split(","), default=["3.32"])
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: test_ebpf_readonly needs root (network namespaces, BPF)")
        return SKIP
    import ebpfnode  # noqa: E402
    import labnet  # noqa: E402
    from test_differential_ebpf import host_state  # noqa: E402
    if why := labnet.netns_unusable():
        print(f"SKIP: test_ebpf_readonly: {why}")
        return SKIP
    if args.ebpf_attach:
        os.environ["DPL_EBPF_ATTACH"] = args.ebpf_attach
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    labnet.reap_stale()
    prefix = f"{labnet.PREFIX}ro{os.getpid() % 100000}"
    before_host = host_state(prefix)
    failures, passed = [], 0

    for version in args.versions:
        name = f"ro{os.getpid() % 100000}{version.replace('.', '')}"
        print(f"== seed.json, eBPF node v{version} (lab {name})", flush=True)
        with tempfile.TemporaryDirectory(prefix="dpl-ebpf-ro-") as tmpdir, \
                labnet.Lab.up(name, args.scenarios / "seed.json", labnet.EBPF, owner_pid=os.getpid(),
                              calico_version=version) as lab:
            info = lab.info["ebpf"]
            for ns in labnet.lab_namespaces(name):
                for key in ("net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"):
                    labnet.run(["sysctl", "-qw", f"{key}=1"], ns=ns, check=False)

            def snap_state() -> dict:
                cp = subprocess.run(ebpfnode.in_node_argv(name, [sys.executable, str(Path(__file__).resolve()),
                                                                 "dump", info["bpffs"], info["policy_dir"],
                                                                 info["manifest"]]),
                                    capture_output=True, text=True, timeout=120)
                if cp.returncode != 0:
                    raise labnet.LabError(f"dump failed: {cp.stderr.strip()[-1000:]}")
                return json.loads(cp.stdout)

            state = snap_state()
            for _ in range(20):  # settle: the links just came up
                time.sleep(1.0)
                again = snap_state()
                if again == state:
                    break
                state = again
            else:
                failures.append(f"v{version}: the maps never stopped changing without any command: "
                                f"{differences(state, again)[:3]}")
                continue
            n_maps = len(state["maps"])
            n_entries = sum(len(m.get("entries") or []) for m in state["maps"].values())
            print(f"   {n_maps} pinned maps, {n_entries} entries, {len(state['programs'])} programs, "
                  f"{len(state['files'])} files", flush=True)
            if n_maps < 10 or not state["programs"] or not any(f.endswith(".json") for f in state["files"]):
                failures.append(f"v{version}: the dump is too small to prove anything: {n_maps} maps, "
                                f"{len(state['programs'])} programs")
                continue

            where = ["--bpffs", info["globals"], "--policy-debug-dir", info["policy_dir"]]
            src, auto = ["--dataplane", "ebpf", *where], ["--dataplane", "auto", *where]
            snap = Path(tmpdir) / "ebpf.snap"
            flows = Path(tmpdir) / "flows.jsonl"
            flows.write_text('{"src": "10.65.0.2", "dst": "10.65.0.5", "proto": "tcp", "dport": 9001}\n'
                             '{"src": "10.65.0.2", "dst": "10.96.0.10", "proto": "tcp", "dport": 80}\n')
            denied = ["--src", "10.65.0.2", "--dst", "10.65.0.5", "--proto", "tcp", "--dport", "9001", "--ct", "new"]
            commands = [
                ("quiet interval (no command)", None, None),
                ("inspect denied tcp", ["inspect", *src, *denied, "-o", "json"], (1,)),
                ("inspect allowed tcp via service", ["inspect", *src, "--src", "10.65.0.2", "--dst", "10.96.0.10",
                                                     "--proto", "tcp", "--dport", "80", "--ct", "new"], (0,)),
                ("inspect --dataplane auto", ["inspect", *auto, *denied], (1,)),
                # Reads cali_rule_ctrs2 twice (read-only fd).
                ("inspect --counters", ["inspect", *src, *denied, "--counters", "--interval", "0.2",
                                        "-o", "json"], (1,)),
                ("detect", ["detect", *src], (0,)),
                # Also lists the programs attached to the cali* interfaces (rtnetlink, BPF_PROG_QUERY).
                ("detect --netns", ["detect", *src, "--netns", lab.node_ns], (0,)),
                ("snapshot", ["snapshot", *where, "-o", str(snap)], (0,)),
                # compare has no --bpffs yet (docs/compare.md): the eBPF side is the snapshot.
                ("compare snapshot vs snapshot", ["compare", "--before", str(snap), "--after", str(snap),
                                                  "--flows", str(flows)], (0,)),
            ]
            for label, argv, want in commands:
                if argv is None:
                    time.sleep(1.0)
                    cp = None
                else:
                    cp = subprocess.run(ebpfnode.in_node_argv(name, [args.dpinspect, *argv]),
                                        capture_output=True, text=True, timeout=120)
                after = snap_state()
                diffs = differences(state, after)
                problems = []
                if cp is not None and cp.returncode not in want:
                    problems.append(f"exit {cp.returncode}, want {' or '.join(map(str, want))}: "
                                    f"{cp.stderr.strip()[-300:]}")
                if diffs:
                    problems.append("changed: " + "; ".join(diffs[:5]))
                if problems:
                    failures.append(f"v{version} {label}: {' / '.join(problems)}")
                    print(f"FAIL v{version} {label}: {' / '.join(problems)}", flush=True)
                    state = after  # judge the next command on its own
                else:
                    passed += 1
                    print(f"ok   v{version} {label}: {n_maps} maps unchanged", flush=True)

    after_host = host_state(prefix)
    if before_host != after_host:
        failures.append(f"host changed: before {before_host}, after {after_host}")
    print(f"{passed} passed, {len(failures)} failed")
    for f in failures:
        print(f"FAILED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
