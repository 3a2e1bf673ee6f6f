"""Calico's pinned BPF maps per version, and the byte layouts the lab writes into them.

Sources: ../shared/reference/calico-ebpf.md sections 1 and 6, and projectcalico/calico at the version's tag
(felix/bpf/*/map.go MapParameters, felix/bpf/nat/maps.go, felix/bpf-gpl/*.h). The pinned name is
Name + Version when Version > 1. The IPv4 maps, the version-independent ones and the IPv6 twins a dual-stack
node's policy path needs (IP sets, routes, conntrack: roles `ipsets6`, `routes6`, `ct6`) are created; the
other v6 twins are listed in `V6_NOT_CREATED` so a reader knows they are missing on purpose.

    python3 tests/lab/ebpf/maps.py table 3.32                 # the map set of a version
    python3 tests/lab/ebpf/maps.py dump 3.32 <bpffs>/tc/globals # decoded contents (in the lab's mount ns)
"""

from __future__ import annotations

import ipaddress
import os
import struct
import sys
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpfsys  # noqa: E402

NO_PREALLOC = bpfsys.F_NO_PREALLOC
VERSIONS = ("3.28", "3.29", "3.30", "3.31", "3.32")


@dataclass(frozen=True)
class MapSpec:
    role: str
    name: str
    type: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0


# Counter slots per version (enum calico_reason length); "3.32" is v3.32.1 (27, NO_HOST_IP added).
COUNTERS = {"3.28": ("cali_counters2", 14), "3.29": ("cali_counters2", 14), "3.30": ("cali_counters3", 17),
            "3.31": ("cali_counters5", 25), "3.32": ("cali_counters6", 27)}
STATE = {"3.28": ("cali_state4", 480), "3.29": ("cali_state4", 480), "3.30": ("cali_state4", 488),
         "3.31": ("cali_state4", 488), "3.32": ("cali_state6", 512)}

V6_NOT_CREATED = ("cali_v6_nat_*", "cali_v6_arp2", "cali_v6_fsafes2", "cali_v6_srmsg", "cali_v6_ct_nats")


def map_specs(version: str) -> list[MapSpec]:
    """Every IPv4 / common map Felix pins in tc/globals for this version."""
    if version not in VERSIONS:
        raise ValueError(f"unsupported Calico version {version!r}; supported: {', '.join(VERSIONS)}")
    minor = int(version.split(".")[1])
    ctr_name, nctr = COUNTERS[version]
    state_name, state_size = STATE[version]
    specs = [
        MapSpec("ifstate", "cali_iface4", "hash", 4, 52, 1000, NO_PREALLOC),
        MapSpec("ipsets", "cali_v4_ip_sets", "lpm_trie", 20, 4, 1024 * 1024, NO_PREALLOC),
        MapSpec("routes", "cali_v4_routes", "lpm_trie", 8, 8, 256 * 1024, NO_PREALLOC),
        MapSpec("state", state_name, "percpu_array", 4, state_size, 2),
        MapSpec("counters", ctr_name, "percpu_hash", 8, 8 * nctr, 20000),
        MapSpec("rule_counters", "cali_rule_ctrs2", "percpu_hash", 8, 8, 10000),
        MapSpec("nat_fe", "cali_v4_nat_fe3", "lpm_trie", 16, 20, 64 * 1024, NO_PREALLOC),
        MapSpec("nat_be", "cali_v4_nat_be", "hash", 8, 8, 256 * 1024, NO_PREALLOC),
        MapSpec("nat_aff", "cali_v4_nat_aff", "lru_hash", 16, 16, 64 * 1024),
        MapSpec("ct_nats", "cali_v4_ct_nats", "lru_hash", 24, 8, 10000),
        MapSpec("srmsg", "cali_v4_srmsg", "lru_hash", 16, 8, 510000),
        MapSpec("arp", "cali_v4_arp2", "lru_hash", 8, 12, 10000),
        MapSpec("failsafes", "cali_v4_fsafes2", "lpm_trie", 12, 4, 65536, NO_PREALLOC),
        MapSpec("xdp_progs", "xdp_cali_progs3", "prog_array", 4, 4, 400),
        MapSpec("xdp_jump", "xdp_cali_jump3", "prog_array", 4, 4, 2400),
        MapSpec("events", "cali_perf_evnt", "perf_event_array", 4, 4, bpfsys.possible_cpus()),
    ]
    specs += [MapSpec("ipsets6", "cali_v6_ip_sets", "lpm_trie", 32, 4, 1024 * 1024, NO_PREALLOC),
              MapSpec("routes6", "cali_v6_routes", "lpm_trie", 20, 20, 256 * 1024, NO_PREALLOC)]
    if minor >= 31:
        specs.append(MapSpec("ct", "cali_v4_ct4", "lru_hash", 16, 88, 512000))
        specs.append(MapSpec("ct6", "cali_v6_ct4", "lru_hash", 40, 128, 512000))
    else:
        specs.append(MapSpec("ct", "cali_v4_ct3", "hash", 16, 88, 512000, NO_PREALLOC))
        specs.append(MapSpec("ct6", "cali_v6_ct3", "hash", 40, 128, 512000, NO_PREALLOC))
    if minor >= 32:
        specs += [MapSpec("progs_ing", "cali_progs_ing2", "prog_array", 4, 4, 400),
                  MapSpec("progs_egr", "cali_progs_egr2", "prog_array", 4, 4, 400),
                  MapSpec("jump_ing", "cali_jump_ing2", "prog_array", 4, 4, 240000),
                  MapSpec("jump_egr", "cali_jump_egr2", "prog_array", 4, 4, 240000)]
    else:
        specs += [MapSpec("progs", "cali_progs3", "prog_array", 4, 4, 400),
                  MapSpec("jump", "cali_jump3", "prog_array", 4, 4, 240000)]
    return specs


