#!/usr/bin/env python3
"""Bad eBPF input never crashes dpinspect: it answers `indeterminate` (exit 2) with the reason, or
fails with exit 3 and one line on stderr (nothing on stdout).

The fixture tests/fixtures/ebpf/seed-v3.32.snapshot.json is `dpinspect snapshot`
of the lab's eBPF node for seed.json (Calico v3.32 layout; tests/fixtures/ebpf/README.md). Each case
changes one thing in a copy and runs `dpinspect inspect --ruleset COPY` on the seed's denied flow
(client -> management-ui:9001, whose client egress program decides) without root:

  the fixture as is              exit 1 (deny), and exit 0 for client -> frontend:80: the fixture works
  corrupt debug JSON             the client's egress JSON is not JSON         -> 2, names the file
  truncated debug JSON           cut in half                                  -> 2, names the file
  missing debug JSON             removed                                      -> 2, names the file
  stale debug JSON               one instruction changed (tag differs)        -> 2, says stale
  unknown map size               cali_iface4 value size 52 -> 60              -> 2, names the map and 60
  unrunnable program             a call to helper 999 at the program's start,
                                 the slot's tag updated so the JSON is current -> 2 naming it, or 3
  bad program tag                not hex                                      -> 3 (--dataplane ebpf)
  bad entry hex                  an ifstate key "zz"                          -> 3 (--dataplane ebpf)
  ebpf section not an object     "ebpf": 7                                    -> 3 (--dataplane ebpf)
  the same three under auto      never a verdict from the snapshot's other dataplane -> 2 or 3
  truncated snapshot file        the file cut in half                         -> 3
  k8s names                      a `k8s` member (snapshot --k8s) added        -> 1, the flow named

and `detect --ruleset COPY --dataplane ebpf` on the unknown map size names the map.

    test_ebpf_inputs.py --dpinspect build/cli/dpinspect
"""
import argparse
import copy
import hashlib
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
FIXTURE = os.path.join(TOP, "tests", "fixtures", "ebpf", "seed-v3.32.snapshot.json")
DENIED = ["--src", "10.65.0.2", "--dst", "10.65.0.5", "--proto", "tcp", "--dport", "9001", "--ct", "new"]
ALLOWED = ["--src", "10.65.0.2", "--dst", "10.65.0.3", "--proto", "tcp", "--dport", "80", "--ct", "new"]
CLIENT_IF = "cali0de30c97d63"
EGRESS_JSON = f"{CLIENT_IF}_egress_v4.json"
LD_IMM64, CALL, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE = 0x18, 0x85, 1, 2


def tag_of(insns):
    """The kernel's program tag: SHA-256 over the instructions with map references cleared
    (the imm of an ld_imm64 of a map fd/value and of its second half), first 8 bytes."""
    out, was_ld_map = bytearray(), False
    for raw in insns:
        b = bytearray(raw)
        if not was_ld_map and b[0] == LD_IMM64 and (b[1] >> 4) in (PSEUDO_MAP_FD, PSEUDO_MAP_VALUE):
            was_ld_map = True
            b[4:8] = b"\0\0\0\0"
        elif was_ld_map and b[0] == 0 and b[1] == 0 and b[2:4] == b"\0\0":
            was_ld_map = False
            b[4:8] = b"\0\0\0\0"
        else:
            was_ld_map = False
        out += b
    return hashlib.sha256(bytes(out)).hexdigest()[:16]


def client_egress(snap):
    """(debug JSON doc, the jump slot of the client's egress program)."""
    eb = snap["ebpf"]
    doc = json.loads(eb["debug_json"][EGRESS_JSON])
    insns = [p["inst"] for p in doc["policyInfo"]]
    tag = tag_of(insns)
    slots = [s for s in eb["jump_slots"] if (s.get("prog") or {}).get("tag") == tag]
    if len(slots) != 1:
        raise SystemExit(f"fixture: {len(slots)} jump slots hold the program of {EGRESS_JSON} (tag {tag})")
    return doc, slots[0]


