"""Map layouts of the lab's eBPF node, checked in the kernel for each supported Calico version.

In a forked child with its own mount namespace (unshare(CLONE_NEWNS), `mount --make-rprivate /`, a fresh
`mount -t bpf`), create and pin every map of the version, check each pin's type/key/value/max/flags/name
through BPF_OBJ_GET_INFO_BY_FD, write entries with maps.py's encoders, read the bytes back with bpfsys,
decode them and compare with what was meant, and compare a few entries with LITERAL bytes written out
from the reference's offset tables (../shared/reference/calico-ebpf.md sections 1.1-1.8). Afterwards the
host's /sys/fs/bpf listing must be unchanged.

    python3 tests/lab/ebpf/test_maps.py     # root; prints "N passed, M failed"; exit 0/1 (77 = skipped)
"""

from __future__ import annotations

import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bpfsys  # noqa: E402
import maps  # noqa: E402
import privns  # noqa: E402

VERSIONS = ("3.30", "3.32")


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def eq(self, what, got, want):
        if got == want:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {what}\n    got  {got!r}\n    want {want!r}")


def check_version(c: Checks, version: str, globals_dir: str) -> None:
    v = version
    pins = maps.create_maps(v, globals_dir)
    specs = {s.role: s for s in maps.map_specs(v)}
    c.eq(f"{v} pinned names", sorted(os.listdir(globals_dir)), sorted(s.name for s in specs.values()))
    for s in specs.values():
        with bpfsys.obj_get(pins[s.name]) as fd:
            info = bpfsys.map_info(fd)
        c.eq(f"{v} {s.name} info", (info.name, info.type_name, info.key_size, info.value_size, info.max_entries,
                                    info.flags), (s.name, s.type, s.key_size, s.value_size, s.max_entries, s.flags))
    names = {s.name for s in specs.values()}
    if v == "3.30":
        c.eq("3.30 version-specific names", {"cali_state4", "cali_counters3", "cali_v4_ct3", "cali_progs3",
                                             "cali_jump3"} <= names and "cali_jump_ing2" not in names, True)
    else:
        c.eq("3.32 version-specific names", {"cali_state6", "cali_counters6", "cali_v4_ct4", "cali_progs_ing2",
                                             "cali_progs_egr2", "cali_jump_ing2", "cali_jump_egr2"} <= names
             and "cali_jump3" not in names, True)

    def roundtrip(role, key, value, decode, want, literal_key=None, literal_value=None):
        s = specs[role]
        with maps.open_map(globals_dir, s) as fd:
            bpfsys.map_update(fd, key, value)
            raw = bpfsys.map_lookup(fd, key, bpfsys.value_buffer_size(bpfsys.map_info(fd)))
            keys = bpfsys.map_keys(fd, s.key_size)
        c.eq(f"{v} {role} value bytes read back", raw, value)
        c.eq(f"{v} {role} key listed", key in keys, True)
        c.eq(f"{v} {role} decoded", decode(key, raw), want)
        if literal_key is not None:
            c.eq(f"{v} {role} key literal bytes", key, literal_key)
        if literal_value is not None:
            c.eq(f"{v} {role} value literal bytes", raw, literal_value)

    # ifstate (1.1): flags, name[16], xdp4, ing4, egr4, xdp6, ing6, egr6, filt_in, filt_eg.
    val = maps.ifstate_value(maps.IFS_WEP | maps.IFS_V4READY, "cali1234abcd567", ingress_policy_v4=7,
                             egress_policy_v4=0)
    roundtrip("ifstate", maps.ifstate_key(5), val, lambda k, r: maps.ifstate_decode(r),
              {"flags": 3, "name": "cali1234abcd567", "xdp_policy_v4": -1, "ingress_policy_v4": 7,
               "egress_policy_v4": 0, "xdp_policy_v6": -1, "ingress_policy_v6": -1, "egress_policy_v6": -1,
               "tc_filter_ingress": -1, "tc_filter_egress": -1},
              literal_key=h("05000000"),
              literal_value=h("03000000") + b"cali1234abcd567\0" + h("ffffffff 07000000 00000000") + h("ff") * 20)

    # routes (1.4): local workload LOCAL|WORKLOAD|IN_POOL|NAT_OUT with the ifindex LE in next_hop.
    roundtrip("routes", maps.route_key("10.65.0.3/32"),
              maps.route_value(0x0f, ifindex=9), maps.route_decode,
              {"cidr": "10.65.0.3/32", "flags": 0x0f, "ifindex": 9},
              literal_key=h("20000000 0a410003"), literal_value=h("0f000000 09000000"))
    roundtrip("routes", maps.route_key("172.18.0.1/32"), maps.route_value(maps.RT_HOST, next_hop="172.18.0.1"),
              maps.route_decode, {"cidr": "172.18.0.1/32", "flags": 0x10, "next_hop": "172.18.0.1"},
              literal_value=h("10000000 ac120001"))
    roundtrip("routes", maps.route_key("10.65.0.0/16"), maps.route_value(0x03), maps.route_decode,
              {"cidr": "10.65.0.0/16", "flags": 3, "next_hop": "0.0.0.0"}, literal_key=h("10000000 0a410000"))

    # IP sets (1.3): mask LE, set id BE, addr BE, port LE, proto, pad.
    sid = 0x1122334455667788
    roundtrip("ipsets", maps.ipset_key(sid, "10.65.0.0/24"), maps.IPSET_VALUE, lambda k, r: maps.ipset_decode(k),
              {"set_id": sid, "cidr": "10.65.0.0/24", "proto": 0, "port": 0},
              literal_key=h("58000000 1122334455667788 0a410000 0000 00 00"), literal_value=h("01000000"))
    roundtrip("ipsets", maps.ipset_key(sid, "10.0.0.2/32", 6, 80), maps.IPSET_VALUE,
              lambda k, r: maps.ipset_decode(k), {"set_id": sid, "cidr": "10.0.0.2/32", "proto": 6, "port": 80},
              literal_key=h("78000000 1122334455667788 0a000002 5000 06 00"))
    # What the policy program does: an LPM lookup with the full 128-bit key.
    with maps.open_map(globals_dir, specs["ipsets"]) as fd:
        def probe(addr, port, proto, set_id=sid):
            key = struct.pack("<I", 128) + struct.pack(">Q", set_id) + bytes(map(int, addr.split("."))) + \
                struct.pack("<HBB", port, proto, 0)
            return bpfsys.map_lookup(fd, key, 4) is not None
        c.eq(f"{v} ipset lookup inside CIDR", probe("10.65.0.77", 1234, 17), True)
        c.eq(f"{v} ipset lookup outside CIDR", probe("10.66.0.1", 1234, 17), False)
        c.eq(f"{v} ipset lookup other set", probe("10.65.0.77", 1234, 17, sid + 1), False)
        c.eq(f"{v} ipset named port hit", probe("10.0.0.2", 80, 6), True)
        c.eq(f"{v} ipset named port wrong proto", probe("10.0.0.2", 80, 17), False)

    # Conntrack (1.5): A/B ordering by the raw BE word read as LE u32.
    k = maps.ct_key(6, "10.65.0.3", "10.65.0.2", 40000, 80)
    c.eq(f"{v} ct key ordering (10.65.0.2 is A: 0x0200410a < 0x0300410a)", k,
         h("06000000 0a410002 0a410003 5000 409c"))
    k2 = maps.ct_key(17, "1.0.0.2", "2.0.0.1", 1, 2)  # LE u32: 0x02000001 > 0x01000002 -> 2.0.0.1 is A
    c.eq(f"{v} ct key ordering uses the LE view", maps.ct_key_decode(k2)["addr_a"], "2.0.0.1")
    leg_a = maps.ct_leg(100, 2, 0, maps.LEG_SYN | maps.LEG_APPROVED | maps.LEG_OPENER, 7)
    cv = maps.ct_value(maps.CT_NORMAL, 0x10001, a_to_b=leg_a, last_seen=12345, orig_ip="10.96.0.10", orig_port=80)
    want = maps.ct_value_decode(cv)
    roundtrip("ct", k, cv, lambda kk, r: maps.ct_value_decode(r), want)
    lit = bytearray(88)
    lit[8:16] = (12345).to_bytes(8, "little")
    lit[17] = 0x01
    lit[23] = 0x00
    lit[18] = 0x01
    lit[24:48] = (100).to_bytes(8, "little") + (2).to_bytes(4, "little") + bytes(4) + (0x31).to_bytes(4, "little") + \
        (7).to_bytes(4, "little")
    lit[76:80] = h("0a60000a")
    lit[80:82] = h("5000")
    c.eq(f"{v} ct value literal bytes", cv, bytes(lit))
    c.eq(f"{v} ct value approved bit", want["a_to_b"]["bits"] & maps.LEG_APPROVED, maps.LEG_APPROVED)
    fwd = maps.ct_value(maps.CT_NAT_FWD, nat_rev_key=k, nat_sport=5555)
    c.eq(f"{v} ct NAT_FWD overlay", (maps.ct_value_decode(fwd)["nat_rev_key"], fwd[40:42]), (k, h("b315")))

    # NAT (felix/bpf/nat/maps.go): frontend LPM key, value, backend.
    fk = maps.nat_fe_key("10.96.0.10", 80, 6)
    roundtrip("nat_fe", fk, maps.nat_fe_value(3, 2, 2), lambda kk, r: (maps.nat_fe_key_decode(kk),
                                                                        maps.nat_fe_value_decode(r)),
              ({"addr": "10.96.0.10", "port": 80, "proto": 6, "src": "0.0.0.0/0"},
               {"id": 3, "count": 2, "local": 2, "affinity_timeo": 0, "flags": 0}),
              literal_key=h("38000000 0a60000a 5000 06 00000000 00"),
              literal_value=h("03000000 02000000 02000000 00000000 00000000"))
    with maps.open_map(globals_dir, specs["nat_fe"]) as fd:
        lookup = struct.pack("<I", 56 + 32) + fk[4:11] + bytes(map(int, "10.65.0.9".split("."))) + b"\0"
        c.eq(f"{v} nat frontend LPM lookup from any source", bpfsys.map_lookup(fd, lookup, 20) is not None, True)
    roundtrip("nat_be", maps.nat_be_key(3, 1), maps.nat_be_value("10.65.0.3", 8080), maps.nat_be_decode,
              {"id": 3, "ordinal": 1, "addr": "10.65.0.3", "port": 8080},
              literal_key=h("03000000 01000000"), literal_value=h("0a410003 901f 0000"))

    # Counters (1.7): per-CPU u64[N], key {ifindex, hook}.
    ncpu = bpfsys.possible_cpus()
    n = maps.COUNTERS[v][1]
    per_cpu = [[cpu + 1] + [0] * 3 + [10 * (cpu + 1)] for cpu in range(ncpu)]
    roundtrip("counters", maps.counters_key(5, maps.HOOK_EGRESS), maps.counters_value(v, per_cpu),
              lambda kk, r: maps.counters_decode(v, r), [row + [0] * (n - len(row)) for row in per_cpu],
              literal_key=h("05000000 01000000"))
    c.eq(f"{v} counters value per CPU = 8*N bytes", len(maps.counters_value(v)), 8 * n * ncpu)

    # Rule counters (1.8).
    rid = 0xfedcba9876543210
    roundtrip("rule_counters", maps.rule_counter_key(rid), b"".join(struct.pack("<Q", 3) for _ in range(ncpu)),
              lambda kk, r: maps.rule_counter_decode(r), 3 * ncpu, literal_key=h("1032547698badcfe"))

    # State (1.6): key 0, per-CPU; offsets pol_rc@92, rules_hit@108, rule_ids@112, flags@368.
    st = maps.state_encode(v, ip_src="10.65.0.2", ip_dst="10.96.0.10", post_nat_ip_dst="10.65.0.3", sport=40000,
                           dport=80, post_nat_dport=8080, ip_proto=6, flags=0x4, pol_rc=1, rules_hit=2,
                           rule_ids=[11, 22])
    size = maps.STATE[v][1]
    with maps.open_map(globals_dir, specs["state"]) as fd:
        bpfsys.map_update(fd, struct.pack("<I", 0), st * ncpu)
        raw = bpfsys.map_lookup(fd, struct.pack("<I", 0), bpfsys.value_buffer_size(bpfsys.map_info(fd)))
    cpus = bpfsys.percpu_split(raw, size)
    c.eq(f"{v} state per-CPU copies", [bytes(x) for x in cpus], [st] * ncpu)
    c.eq(f"{v} state decoded", maps.state_decode(v, cpus[0]),
         {"ip_src": "10.65.0.2", "post_nat_ip_dst": "10.65.0.3", "sport": 40000, "post_nat_dport": 8080,
          "ip_proto": 6, "pol_rc": 1, "rules_hit": 2, "rule_ids": [11, 22], "flags": 4})
    c.eq(f"{v} state literal offsets",
         (st[8:12], st[56:60], st[92:96], st[96:98], st[102:104], st[104], st[108:112], st[112:128], st[368:376]),
         (h("0a410002"), h("0a410003"), h("01000000"), h("409c"), h("901f"), 6, h("02000000"),
          h("0b00000000000000 1600000000000000"), h("0400000000000000")))


def run_all(bpffs: str) -> tuple[int, int]:
    c = Checks()
    for v in VERSIONS:
        try:
            check_version(c, v, os.path.join(bpffs, "v" + v.replace(".", "_"), "tc", "globals"))
        except Exception as e:  # any error is a failure with its message, not a traceback
            c.failed += 1
            print(f"FAIL {v}: {type(e).__name__}: {e}")
    return c.passed, c.failed


def main() -> int:
    if os.geteuid() != 0:
        print("test_maps: skipped, needs root (bpffs mount, BPF_MAP_CREATE)")
        return 77
    before = privns.host_bpffs_listing()
    passed, failed = privns.run(run_all)
    after = privns.host_bpffs_listing()
    if before == after:
        passed += 1
    else:
        failed += 1
        print(f"FAIL host /sys/fs/bpf changed: +{sorted(set(after) - set(before))} -{sorted(set(before) - set(after))}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