def spec(version: str, role: str) -> MapSpec:
    return next(s for s in map_specs(version) if s.role == role)


def hook_maps(version: str, hook: str) -> tuple[MapSpec, MapSpec]:
    """(static programs map, policy jump map) of a tc hook ("ingress"/"egress")."""
    if int(version.split(".")[1]) >= 32:
        sfx = "ing" if hook == "ingress" else "egr"
        return spec(version, f"progs_{sfx}"), spec(version, f"jump_{sfx}")
    return spec(version, "progs"), spec(version, "jump")


def create_maps(version: str, globals_dir: str) -> dict[str, str]:
    """Create and pin every map of `version` under globals_dir (which must be on a bpffs). Returns name -> path."""
    os.makedirs(globals_dir, exist_ok=True)
    out = {}
    for s in map_specs(version):
        path = os.path.join(globals_dir, s.name)
        with bpfsys.map_create(s.type, s.key_size, s.value_size, s.max_entries, s.flags, s.name) as fd:
            bpfsys.obj_pin(fd, path)
        out[s.name] = path
    return out


def open_map(globals_dir: str, s: MapSpec) -> bpfsys.Fd:
    return bpfsys.obj_get(os.path.join(globals_dir, s.name))


# --------------------------------------------------------------------------------------------
# Byte layouts. Addresses are given as strings ("10.65.0.3"); BE on the wire as in the kernel.


def _ip(a: str) -> bytes:
    return ipaddress.IPv4Address(a).packed


def _ips(b: bytes) -> str:
    return str(ipaddress.IPv4Address(bytes(b)))


# ifstate (cali_iface4): key u32 ifindex; value flags, name[16], 8 x s32 policy indices.
IFS_WEP, IFS_V4READY, IFS_V6READY, IFS_HEP = 0x1, 0x2, 0x4, 0x8
IFSTATE_FIELDS = ("xdp_policy_v4", "ingress_policy_v4", "egress_policy_v4", "xdp_policy_v6",
                  "ingress_policy_v6", "egress_policy_v6", "tc_filter_ingress", "tc_filter_egress")


def ifstate_key(ifindex: int) -> bytes:
    return struct.pack("<I", ifindex)


def ifstate_value(flags: int, name: str, **idx) -> bytes:
    """Unspecified policy indices are -1 ("no program"), as Felix writes them."""
    unknown = set(idx) - set(IFSTATE_FIELDS)
    if unknown:
        raise ValueError(f"unknown ifstate fields {unknown}")
    return struct.pack("<I16s8i", flags, name.encode()[:15], *(idx.get(f, -1) for f in IFSTATE_FIELDS))