def corrupt(snap):
    snap["ebpf"]["debug_json"][EGRESS_JSON] = '{"ifacename": "' + CLIENT_IF + '", "policyInfo": [{"inst": [1, 2,'
    return snap


def truncated(snap):
    text = snap["ebpf"]["debug_json"][EGRESS_JSON]
    snap["ebpf"]["debug_json"][EGRESS_JSON] = text[:len(text) // 2]
    return snap


def missing(snap):
    del snap["ebpf"]["debug_json"][EGRESS_JSON]
    return snap


def stale(snap):
    doc, _ = client_egress(snap)
    for p in doc["policyInfo"]:  # the first plain mov-immediate: r = imm + 1
        if p["inst"][0] in (0xb7, 0xb4):
            p["inst"][4] = (p["inst"][4] + 1) & 0xff
            break
    else:
        raise SystemExit("fixture: no mov-immediate instruction to change")
    snap["ebpf"]["debug_json"][EGRESS_JSON] = json.dumps(doc)
    return snap


def unknown_size(snap):
    for m in snap["ebpf"]["maps"]:
        if m["name"] == "cali_iface4":
            m["value_size"] = 60
            return snap
    raise SystemExit("fixture: no cali_iface4 map")


def unrunnable(snap):
    doc, slot = client_egress(snap)
    doc["policyInfo"][0]["inst"] = [CALL, 0, 0, 0, 999 & 0xff, 999 >> 8, 0, 0]  # call helper 999
    doc["policyInfo"][0]["comments"] = (doc["policyInfo"][0].get("comments") or []) + ["test: helper 999"]
    slot["prog"]["tag"] = tag_of([p["inst"] for p in doc["policyInfo"]])
    snap["ebpf"]["debug_json"][EGRESS_JSON] = json.dumps(doc)
    return snap


def bad_tag(snap):
    _, slot = client_egress(snap)
    slot["prog"]["tag"] = "not-hex!"
    return snap


def bad_hex(snap):
    snap["ebpf"]["entries"]["ifstate"][0][0] = "zz"
    return snap


def with_k8s_names(snap):
    # `snapshot --k8s`: the eBPF backend, reading the snapshot, hands the names on.
    with open(os.path.join(TOP, "tests", "fixtures", "k8s", "seed.json")) as f:
        snap["k8s"] = json.load(f)
    return snap


def not_object(snap):
    snap["ebpf"] = 7
    return snap


# name, change, argv (after --ruleset FILE), the exit codes allowed, strings the answer must contain
CASES = [
    ("the fixture: denied flow", None, DENIED, (1,), []),
    ("the fixture: allowed flow", None, ALLOWED, (0,), []),
    ("corrupt debug JSON", corrupt, DENIED, (2,), [EGRESS_JSON]),
    ("truncated debug JSON", truncated, DENIED, (2,), [EGRESS_JSON]),
    ("missing debug JSON", missing, DENIED, (2,), [EGRESS_JSON]),
    ("stale debug JSON", stale, DENIED, (2,), [EGRESS_JSON, "stale"]),
    ("unknown map size", unknown_size, DENIED, (2,), ["cali_iface4", "60"]),
    ("unrunnable program (helper 999)", unrunnable, DENIED, (2, 3), ["999"]),
    ("bad program tag, --dataplane ebpf", bad_tag, ["--dataplane", "ebpf", *DENIED], (3,), ["tag"]),
    ("bad entry hex, --dataplane ebpf", bad_hex, ["--dataplane", "ebpf", *DENIED], (3,), ["hex"]),
    ("ebpf section not an object, --dataplane ebpf", not_object, ["--dataplane", "ebpf", *DENIED], (3,), ["ebpf"]),
    # Under auto a broken eBPF section must not fall back to the snapshot's other dataplane (an
    # eBPF node's nftables ruleset is nearly empty: it would say "allowed").
    ("bad program tag, auto", bad_tag, DENIED, (2, 3), []),
    ("bad entry hex, auto", bad_hex, DENIED, (2, 3), []),
    ("ebpf section not an object, auto", not_object, DENIED, (2, 3), []),
    ("k8s names, --dataplane ebpf", with_k8s_names, ["--dataplane", "ebpf", *DENIED], (1,),
     ['"src_name": "client/client"', '"dst_name": "management-ui/management-ui"']),
]


def run(dpinspect, argv):
    try:
        return subprocess.run([dpinspect, *argv], capture_output=True, text=True, timeout=30, cwd=TOP)
    except subprocess.TimeoutExpired:
        return None


def judge(name, p, want, needles):
    """Problems with one answer: the exit code, the shape of an error, the reason's content."""
    if p is None:
        return ["no answer in 30 s"]
    problems = []
    if p.returncode < 0 or p.returncode > 5:
        problems.append(f"crashed: exit {p.returncode}")
    elif p.returncode not in want:
        problems.append(f"exit {p.returncode}, want {' or '.join(map(str, want))}")
    if p.returncode == 3:
        lines = p.stderr.strip().splitlines()
        if p.stdout.strip():
            problems.append("exit 3 with output on stdout")
        if len(lines) != 1 or not lines[0].startswith("dpinspect: "):
            problems.append(f"stderr is not one 'dpinspect: ' line: {p.stderr.strip()[:300]!r}")
        text = p.stderr
    else:
        try:
            doc = json.loads(p.stdout)
        except ValueError:
            return problems + [f"stdout is not JSON: {p.stdout[:200]!r} stderr {p.stderr.strip()[:200]!r}"]
        reason = doc.get("indeterminate_reason") or {}
        text = json.dumps(reason) + json.dumps(doc.get("flow"))
        if p.returncode == 2 and not (reason.get("why") or "").strip():
            problems.append("indeterminate without a reason")
    missing_words = [n for n in needles if n not in text]
    if missing_words:
        problems.append(f"the answer does not name {missing_words}: {text[:400]}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dpinspect", required=True)
    args = ap.parse_args()
    base = json.load(open(FIXTURE))
    failed = passed = 0
    with tempfile.TemporaryDirectory(prefix="dpi-ebpf-inputs-") as tmp:
        def write(name, text):
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write(text)
            return path

        results = []
        for name, change, flow, want, needles in CASES:
            snap = change(copy.deepcopy(base)) if change else base
            path = write(name.replace(" ", "_") + ".json", json.dumps(snap))
            p = run(args.dpinspect, ["inspect", "--ruleset", path, *flow, "-o", "json"])
            results.append((name, judge(name, p, want, needles), p))
        # detect names the unknown layout too
        path = write("unknown_size_detect.json", json.dumps(unknown_size(copy.deepcopy(base))))
        p = run(args.dpinspect, ["detect", "--dataplane", "ebpf", "--ruleset", path, "-o", "json"])
        problems = [] if p and p.returncode == 0 and "cali_iface4" in p.stdout else \
            [f"exit {p and p.returncode}: {(p.stdout + p.stderr)[:300] if p else ''}"]
        results.append(("detect: unknown map size named", problems, p))
        # the snapshot file itself cut in half
        text = json.dumps(base)
        path = write("truncated_file.json", text[:len(text) // 2])
        p = run(args.dpinspect, ["inspect", "--ruleset", path, *DENIED, "-o", "json"])
        results.append(("truncated snapshot file", judge("truncated snapshot file", p, (3,), []), p))

        for name, problems, p in results:
            if problems:
                failed += 1
                print(f"FAIL {name}: {'; '.join(problems)}")
            else:
                passed += 1
                detail = ""
                if p is not None and p.returncode == 2:
                    detail = ": " + (json.loads(p.stdout).get("indeterminate_reason") or {}).get("why", "")[:160]
                elif p is not None and p.returncode == 3:
                    detail = ": " + p.stderr.strip()[:160]
                print(f"ok   {name} (exit {p.returncode if p else '-'}){detail}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
