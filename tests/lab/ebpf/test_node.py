"""node.py populate, checked in the kernel: the seed scenarios as Calico 3.30 and 3.32 nodes in a private bpffs.

For each version: populate, then read back through bpfsys what a debugger would read -- ifstate (flags,
name, per-hook indices), the hook's policy jump map at that index (prog id = the manifest's), the program's
name, map_ids (state map first) and tag (recomputed from the debug JSON's instructions: the JSON is the
program), the debug JSON's file name / hook / ifacename. Then put stub "allowed"/"drop" programs in the
static programs map, fill the pinned per-CPU state as calico_tc_main would, run the policy program found
through ifstate + jump map with BPF_PROG_TEST_RUN and check verdict and rule ids against ids written out
from Felix's NFLOG-prefix formula by hand (literal prefixes below).

    python3 tests/lab/ebpf/test_node.py     # root; prints "N passed, M failed"; exit 0/1 (77 = skipped)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, LAB)

import asm  # noqa: E402
import bpfsys  # noqa: E402
import maps  # noqa: E402
import node  # noqa: E402
import privns  # noqa: E402
import scenario as scn  # noqa: E402
from ruleids import fnv1a64  # noqa: E402

ALLOWED_IDX, DROP_IDX = 2, 4
CLIENT, FRONTEND, MGMT, NODE_IP = "10.65.0.2", "10.65.0.3", "10.65.0.5", "172.18.0.2"

# (scenario, version, pod whose program runs, workload policy direction, packet, verdict, NFLOG prefixes)
CASES = [
    ("seed.json", "3.30", "client/client", "egress", ("tcp", CLIENT, 40000, FRONTEND, 80, 0), "allow",
     ["APE0|client/default.allow-stars"]),
    ("seed.json", "3.30", "client/client", "egress", ("tcp", CLIENT, 40000, MGMT, 9001, 0), "deny", ["DPE|default"]),
    ("seed.json", "3.30", "stars/frontend", "ingress", ("tcp", CLIENT, 40000, FRONTEND, 80, 0), "allow",
     ["ARI0|kns.stars"]),
    ("seed.json", "3.32", "client/client", "egress", ("tcp", CLIENT, 40000, FRONTEND, 6379, 0), "allow",
     ["APE0|np/client/allow-stars"]),
    ("seed.json", "3.32", "client/client", "egress", ("udp", CLIENT, 40000, FRONTEND, 80, 0), "deny",
     ["DPE|default"]),
    ("seed.json", "3.32", "client/client", "egress", ("tcp", CLIENT, 40000, NODE_IP, 22, 0x4), "deny",
     ["DPE|default"]),
    ("seed.json", "3.32", "management-ui/management-ui", "egress", ("icmp", MGMT, 0, CLIENT, 8, 0), "allow",
     ["ARE0|kns.management-ui"]),
    ("seed.json", "3.32", "stars/backend", "ingress", ("tcp", MGMT, 40000, "10.65.0.4", 6379, 0), "allow",
     ["ARI0|kns.stars"]),
    ("seed-platform.json", "3.32", "client/client", "egress", ("tcp", CLIENT, 40000, FRONTEND, 80, 0), "allow",
     ["APE0|np/client/allow-stars"]),
    ("seed-platform.json", "3.32", "client/client", "egress", ("tcp", CLIENT, 40000, MGMT, 9001, 0), "deny",
     ["DPE|platform"]),
    ("seed-platform.json", "3.30", "client/client", "egress", ("tcp", CLIENT, 40000, FRONTEND, 80, 0), "allow",
     ["APE0|client/platform.allow-stars"]),
]


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def eq(self, what, got, want):
        if got == want:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {what}\n    got  {got!r}\n    want {want!r}")


def tag_of(insns: list[dict]) -> tuple[str, str]:
    """(sha256, sha1) tags: ld_imm64 map immediates zeroed (both halves), first 8 bytes of the digest."""
    code = bytearray(asm.insns_bytes(insns))
    for i in range(0, len(code), 8):
        if code[i] == asm.LD_IMM64 and code[i + 1] >> 4 == asm.PSEUDO_MAP_FD:
            code[i + 4:i + 8] = bytes(4)
            code[i + 12:i + 16] = bytes(4)
    return hashlib.sha256(code).hexdigest()[:16], hashlib.sha1(code).hexdigest()[:16]


def check_node(c: Checks, bpffs: str, scenario_file: str, version: str, cases: list) -> None:
    sc = scn.load(os.path.join(LAB, "scenarios", scenario_file))
    ifaces = {p["iface"]: 100 + i for i, p in enumerate(sc["pods"])}
    ifaces[sc["node"]["uplink"]] = 2
    base = os.path.join(bpffs, f"{scenario_file.split('.')[0]}_{version.replace('.', '_')}")
    lab_dir = tempfile.mkdtemp(prefix="dpl-ebpf-node-")  # JSON files need a normal filesystem
    globals_dir = os.path.join(base, "tc", "globals")
    tag = f"{scenario_file} {version}"
    m = node.populate(sc, version, globals_dir, os.path.join(lab_dir, "policy"), ifaces)
    c.eq(f"{tag} manifest written", json.load(open(os.path.join(lab_dir, "manifest.json")))["version"], version)
    specs = {s.role: s for s in maps.map_specs(version)}
    with maps.open_map(globals_dir, specs["state"]) as st:
        state_id = bpfsys.map_info(st).id
    by_pod = {f"{p['namespace']}/{p['name']}": p for p in sc["pods"]}
    for pod in sc["pods"]:
        ifc = pod["iface"]
        entry = m["interfaces"][ifc]
        with maps.open_map(globals_dir, specs["ifstate"]) as ifs:
            val = maps.ifstate_decode(bpfsys.map_lookup(ifs, maps.ifstate_key(ifaces[ifc]), 52))
        c.eq(f"{tag} {ifc} ifstate", (val["flags"], val["name"], val["ingress_policy_v4"], val["egress_policy_v4"],
                                     val["xdp_policy_v4"]),
             (3, ifc, entry["tc_ingress"]["index"], entry["tc_egress"]["index"], -1))
        for hook, policy_dir in (("ingress", "egress"), ("egress", "ingress")):
            h = entry[f"tc_{hook}"]
            static_spec, jump_spec = maps.hook_maps(version, hook)
            c.eq(f"{tag} {ifc} {hook} maps", (h["policy"], h["jump_map"], h["static_map"]),
                 (policy_dir, jump_spec.name, static_spec.name))
            with maps.open_map(globals_dir, jump_spec) as jm:
                raw = bpfsys.map_lookup(jm, struct.pack("<I", h["index"]), 4)
            prog_id = struct.unpack("<I", raw)[0] if raw else None
            c.eq(f"{tag} {ifc} {hook} jump map entry", prog_id, h["prog_id"])
            doc = json.load(open(h["json"]))
            c.eq(f"{tag} {ifc} {hook} json", (os.path.basename(h["json"]), doc["ifacename"], doc["hook"], doc["error"]),
                 (f"{ifc}_{policy_dir}_v4.json", ifc, f"tc {hook}", ""))
            with bpfsys.prog_get_fd_by_id(prog_id) as pfd:
                info = bpfsys.prog_info(pfd)
            c.eq(f"{tag} {ifc} {hook} prog name", info.name, f"p4{policy_dir[0].upper()}_{ifc}"[:15])
            c.eq(f"{tag} {ifc} {hook} first map is the state map", info.map_ids[:1], [state_id])
            c.eq(f"{tag} {ifc} {hook} tag matches the debug JSON", info.tag in tag_of(doc["policyInfo"]), True)
    d = maps.dump(version, globals_dir)
    c.eq(f"{tag} dump: ifstate names", sorted(x["name"] for x in d["ifstate"].values()),
         sorted([p["iface"] for p in sc["pods"]] + [sc["node"]["uplink"]]))
    c.eq(f"{tag} dump: pod routes", sorted(r["cidr"] for r in d["routes"] if "ifindex" in r),
         sorted(f"{p['ip']}/32" for p in sc["pods"]))
    c.eq(f"{tag} dump: frontends", sorted(f"{f['addr']}:{f['port']}" for f in d["nat_fe"]),
         sorted(f"{s['cluster_ip']}:{pt['port']}" for s in sc["services"] for pt in s["ports"]))
    c.eq(f"{tag} dump: ip set members", sorted(x["cidr"] for x in d["ipsets"]),
         sorted(mm for s in m["ipsets"].values() for mm in s["members"]))
    # Felix's comment dialect in the client's egress program (the backend reads names and ids from these).
    client = by_pod["client/client"]["iface"]
    doc = json.load(open(m["interfaces"][client]["tc_ingress"]["json"]))
    comments = [t for insn in doc["policyInfo"] for t in insn.get("comments", [])]
    tier = "platform" if "platform" in scenario_file else "default"
    (set_name, set_info), = m["ipsets"].items()
    if version >= "3.32":
        want_policy = ["Start of NetworkPolicy client/allow-stars 0", "End of NetworkPolicy client/allow-stars 0"]
        rule_start = "Start of rule client/allow-stars action:"
        pid = "np/client/allow-stars"
    else:
        want_policy = [f"Start of policy client/{tier}.allow-stars", f"End of policy client/{tier}.allow-stars"]
        rule_start = "Start of rule action:"
        pid = f"client/{tier}.allow-stars"
    want = [f"Start of tier {tier}"] + want_policy + [
        f"Rule MatchID: {fnv1a64('APE0|' + pid)}", f"End of tier {tier}: deny",
        f"IPSets dst_ip_set_ids:<{set_info['id']}> ",
        f"If dest doesn't match ipset {set_name} ({set_info['id']}), skip to next rule",
        "If protocol != tcp, skip to next rule", "If dest port is not within any of {6379,80}, skip to next rule",
        "Load packet metadata saved by previous program"]
    for w in want:
        c.eq(f"{tag} comment {w!r}", w in comments, True)
    c.eq(f"{tag} rule text comment", any(t.startswith(rule_start) for t in comments), True)
    # The end-of-tier id appears only as the ld_imm64 after its comment (reference 2.3).
    eot = fnv1a64(f"DPE|{tier}")
    imms = [struct.unpack("<i", bytes(a["inst"][4:8]))[0] & 0xffffffff | (
        (struct.unpack("<i", bytes(b["inst"][4:8]))[0] & 0xffffffff) << 32)
        for a, b in zip(doc["policyInfo"], doc["policyInfo"][1:]) if a["inst"][0] == 0x18 and a["inst"][1] == 0x02]
    c.eq(f"{tag} end-of-tier id loaded into R2", eot in imms, True)
    # Run the programs the way calico_tc_main reaches them.
    ncpu = bpfsys.possible_cpus()
    stubs = [bpfsys.prog_load(bytes(asm.encode(asm.MOV64_IMM, 0, 0, 0, rc) + asm.encode(asm.EXIT)), name)
             for rc, name in ((123, "lab_allow_stub"), (124, "lab_drop_stub"))]
    for s in {maps.hook_maps(version, h)[0].name: maps.hook_maps(version, h)[0] for h in ("ingress", "egress")}.values():
        with maps.open_map(globals_dir, s) as sm:
            bpfsys.map_update(sm, struct.pack("<I", ALLOWED_IDX), struct.pack("<I", int(stubs[0])))
            bpfsys.map_update(sm, struct.pack("<I", DROP_IDX), struct.pack("<I", int(stubs[1])))
    for _scen, _v, pod_name, direction, pkt, verdict, prefixes in cases:
        pod = by_pod[pod_name]
        hook = node.HOOK_OF_POLICY[direction]
        proto, src, sport, dst, dport, flags = pkt
        pnum = {"tcp": 6, "udp": 17, "icmp": 1}[proto]
        with maps.open_map(globals_dir, specs["ifstate"]) as ifs:
            val = maps.ifstate_decode(bpfsys.map_lookup(ifs, maps.ifstate_key(ifaces[pod["iface"]]), 52))
        idx = val[f"{hook}_policy_v4"]
        sin = maps.state_encode(version, ip_src=src, ip_dst=dst, sport=sport, dport=dport, ip_proto=pnum, flags=flags)
        with maps.open_map(globals_dir, specs["state"]) as st, \
                maps.open_map(globals_dir, maps.hook_maps(version, hook)[1]) as jm:
            prog_id = struct.unpack("<I", bpfsys.map_lookup(jm, struct.pack("<I", idx), 4))[0]
            bpfsys.map_update(st, struct.pack("<I", 0), sin * ncpu)
            with bpfsys.prog_get_fd_by_id(prog_id) as prog:
                rc = bpfsys.prog_test_run(prog, bytes(64), bpfsys.skb_ctx([ALLOWED_IDX, DROP_IDX]))
            raw = bpfsys.map_lookup(st, struct.pack("<I", 0), bpfsys.value_buffer_size(bpfsys.map_info(st)))
        outs = [maps.state_decode(version, x) for x in bpfsys.percpu_split(raw, maps.STATE[version][1])]
        ran = [o for o in outs if o["pol_rc"] != 0]
        what = f"{tag} {pod_name} {direction} {pkt}"
        c.eq(f"{what}: verdict", ({123: "allow", 124: "deny"}.get(rc, rc), len(ran)), (verdict, 1))
        if ran:
            c.eq(f"{what}: rule ids", ran[0]["rule_ids"], [fnv1a64(p) for p in prefixes])
            for rid in ran[0]["rule_ids"]:
                c.eq(f"{what}: id {rid} named in the manifest", str(rid) in m["rule_ids"], True)
    for s in stubs:
        s.close()
    shutil.rmtree(lab_dir)


def run_all(bpffs: str) -> tuple[int, int]:
    c = Checks()
    groups = {}
    for case in CASES:
        groups.setdefault((case[0], case[1]), []).append(case)
    for (scenario_file, version), cases in groups.items():
        try:
            check_node(c, bpffs, scenario_file, version, cases)
        except Exception as e:  # a failure with its message, not a traceback
            c.failed += 1
            print(f"FAIL {scenario_file} {version}: {type(e).__name__}: {e}")
    return c.passed, c.failed


def main() -> int:
    if os.geteuid() != 0:
        print("test_node: skipped, needs root (bpffs mount, BPF program loads)")
        return 77
    before = privns.host_bpffs_listing()
    passed, failed = privns.run(run_all)
    if privns.host_bpffs_listing() == before:
        passed += 1
    else:
        failed += 1
        print("FAIL host /sys/fs/bpf changed")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