def ifstate_decode(value: bytes) -> dict:
    flags, name, *rest = struct.unpack("<I16s8i", value)
    return {"flags": flags, "name": name.split(b"\0")[0].decode(), **dict(zip(IFSTATE_FIELDS, rest))}


# routes (cali_v4_routes): key prefixlen LE + addr BE; value flags LE + next_hop BE / ifindex LE.
RT_IN_POOL, RT_NAT_OUT, RT_WORKLOAD, RT_LOCAL, RT_HOST, RT_SAME_SUBNET = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20


def route_key(cidr: str) -> bytes:
    """v4 or v6 (cali_v6_routes: 16-byte address) by the CIDR."""
    net = ipaddress.ip_network(cidr, strict=False)
    return struct.pack("<I", net.prefixlen) + net.network_address.packed


def route_value(flags: int, next_hop: str | None = None, ifindex: int | None = None, v6: bool = False) -> bytes:
    """v6: the 16-byte union (ifindex LE in its first 4 bytes, or the next hop)."""
    width = 16 if v6 else 4
    if ifindex is not None:
        return struct.pack("<II", flags, ifindex) + bytes(width - 4)
    return struct.pack("<I", flags) + (ipaddress.ip_address(next_hop).packed if next_hop else bytes(width))


def route_decode(key: bytes, value: bytes) -> dict:
    plen = struct.unpack_from("<I", key)[0]
    flags = struct.unpack_from("<I", value)[0]
    out = {"cidr": f"{_ips(key[4:8])}/{plen}", "flags": flags}
    if flags & RT_LOCAL and flags & RT_WORKLOAD:
        out["ifindex"] = struct.unpack_from("<I", value, 4)[0]
    else:
        out["next_hop"] = _ips(value[4:8])
    return out


# IP sets (cali_v4_ip_sets): mask LE u32, set_id BE u64, addr BE, port LE u16, proto u8, pad.
IPSET_FULL_MASK = 128


def ipset_key(set_id: int, cidr: str, proto: int = 0, port: int = 0) -> bytes:
    """v4 (20 bytes) or v6 (cali_v6_ip_sets, 32 bytes) by the CIDR."""
    net = ipaddress.ip_network(cidr, strict=False)
    mask = 64 + (net.max_prefixlen + 16 + 8 if proto else net.prefixlen)
    return struct.pack("<I", mask) + struct.pack(">Q", set_id) + net.network_address.packed + struct.pack(
        "<HBB", port, proto, 0)


def ipset_decode(key: bytes) -> dict:
    mask = struct.unpack_from("<I", key)[0]
    set_id = struct.unpack_from(">Q", key, 4)[0]
    port, proto, _ = struct.unpack_from("<HBB", key, 16)
    if proto:
        return {"set_id": set_id, "cidr": f"{_ips(key[12:16])}/32", "proto": proto, "port": port}
    return {"set_id": set_id, "cidr": f"{_ips(key[12:16])}/{mask - 64}", "proto": 0, "port": 0}


IPSET_VALUE = struct.pack("<I", 1)


# Conntrack (cali_v4_ct3 / ct4): key proto u32, addr_a, addr_b (BE), port_a, port_b (host order).
def ct_key(proto: int, ip1: str, ip2: str, port1: int, port2: int) -> bytes:
    """Calico's A/B ordering: the raw BE words compared as native (LE) u32, then ports (conntrack.h)."""
    a, b = _ip(ip1), _ip(ip2)
    na, nb = struct.unpack("<I", a)[0], struct.unpack("<I", b)[0]
    if na < nb or (na == nb and port1 < port2):
        return struct.pack("<I", proto) + a + b + struct.pack("<HH", port1, port2)
    return struct.pack("<I", proto) + b + a + struct.pack("<HH", port2, port1)


def ct_key_decode(key: bytes) -> dict:
    proto = struct.unpack_from("<I", key)[0]
    pa, pb = struct.unpack_from("<HH", key, 12)
    return {"proto": proto, "addr_a": _ips(key[4:8]), "addr_b": _ips(key[8:12]), "port_a": pa, "port_b": pb}


CT_NORMAL, CT_NAT_FWD, CT_NAT_REV = 0, 1, 2
LEG_SYN, LEG_ACK, LEG_FIN, LEG_RST, LEG_APPROVED, LEG_OPENER, LEG_WORKLOAD = (1 << i for i in range(7))


def ct_leg(bytes_: int = 0, packets: int = 0, seqno: int = 0, bits: int = 0, ifindex: int = 0) -> bytes:
    return struct.pack("<QIIII", bytes_, packets, seqno, bits, ifindex)


def ct_value(ct_type: int = CT_NORMAL, flags: int = 0, a_to_b: bytes = b"", b_to_a: bytes = b"",
             rst_seen: int = 0, last_seen: int = 0, tun_ip: str = "0.0.0.0", orig_ip: str = "0.0.0.0",
             orig_port: int = 0, orig_sport: int = 0, orig_sip: str = "0.0.0.0",
             nat_rev_key: bytes = b"", nat_sport: int = 0) -> bytes:
    """88 bytes. flags: bits 0-7 @17, 8-15 @23, 16-23 @18, 24-31 @19 (the last two v3.32+ only).
    NAT_FWD entries carry nat_rev_key (16 B) @24 and nat_sport @40 instead of the legs."""
    v = bytearray(88)
    struct.pack_into("<QQBB", v, 0, rst_seen, last_seen, ct_type, flags & 0xff)
    v[18] = (flags >> 16) & 0xff
    v[19] = (flags >> 24) & 0xff
    v[23] = (flags >> 8) & 0xff
    if ct_type == CT_NAT_FWD:
        v[24:40] = nat_rev_key.ljust(16, b"\0")
        struct.pack_into("<H", v, 40, nat_sport)
    else:
        v[24:48] = (a_to_b or ct_leg())
        v[48:72] = (b_to_a or ct_leg())
    v[72:76] = _ip(tun_ip)
    v[76:80] = _ip(orig_ip)
    struct.pack_into("<HH", v, 80, orig_port, orig_sport)
    v[84:88] = _ip(orig_sip)
    return bytes(v)


def _leg_decode(b: bytes) -> dict:
    by, pk, seq, bits, ifi = struct.unpack("<QIIII", b)
    return {"bytes": by, "packets": pk, "seqno": seq, "bits": bits, "ifindex": ifi}


def ct_value_decode(v: bytes) -> dict:
    rst, last, t, f0 = struct.unpack_from("<QQBB", v)
    out = {"rst_seen": rst, "last_seen": last, "type": t,
           "flags": f0 | v[23] << 8 | v[18] << 16 | v[19] << 24,
           "tun_ip": _ips(v[72:76]), "orig_ip": _ips(v[76:80]),
           "orig_port": struct.unpack_from("<H", v, 80)[0], "orig_sport": struct.unpack_from("<H", v, 82)[0],
           "orig_sip": _ips(v[84:88])}
    if t == CT_NAT_FWD:
        out["nat_rev_key"] = bytes(v[24:40])
        out["nat_sport"] = struct.unpack_from("<H", v, 40)[0]
    else:
        out["a_to_b"] = _leg_decode(v[24:48])
        out["b_to_a"] = _leg_decode(v[48:72])
    return out


# NAT frontend (cali_v4_nat_fe3, LPM): prefixlen LE (56 + source prefix), addr BE, port LE, proto,
# source addr BE, pad. Value: id, count, local, affinity_timeo, flags (u32 LE).
NAT_FE_PREFIX_BASE = 56


def nat_fe_key(addr: str, port: int, proto: int, src_cidr: str = "0.0.0.0/0") -> bytes:
    src = ipaddress.IPv4Network(src_cidr, strict=False)
    return (struct.pack("<I", NAT_FE_PREFIX_BASE + src.prefixlen) + _ip(addr) + struct.pack("<HB", port, proto)
            + src.network_address.packed + b"\0")


def nat_fe_key_decode(k: bytes) -> dict:
    plen = struct.unpack_from("<I", k)[0]
    port, proto = struct.unpack_from("<HB", k, 8)
    return {"addr": _ips(k[4:8]), "port": port, "proto": proto,
            "src": f"{_ips(k[11:15])}/{plen - NAT_FE_PREFIX_BASE}"}


def nat_fe_value(svc_id: int, count: int, local: int, affinity_timeo: int = 0, flags: int = 0) -> bytes:
    return struct.pack("<5I", svc_id, count, local, affinity_timeo, flags)


def nat_fe_value_decode(v: bytes) -> dict:
    return dict(zip(("id", "count", "local", "affinity_timeo", "flags"), struct.unpack("<5I", v)))


def nat_be_key(svc_id: int, ordinal: int) -> bytes:
    return struct.pack("<II", svc_id, ordinal)


def nat_be_value(addr: str, port: int) -> bytes:
    return _ip(addr) + struct.pack("<H", port) + b"\0\0"


def nat_be_decode(k: bytes, v: bytes) -> dict:
    svc_id, ordinal = struct.unpack("<II", k)
    return {"id": svc_id, "ordinal": ordinal, "addr": _ips(v[:4]), "port": struct.unpack_from("<H", v, 4)[0]}


# Counters (cali_counters*): key {u32 ifindex, u32 hook}; hook 0 tc ingress, 1 tc egress, 2 XDP.
HOOK_INGRESS, HOOK_EGRESS, HOOK_XDP = 0, 1, 2
REASON_TOTAL, REASON_ACCEPTED_BY_POLICY, REASON_DROPPED_BY_POLICY = 0, 2, 4


def counters_key(ifindex: int, hook: int) -> bytes:
    return struct.pack("<II", ifindex, hook)


def counters_value(version: str, per_cpu: list[list[int]] | None = None) -> bytes:
    """Per-CPU u64[N]; missing CPUs / slots are zero."""
    n = COUNTERS[version][1]
    out = b""
    for cpu in range(bpfsys.possible_cpus()):
        row = (per_cpu[cpu] if per_cpu and cpu < len(per_cpu) else [])
        out += struct.pack(f"<{n}Q", *(list(row) + [0] * (n - len(row))))
    return out


def counters_decode(version: str, raw: bytes) -> list[list[int]]:
    n = COUNTERS[version][1]
    return [list(struct.unpack(f"<{n}Q", c)) for c in bpfsys.percpu_split(raw, 8 * n)]


def rule_counter_key(rule_id: int) -> bytes:
    return struct.pack("<Q", rule_id)


def rule_counter_decode(raw: bytes) -> int:
    """Sum over CPUs."""
    return sum(struct.unpack("<Q", c)[0] for c in bpfsys.percpu_split(raw, 8))


# Per-packet state (key 0 of cali_state*): the fields the policy program reads and writes.
STATE_FLAG_DEST_IS_HOST, STATE_FLAG_SRC_IS_HOST, STATE_FLAG_LOG_PACKET = 0x4, 0x8, 0x400


def state_offsets(version: str) -> dict[str, int]:
    """3.30+ have the 8-byte eventhdr in front; 3.28/3.29 not (flags@360 there)."""
    h = 8 if int(version.split(".")[1]) >= 30 else 0
    return {"ip_src": h + 0, "ip_dst": h + 16, "pre_nat_ip_dst": h + 32, "post_nat_ip_dst": h + 48,
            "pol_rc": h + 84, "sport": h + 88, "dport": h + 90, "pre_nat_dport": h + 92, "post_nat_dport": h + 94,
            "ip_proto": h + 96, "rules_hit": h + 100, "rule_ids": h + 104, "flags": h + 360}


def state_encode(version: str, size: int | None = None, *, ip_src="0.0.0.0", ip_dst="0.0.0.0",
                 pre_nat_ip_dst=None, post_nat_ip_dst=None, sport=0, dport=0, pre_nat_dport=None,
                 post_nat_dport=None, ip_proto=0, flags=0, pol_rc=0, rules_hit=0, rule_ids=()) -> bytes:
    o = state_offsets(version)
    v = bytearray(size or STATE[version][1])
    v[o["ip_src"]:o["ip_src"] + 4] = _ip(ip_src)
    v[o["ip_dst"]:o["ip_dst"] + 4] = _ip(ip_dst)
    v[o["pre_nat_ip_dst"]:o["pre_nat_ip_dst"] + 4] = _ip(pre_nat_ip_dst or ip_dst)
    v[o["post_nat_ip_dst"]:o["post_nat_ip_dst"] + 4] = _ip(post_nat_ip_dst or ip_dst)
    struct.pack_into("<HHHH", v, o["sport"], sport, dport, dport if pre_nat_dport is None else pre_nat_dport,
                     dport if post_nat_dport is None else post_nat_dport)
    v[o["ip_proto"]] = ip_proto
    struct.pack_into("<i", v, o["pol_rc"], pol_rc)
    struct.pack_into("<I", v, o["rules_hit"], rules_hit)
    for i, rid in enumerate(rule_ids):
        struct.pack_into("<Q", v, o["rule_ids"] + 8 * i, rid)
    struct.pack_into("<Q", v, o["flags"], flags)
    return bytes(v)


def state_decode(version: str, v: bytes) -> dict:
    o = state_offsets(version)
    hit = struct.unpack_from("<I", v, o["rules_hit"])[0]
    return {"ip_src": _ips(v[o["ip_src"]:o["ip_src"] + 4]),
            "post_nat_ip_dst": _ips(v[o["post_nat_ip_dst"]:o["post_nat_ip_dst"] + 4]),
            "sport": struct.unpack_from("<H", v, o["sport"])[0],
            "post_nat_dport": struct.unpack_from("<H", v, o["post_nat_dport"])[0],
            "ip_proto": v[o["ip_proto"]],
            "pol_rc": struct.unpack_from("<i", v, o["pol_rc"])[0], "rules_hit": hit,
            "rule_ids": [struct.unpack_from("<Q", v, o["rule_ids"] + 8 * i)[0] for i in range(min(hit, 32))],
            "flags": struct.unpack_from("<Q", v, o["flags"])[0]}


def dump(version: str, globals_dir: str) -> dict:
    """Decoded contents of the maps the lab writes (for debugging a lab; run inside its mount namespace)."""
    sp = {s.role: s for s in map_specs(version)}

    def entries(role):
        s = sp[role]
        with open_map(globals_dir, s) as fd:
            size = bpfsys.value_buffer_size(bpfsys.map_info(fd))
            for k in bpfsys.map_keys(fd, s.key_size):
                v = bpfsys.map_lookup(fd, k, size)
                if v is not None:
                    yield k, v

    out = {
        "ifstate": {str(struct.unpack("<I", k)[0]): ifstate_decode(v) for k, v in entries("ifstate")},
        "routes": [route_decode(k, v) for k, v in entries("routes")],
        "ipsets": [ipset_decode(k) for k, _ in entries("ipsets")],
        "nat_fe": [dict(nat_fe_key_decode(k), **nat_fe_value_decode(v)) for k, v in entries("nat_fe")],
        "nat_be": [nat_be_decode(k, v) for k, v in entries("nat_be")],
        "ct": [dict(ct_key_decode(k), **{x: y for x, y in ct_value_decode(v).items() if x != "nat_rev_key"})
               for k, v in entries("ct")],
        "counters": {f"{i}/{hk}": [sum(col) for col in zip(*counters_decode(version, v))]
                     for (i, hk), v in ((struct.unpack("<II", k), v) for k, v in entries("counters"))},
        "rule_counters": {str(struct.unpack("<Q", k)[0]): rule_counter_decode(v)
                          for k, v in entries("rule_counters")},
    }
    for role in [r for r in sp if r.startswith(("jump", "progs"))]:
        with open_map(globals_dir, sp[role]) as fd:
            out[sp[role].name] = {str(struct.unpack("<I", k)[0]): struct.unpack("<I", v)[0]
                                  for k in bpfsys.map_keys(fd, 4)
                                  if (v := bpfsys.map_lookup(fd, k, 4)) is not None}
    return out


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "table":
        for s in map_specs(argv[1]):
            print(f"{s.name:18} {s.type:16} key {s.key_size:3} value {s.value_size:4} max {s.max_entries:8} "
                  f"flags {s.flags:#x}  ({s.role})")
        return 0
    if len(argv) == 3 and argv[0] == "dump":
        import json
        try:
            print(json.dumps(dump(argv[1], argv[2]), indent=1, default=str))
        except (OSError, ValueError) as e:
            print(f"maps.py dump: {e}".splitlines()[0], file=sys.stderr)
            return 1
        return 0
    print("usage: maps.py table VERSION | maps.py dump VERSION GLOBALS_DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
