"""Policy programs from polprog.py against Calico's own policy-program test cases, judged by the kernel.

Cases are a data table ported from projectcalico/calico felix/bpf/ut/pol_prog_test.go (v3.32.0): the same
rules, packets and expected allow/drop (IPv4 ones; their IPv6 twins are out of scope). Each program is
generated for 3.30 and for 3.32, loaded as SCHED_CLS with a PRIVATE non-per-CPU array state map, a
private IP-set LPM map and a private static prog array holding stubs that return 123 (allowed, at
index 2) and 124 (dropped, at index 4); skb->cb[0]/cb[1] carry those indices as calico_tc_main sets
them. BPF_PROG_TEST_RUN runs it; we then check the return value, pol_rc, rules_hit and rule_ids, and that
nothing else in the state changed. Nothing is pinned.

Expected rule ids: literal for the cases ported from TestPolicyProgramsFlowLog and
TestPolicyProgramsExceedMatchIdSpace; for the others every rule gets a distinct id and the expected
sequence comes from `expected_ids`, a plain walk of Calico's tier/policy/profile semantics (which also has
to agree with Calico's literal verdict).

    python3 tests/lab/ebpf/test_polprog.py     # root; prints "N passed, M failed"; exit 0/1 (77 = skipped)
"""

from __future__ import annotations

import ipaddress
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import asm  # noqa: E402
import bpfsys  # noqa: E402
import maps  # noqa: E402
from polprog import MAX_JUMPS, TC_STRIDE, MapFds, Policy, Rule, Rules, Tier, generate  # noqa: E402

ALLOWED_IDX, DROP_IDX = 2, 4
FLAG_DEST_IS_HOST, FLAG_SRC_IS_HOST = 0x4, 0x8  # toHost() / fromHost()
RC_ALLOWED, RC_DROPPED = 123, 124
VERSIONS = ("3.30", "3.32")


# --------------------------------------------------------------------------------------------
# Packets, as the Go helpers build them.


def _hp(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def tcp(src, dst, flags=0):
    (s, sp), (d, dp) = _hp(src), _hp(dst)
    return {"proto": 6, "src": s, "sport": sp, "dst": d, "dport": dp, "flags": flags}


def udp(src, dst, flags=0):
    return dict(tcp(src, dst, flags), proto=17)


def icmp(src, dst, typ=0, code=0, flags=0):
    return {"proto": 1, "src": src, "sport": 0, "dst": dst, "dport": (code << 8) | typ, "flags": flags}


def noports(proto, src, dst, flags=0):
    return {"proto": proto, "src": src, "sport": 0, "dst": dst, "dport": 0, "flags": flags}


def pre_nat(pkt, dst):
    """packet.preNAT: the destination before DNAT ("addr:port")."""
    addr, _, port = dst.partition(":")
    return {**pkt, "pre_dst": addr, "pre_dport": int(port)}


def to_host(pkt):
    return {**pkt, "flags": pkt["flags"] | FLAG_DEST_IS_HOST}


def from_host(pkt):
    return {**pkt, "flags": pkt["flags"] | FLAG_SRC_IS_HOST}


def state_in(version, pkt):
    # pol_prog_test.go StateIn: dport (ICMP type/code) only for ICMP; post-NAT dport always.
    return maps.state_encode(version, ip_src=pkt["src"], ip_dst=pkt["dst"], ip_proto=pkt["proto"],
                             pre_nat_ip_dst=pkt.get("pre_dst"),
                             sport=pkt["sport"], dport=pkt["dport"] if pkt["proto"] == 1 else 0,
                             pre_nat_dport=0 if pkt["proto"] == 1 else pkt.get("pre_dport", pkt["dport"]),
                             post_nat_dport=pkt["dport"], flags=pkt["flags"])


# --------------------------------------------------------------------------------------------
# A plain walk of Calico's policy semantics, for the expected rule-id sequence.


def _in_set(members, addr, port, proto):
    for m in members:
        cidr, _, np = m.partition(",")
        if ipaddress.IPv4Address(addr) not in ipaddress.IPv4Network(cidr, strict=False):
            continue
        if not np:
            return True
        mproto, _, mport = np.partition(":")
        if {"tcp": 6, "udp": 17}[mproto] == proto and int(mport) == port:
            return True
    return False


def _in_nets(nets, addr):
    return any(ipaddress.IPv4Address(addr) in ipaddress.IPv4Network(n, strict=False) for n in nets)


def _in_ports(ranges, port):
    return any(a <= port <= b for a, b in ranges)


def _proto(p):
    return {"tcp": 6, "udp": 17, "icmp": 1, "sctp": 132}.get(str(p).lower(), p) if p is not None else None


def rule_matches(r: Rule, pkt, ipsets, pre_dnat: bool = False) -> bool:
    s, d, sp, dp, pr = pkt["src"], pkt["dst"], pkt["sport"], pkt["dport"], pkt["proto"]
    if pre_dnat:  # pre-DNAT tiers match the destination before DNAT
        d, dp = pkt.get("pre_dst", d), pkt.get("pre_dport", dp)
    sets = lambda names, a, p: [_in_set(ipsets[n], a, p, pr) for n in names]  # noqa: E731
    checks = [
        r.protocol is None or _proto(r.protocol) == pr,
        r.not_protocol is None or _proto(r.not_protocol) != pr,
        not r.src_net or _in_nets(r.src_net, s),
        not _in_nets(r.not_src_net, s),
        not r.dst_net or _in_nets(r.dst_net, d),
        not _in_nets(r.not_dst_net, d),
        all(sets(r.src_ip_sets, s, sp)),
        not any(sets(r.not_src_ip_sets, s, sp)),
        not r.dst_ip_sets or any(sets(r.dst_ip_sets, d, dp)),
        not any(sets(r.not_dst_ip_sets, d, dp)),
        not (r.src_ports or r.src_named_port_sets) or _in_ports(r.src_ports, sp) or any(
            sets(r.src_named_port_sets, s, sp)),
        not (_in_ports(r.not_src_ports, sp) or any(sets(r.not_src_named_port_sets, s, sp))),
        not (r.dst_ports or r.dst_named_port_sets) or _in_ports(r.dst_ports, dp) or any(
            sets(r.dst_named_port_sets, d, dp)),
        not (_in_ports(r.not_dst_ports, dp) or any(sets(r.not_dst_named_port_sets, d, dp))),
        r.icmp_type is None or (dp & 0xff) == r.icmp_type and (r.icmp_code is None or dp >> 8 == r.icmp_code),
        r.not_icmp_type is None or not ((dp & 0xff) == r.not_icmp_type and (
            r.not_icmp_code is None or dp >> 8 == r.not_icmp_code)),
    ]
    return all(checks)


def expected_ids(rules: Rules, pkt, ipsets) -> tuple[str, list[int], bool]:
    """(verdict, recorded ids (max 32), log flag set). Host policy first (pre-DNAT tiers, then normal
    host tiers and profiles for to/from-host traffic or apply-on-forward tiers for forwarded traffic),
    then, on a workload interface, its tiers and profiles."""
    ids, log = [], [False]

    def hit(i):
        if len(ids) < 32:
            ids.append(i)

    def tiers(ts, pre=False):
        """allow / deny, or None when every tier passed."""
        for tier in ts:
            passed = False
            for pol in tier.policies:
                for r in pol.rules:
                    if not rule_matches(r, pkt, ipsets, pre):
                        continue
                    if r.action == "log":
                        log[0] = True
                        continue
                    hit(r.match_id)
                    if r.action in ("allow", "deny"):
                        return r.action
                    passed = True
                    break
                if passed:
                    break
            if passed:
                continue
            hit(tier.end_rule_id)
            if tier.end_action != "pass":
                return "deny"
        return None

    def profiles(ps):
        for prof in ps:
            for r in prof.rules:
                if rule_matches(r, pkt, ipsets):
                    hit(r.match_id)
                    return "allow" if r.action == "allow" else "deny"
        hit(rules.no_profile_match_id)
        return "deny"

    v = tiers(rules.host_pre_dnat_tiers, pre=True)
    if v is None:
        if pkt["flags"] & (FLAG_DEST_IS_HOST | FLAG_SRC_IS_HOST):
            if not rules.suppress_normal_host_policy:
                v = tiers(rules.host_normal_tiers) or profiles(rules.host_profiles)
        else:
            v = tiers(rules.host_forward_tiers)
    if v == "deny":
        return "deny", ids, log[0]
    if rules.for_host_interface:
        return "allow", ids, log[0]
    v = tiers(rules.tiers) or profiles(rules.profiles)
    return v, ids, log[0]


# --------------------------------------------------------------------------------------------
# The cases (names as in pol_prog_test.go).


def single_tier(*rules) -> Rules:
    return Rules(tiers=[Tier("base tier", [Policy("test policy", list(rules))])],
                 suppress_normal_host_policy=False)


T = "tcp"
BASIC_DROPS = [noports(253, "10.0.0.1", "10.0.0.2"), tcp("10.0.0.1:31245", "10.0.0.2:80"),
               tcp("10.0.0.2:80", "10.0.0.1:31245"), icmp("10.0.0.1", "10.0.0.2")]

CASES = [
    dict(name="no tiers", rules=Rules(suppress_normal_host_policy=False), dropped=BASIC_DROPS),
    dict(name="empty tier has no impact",
         rules=Rules(tiers=[Tier("empty tier", end_action="pass"),
                            Tier("allow", [Policy("allow all", [Rule("allow")])])],
                     suppress_normal_host_policy=False),
         allowed=BASIC_DROPS),
    dict(name="unreachable tier",
         rules=Rules(tiers=[Tier("allow all", [Policy("allow all", [Rule("allow")])]),
                            Tier("unreachable", [Policy("deny all", [Rule("deny")])])],
                     suppress_normal_host_policy=False),
         allowed=BASIC_DROPS),
    dict(name="pass to nowhere",
         rules=Rules(tiers=[Tier("pass", [Policy("pass rule", [Rule("pass")])])], suppress_normal_host_policy=False),
         dropped=BASIC_DROPS),
    dict(name="pass to allow",
         rules=Rules(tiers=[Tier("pass", [Policy("pass through", [Rule("pass"), Rule("deny")])]),
                            Tier("allow", [Policy("allow all", [Rule("allow")])])],
                     suppress_normal_host_policy=False),
         allowed=BASIC_DROPS),
    dict(name="pass to deny",
         rules=Rules(tiers=[Tier("pass", [Policy("pass through", [Rule("pass"), Rule("allow")])]),
                            Tier("allow", [Policy("deny all", [Rule("deny")])])],
                     suppress_normal_host_policy=False),
         dropped=BASIC_DROPS),
    dict(name="explicit allow", rules=single_tier(Rule("allow")),
         allowed=BASIC_DROPS + [udp("10.0.0.2:80", "10.0.0.1:31245")]),
    dict(name="explicit deny", rules=single_tier(Rule("deny")),
         dropped=BASIC_DROPS[1:] + [udp("10.0.0.1:31245", "10.0.0.2:80")]),
    dict(name="allow tcp", rules=single_tier(Rule("allow", protocol=T)),
         allowed=[tcp("10.0.0.1:31245", "10.0.0.2:80"), tcp("10.0.0.2:80", "10.0.0.1:31245")],
         dropped=[noports(253, "10.0.0.1", "10.0.0.2"), udp("10.0.0.2:80", "10.0.0.1:31245"),
                  icmp("10.0.0.1", "10.0.0.2")]),
    dict(name="allow !tcp", rules=single_tier(Rule("allow", not_protocol=T)),
         allowed=[noports(253, "10.0.0.1", "10.0.0.2"), udp("10.0.0.2:80", "10.0.0.1:31245"),
                  icmp("10.0.0.1", "10.0.0.2")],
         dropped=[tcp("10.0.0.1:31245", "10.0.0.2:80"), tcp("10.0.0.2:80", "10.0.0.1:31245")]),
    dict(name="allow 10.0.0.1/32", rules=single_tier(Rule("allow", src_net=["10.0.0.1/32"])),
         allowed=[noports(253, "10.0.0.1", "10.0.0.2"), tcp("10.0.0.1:31245", "10.0.0.2:80"),
                  icmp("10.0.0.1", "10.0.0.2")],
         dropped=[noports(253, "10.0.0.2", "10.0.0.2"), tcp("10.0.0.2:80", "10.0.0.1:31245")]),
    dict(name="allow from CIDRs",
         rules=single_tier(Rule("allow", src_net=["102.0.0.0/8", "10.0.0.1/32", "11.0.0.1/32"])),
         allowed=[noports(253, "10.0.0.1", "10.0.0.2"), icmp("11.0.0.1", "10.0.0.2"),
                  udp("10.0.0.1:31245", "10.0.0.2:80")],
         dropped=[noports(253, "10.0.0.2", "10.0.0.2"), tcp("10.0.0.2:80", "10.0.0.1:31245")]),
    dict(name="allow from !CIDRs",
         rules=single_tier(Rule("allow", not_src_net=["102.0.0.0/8", "10.0.0.1/32", "11.0.0.1/32"])),
         allowed=[noports(253, "10.0.0.2", "10.0.0.2"), tcp("10.0.0.2:80", "10.0.0.1:31245")],
         dropped=[noports(253, "10.0.0.1", "10.0.0.2"), icmp("11.0.0.1", "10.0.0.2"),
                  udp("10.0.0.1:31245", "10.0.0.2:80")]),
    dict(name="allow to CIDRs",
         rules=single_tier(Rule("allow", dst_net=["102.0.0.0/8", "10.0.0.1/32", "11.0.0.1/32"])),
         allowed=[noports(253, "10.0.0.2", "10.0.0.1"), tcp("10.0.0.2:80", "10.0.0.1:31245")],
         dropped=[noports(253, "10.0.0.1", "10.0.0.2"), udp("10.0.0.2:12345", "123.0.0.1:1024")]),
    dict(name="allow to !CIDRs",
         rules=single_tier(Rule("allow", not_dst_net=["102.0.0.0/8", "10.0.0.1/32", "11.0.0.1/32"])),
         allowed=[noports(253, "10.0.0.1", "123.0.0.1"), udp("10.0.0.2:12345", "123.0.0.1:1024")],
         dropped=[noports(253, "10.0.0.2", "10.0.0.1"), tcp("10.0.0.2:80", "10.0.0.1:31245")]),
    dict(name="allow to 0.0.0.0/0", rules=single_tier(Rule("allow", dst_net=["0.0.0.0/0"])),
         allowed=[noports(253, "192.168.0.1", "123.0.0.2"), tcp("10.0.0.1:31245", "10.0.0.2:80"),
                  udp("1.1.1.1:31245", "2.2.2.2:80"), icmp("172.16.1.1", "172.17.2.2")]),
    dict(name="allow to !0.0.0.0/0", rules=single_tier(Rule("allow", not_dst_net=["0.0.0.0/0"])),
         dropped=[noports(253, "192.168.0.1", "123.0.0.2"), tcp("10.0.0.1:31245", "10.0.0.2:80"),
                  udp("1.1.1.1:31245", "2.2.2.2:80"), icmp("172.16.1.1", "172.17.2.2")]),
    dict(name="allow from tcp:80", rules=single_tier(Rule("allow", protocol=T, src_ports=[(80, 80)])),
         allowed=[tcp("10.0.0.2:80", "10.0.0.1:31245")],
         dropped=[noports(253, "10.0.0.2", "10.0.0.1"), tcp("10.0.0.1:31245", "10.0.0.2:80"),
                  udp("10.0.0.2:80", "10.0.0.1:31245"), icmp("10.0.0.1", "10.0.0.2")]),
    dict(name="allow from tcp:80-81", rules=single_tier(Rule("allow", protocol=T, src_ports=[(80, 81)])),
         allowed=[tcp("10.0.0.2:80", "10.0.0.1:31245"), tcp("10.0.0.2:81", "10.0.0.1:31245")],
         dropped=[noports(253, "10.0.0.2", "10.0.0.1"), tcp("10.0.0.2:79", "10.0.0.1:31245"),
                  tcp("10.0.0.2:82", "10.0.0.1:31245"), tcp("10.0.0.1:31245", "10.0.0.2:80"),
                  udp("10.0.0.2:80", "10.0.0.1:31245")]),
    dict(name="allow from tcp:0-80", rules=single_tier(Rule("allow", protocol=T, src_ports=[(0, 80)])),
         allowed=[tcp("10.0.0.2:0", "10.0.0.1:31245"), tcp("10.0.0.2:80", "10.0.0.1:31245")],
         dropped=[noports(253, "10.0.0.2", "10.0.0.1"), tcp("10.0.0.2:81", "10.0.0.1:31245")]),
    dict(name="allow to tcp:ranges",
         rules=single_tier(Rule("allow", protocol=T, dst_ports=[(80, 81), (90, 90)])),
         allowed=[tcp("10.0.0.1:31245", "10.0.0.2:80"), tcp("10.0.0.1:31245", "10.0.0.2:81"),
                  tcp("10.0.0.1:31245", "10.0.0.2:90")],
         dropped=[noports(253, "10.0.0.1", "10.0.0.2"), tcp("10.0.0.1:31245", "10.0.0.2:79"),
                  tcp("10.0.0.1:31245", "10.0.0.2:82"), tcp("10.0.0.1:31245", "10.0.0.2:89"),
                  tcp("10.0.0.1:31245", "10.0.0.2:91"), udp("10.0.0.1:31245", "10.0.0.2:80")]),
    dict(name="allow to tcp:!ranges",
         rules=single_tier(Rule("allow", protocol=T, not_dst_ports=[(80, 81), (90, 90)])),
         allowed=[tcp("10.0.0.1:31245", "10.0.0.2:79"), tcp("10.0.0.1:31245", "10.0.0.2:82"),
                  tcp("10.0.0.1:31245", "10.0.0.2:89"), tcp("10.0.0.1:31245", "10.0.0.2:91")],
         dropped=[noports(253, "10.0.0.2", "10.0.0.1"), tcp("10.0.0.1:31245", "10.0.0.2:80"),
                  tcp("10.0.0.1:31245", "10.0.0.2:81"), tcp("10.0.0.1:31245", "10.0.0.2:90"),
                  udp("10.0.0.1:31245", "10.0.0.2:80")]),
    dict(name="allow from tcp:!80", rules=single_tier(Rule("allow", protocol=T, not_src_ports=[(80, 80)])),
         allowed=[tcp("10.0.0.1:31245", "10.0.0.2:80")],
         dropped=[noports(253, "10.0.0.2", "10.0.0.1"), tcp("10.0.0.2:80", "10.0.0.1:31245"),
                  udp("10.0.0.1:31245", "10.0.0.2:80"), icmp("10.0.0.1", "10.0.0.2")]),
    dict(name="allow to tcp:65535", rules=single_tier(Rule("allow", protocol=T, dst_ports=[(65535, 65535)])),
         allowed=[tcp("10.0.0.1:31245", "10.0.0.2:65535")],
         dropped=[noports(253, "10.0.0.2", "10.0.0.1"), tcp("10.0.0.2:80", "10.0.0.1:31245")]),
    dict(name="allow from empty IP set", rules=single_tier(Rule("allow", protocol=T, src_ip_sets=["setA"])),
         ipsets={"setA": []},
         dropped=[noports(253, "10.0.0.2", "10.0.0.1"), tcp("10.0.0.2:80", "10.0.0.1:31245"),
                  tcp("10.0.0.1:31245", "10.0.0.2:80"), udp("10.0.0.2:80", "10.0.0.1:31245"),
                  icmp("10.0.0.1", "10.0.0.2")]),
    dict(name="allow from !empty IP set", rules=single_tier(Rule("allow", protocol=T, not_src_ip_sets=["setA"])),
         ipsets={"setA": []},
         allowed=[tcp("10.0.0.2:80", "10.0.0.1:31245"), tcp("10.0.0.1:31245", "10.0.0.2:80")],
         dropped=[noports(253, "10.0.0.2", "10.0.0.1"), udp("10.0.0.2:80", "10.0.0.1:31245"),
                  icmp("10.0.0.1", "10.0.0.2")]),
    dict(name="allow from IP set", rules=single_tier(Rule("allow", src_ip_sets=["setA"])),
         ipsets={"setA": ["10.0.0.0/8"]},
         allowed=[noports(253, "10.0.0.2", "10.0.0.1"), tcp("10.0.0.2:80", "10.0.0.1:31245"),
                  udp("10.0.0.2:12345", "123.0.0.1:1024"), icmp("10.0.0.1", "10.0.0.2")],
         dropped=[noports(253, "11.0.0.2", "10.0.0.1"), tcp("11.0.0.1:12345", "10.0.0.2:8080")]),
    dict(name="allow to IP set", rules=single_tier(Rule("allow", dst_ip_sets=["setA"])),
         ipsets={"setA": ["11.0.0.0/8", "123.0.0.1/32"]},
         allowed=[noports(253, "11.0.0.2", "11.0.0.1"), udp("10.0.0.2:12345", "123.0.0.1:1024")],
         dropped=[noports(253, "11.0.0.2", "10.0.0.1"), tcp("11.0.0.1:12345", "10.0.0.2:8080"),
                  udp("10.0.0.1:31245", "10.0.0.2:80")]),
    dict(name="allow from !IP set", rules=single_tier(Rule("allow", not_src_ip_sets=["setA"])),
         ipsets={"setA": ["10.0.0.0/8"]},
         allowed=[noports(253, "11.0.0.2", "10.0.0.1"), tcp("11.0.0.1:12345", "10.0.0.2:8080")],
         dropped=[noports(253, "10.0.0.2", "10.0.0.1"), tcp("10.0.0.2:80", "10.0.0.1:31245"),
                  udp("10.0.0.2:12345", "123.0.0.1:1024"), icmp("10.0.0.1", "10.0.0.2")]),
    dict(name="allow to !IP set", rules=single_tier(Rule("allow", not_dst_ip_sets=["setA"])),
         ipsets={"setA": ["11.0.0.0/8", "123.0.0.1/32"]},
         allowed=[noports(253, "11.0.0.2", "10.0.0.1"), tcp("11.0.0.1:12345", "10.0.0.2:8080"),
                  udp("10.0.0.1:31245", "10.0.0.2:80")],
         dropped=[noports(253, "11.0.0.2", "11.0.0.1"), udp("10.0.0.2:12345", "123.0.0.1:1024")]),
]


# hostPolProgramTests (pol_prog_test.go): host endpoint programs (ForHostInterface) and host-* policy
# on a workload interface.
def allow_dest_else_deny(name, dst):
    return [Policy(name, [Rule("allow", dst_net=[dst]), Rule("deny")])]


def allow_dest(name, dst):
    return [Policy(name, [Rule("allow", dst_net=[dst])])]


def pass_tier(pols):
    return [Tier("default", pols, end_action="pass")]


U_SVC = udp("123.0.0.1:1024", "10.96.0.10:53")
U_SVC11 = udp("123.0.0.1:1024", "10.96.0.11:53")
U_POD = udp("123.0.0.1:1024", "10.0.0.2:12345")
U_5 = udp("123.0.0.1:1024", "10.96.5.10:53")

CASES += [
    dict(name="host: no policy", rules=Rules(for_host_interface=True, suppress_normal_host_policy=False),
         allowed=[pre_nat(U_POD, "10.96.0.10:53"), U_SVC, pre_nat(U_POD, "10.96.0.11:53"),
                  pre_nat(U_SVC, "10.0.0.2:12345"), U_SVC11],
         dropped=[from_host(pre_nat(U_POD, "10.96.0.10:53")), from_host(U_SVC),
                  to_host(pre_nat(U_POD, "10.96.0.11:53")), to_host(pre_nat(U_SVC, "10.0.0.2:12345")),
                  to_host(U_SVC11)]),
    dict(name="host: pre-DNAT",
         rules=Rules(for_host_interface=True, suppress_normal_host_policy=False,
                     host_pre_dnat_tiers=pass_tier(allow_dest_else_deny("p1", "10.96.0.10/32"))),
         allowed=[noports(253, "11.0.0.2", "10.96.0.10"), pre_nat(U_POD, "10.96.0.10:53"), U_SVC],
         dropped=[noports(253, "11.0.0.2", "10.0.0.10"), pre_nat(U_POD, "10.96.0.11:53"),
                  pre_nat(U_SVC, "10.0.0.2:12345"), U_SVC11]),
    dict(name="host: apply-on-forward",
         rules=Rules(for_host_interface=True, suppress_normal_host_policy=False,
                     host_forward_tiers=pass_tier(allow_dest_else_deny("p1", "10.96.0.10/32"))),
         allowed=[U_SVC, pre_nat(U_SVC, "10.0.0.2:12345")],
         dropped=[U_SVC11, pre_nat(U_POD, "10.96.0.10:53"), to_host(U_SVC)]),
    dict(name="host: normal host policy",
         rules=Rules(for_host_interface=True, suppress_normal_host_policy=False,
                     host_normal_tiers=pass_tier(allow_dest_else_deny("p1", "10.96.0.10/32"))),
         allowed=[U_SVC, pre_nat(U_SVC, "10.0.0.2:12345"), U_SVC11, from_host(U_SVC),
                  to_host(pre_nat(U_SVC, "10.0.0.2:12345"))],
         dropped=[from_host(pre_nat(U_POD, "10.96.0.10:53")), to_host(pre_nat(U_POD, "10.96.0.11:53")),
                  to_host(U_SVC11)]),
    dict(name="host: AoF + normal",
         rules=Rules(for_host_interface=True, suppress_normal_host_policy=False,
                     host_forward_tiers=pass_tier(allow_dest_else_deny("p1", "10.96.0.10/32")),
                     host_normal_tiers=pass_tier(allow_dest_else_deny("p2", "10.96.5.0/24"))),
         allowed=[U_SVC, to_host(U_5), from_host(U_5)],
         dropped=[U_5, to_host(U_SVC), from_host(U_SVC)]),
    dict(name="host: AoF + suppressed normal",
         rules=Rules(for_host_interface=False, suppress_normal_host_policy=True,
                     host_forward_tiers=pass_tier(allow_dest_else_deny("p1", "10.96.0.10/32")),
                     host_normal_tiers=pass_tier(allow_dest_else_deny("p2", "10.96.5.0/24")),
                     tiers=pass_tier(allow_dest_else_deny("p1", "10.96.0.10/32"))),
         allowed=[U_SVC, to_host(U_SVC), from_host(U_SVC)],
         dropped=[U_5, to_host(U_5), from_host(U_5)]),
    dict(name="host: pre-DNAT policy + normal profiles",
         rules=Rules(for_host_interface=True, suppress_normal_host_policy=False,
                     host_pre_dnat_tiers=pass_tier(allow_dest("p1", "10.96.0.10/32")),
                     host_profiles=allow_dest("p2", "10.96.5.0/24")),
         allowed=[U_SVC, to_host(U_SVC), from_host(U_SVC), U_5, to_host(U_5), from_host(U_5),
                  from_host(pre_nat(U_POD, "10.96.0.10:53"))],
         dropped=[to_host(pre_nat(U_SVC, "10.0.0.2:12345")), to_host(pre_nat(U_POD, "10.96.0.11:53"))]),
]

NAMED_DROPS_TO = [noports(253, "11.0.0.2", "10.0.0.2"), tcp("11.0.0.1:12345", "10.0.0.2:8080"),
                  udp("10.0.0.1:31245", "10.0.0.2:80"), tcp("10.0.0.2:80", "10.0.0.1:31245"),
                  tcp("10.0.0.2:31245", "10.0.0.1:80")]
NAMED_DROPS_FROM = [noports(253, "10.0.0.2", "10.0.0.2"), tcp("10.0.0.2:8080", "11.0.0.1:12345"),
                    udp("10.0.0.2:80", "10.0.0.1:31245"), tcp("10.0.0.1:31245", "10.0.0.2:80"),
                    tcp("10.0.0.1:80", "10.0.0.2:31245")]
CASES += [
    dict(name="allow to named port", rules=single_tier(Rule("allow", dst_named_port_sets=["setA"])),
         ipsets={"setA": ["10.0.0.2/32,tcp:80", "123.0.0.1/32,udp:1024"]},
         allowed=[udp("10.0.0.2:12345", "123.0.0.1:1024"), tcp("10.0.0.1:31245", "10.0.0.2:80")],
         dropped=NAMED_DROPS_TO),
    dict(name="allow to named ports", rules=single_tier(Rule("allow", dst_named_port_sets=["setA", "setB"])),
         ipsets={"setA": ["10.0.0.2/32,tcp:80"], "setB": ["123.0.0.1/32,udp:1024"]},
         allowed=[udp("10.0.0.2:12345", "123.0.0.1:1024"), tcp("10.0.0.1:31245", "10.0.0.2:80")],
         dropped=NAMED_DROPS_TO),
    dict(name="allow to mixed ports",
         rules=single_tier(Rule("allow", dst_ports=[(81, 82), (90, 90)], dst_named_port_sets=["setA", "setB"])),
         ipsets={"setA": ["10.0.0.2/32,tcp:80"], "setB": ["123.0.0.1/32,udp:1024"]},
         allowed=[udp("10.0.0.2:12345", "123.0.0.1:1024"), tcp("10.0.0.1:31245", "10.0.0.2:80"),
                  tcp("10.0.0.1:31245", "10.0.0.2:90"), tcp("10.0.0.1:31245", "10.0.0.2:82")],
         dropped=NAMED_DROPS_TO),
    dict(name="allow from named ports", rules=single_tier(Rule("allow", src_named_port_sets=["setA", "setB"])),
         ipsets={"setA": ["10.0.0.2/32,tcp:80"], "setB": ["123.0.0.1/32,udp:1024"]},
         allowed=[udp("123.0.0.1:1024", "10.0.0.2:12345"), tcp("10.0.0.2:80", "10.0.0.1:31245")],
         dropped=NAMED_DROPS_FROM),
    dict(name="allow icmp packet with type 8", rules=single_tier(Rule("allow", icmp_type=8)),
         allowed=[icmp("10.0.0.1", "10.0.0.2", 8, 0)],
         dropped=[noports(253, "11.0.0.2", "10.0.0.2"), icmp("10.0.0.1", "10.0.0.2", 10, 0)]),
    dict(name="allow icmp packet with type 8 and code 3", rules=single_tier(Rule("allow", icmp_type=8, icmp_code=3)),
         allowed=[icmp("10.0.0.1", "10.0.0.2", 8, 3)],
         dropped=[icmp("10.0.0.1", "10.0.0.2", 10, 0), icmp("10.0.0.1", "10.0.0.2", 10, 3),
                  icmp("10.0.0.1", "10.0.0.2", 8, 4)]),
    dict(name="allow icmp packet with type not equal to 8", rules=single_tier(Rule("allow", not_icmp_type=8)),
         allowed=[icmp("10.0.0.1", "10.0.0.2", 10, 0)], dropped=[icmp("10.0.0.1", "10.0.0.2", 8, 0)]),
    dict(name="allow icmp packet with type not equal to 8 and code not equal to 3",
         rules=single_tier(Rule("allow", not_icmp_type=8, not_icmp_code=3)),
         allowed=[icmp("10.0.0.1", "10.0.0.2", 10, 0), icmp("10.0.0.1", "10.0.0.2", 8, 4),
                  icmp("10.0.0.1", "10.0.0.2", 10, 3)],
         dropped=[icmp("10.0.0.1", "10.0.0.2", 8, 3)]),
    dict(name="Protocol match", rules=single_tier(Rule("allow", protocol=253)),
         allowed=[noports(253, "11.0.0.2", "10.0.0.2")],
         dropped=[icmp("10.0.0.1", "10.0.0.2", 10, 0), udp("123.0.0.1:1024", "10.96.0.10:53"),
                  noports(254, "11.0.0.2", "10.0.0.2")]),
]

# TestPolicyProgramsFlowLog / ExceedMatchIdSpace: literal ids per packet.
CASES += [
    dict(name="flowlog: no tiers - no profile match", rules=Rules(no_profile_match_id=0xdead0000beef0000,
                                                                  suppress_normal_host_policy=False),
         literal_ids=True,
         dropped=[(udp("10.0.0.1:31245", "10.0.0.2:80"), [0xdead0000beef0000]),
                  (tcp("10.0.0.2:80", "10.0.0.1:31245"), [0xdead0000beef0000]),
                  (icmp("10.0.0.1", "10.0.0.2"), [0xdead0000beef0000])]),
    dict(name="flowlog: pass to nowhere - pass and no profile matches",
         rules=Rules(tiers=[Tier("pass", [Policy("pass rule", [Rule("pass", match_id=1234)])])],
                     no_profile_match_id=0xdead, suppress_normal_host_policy=False),
         literal_ids=True,
         dropped=[(udp("10.0.0.1:31245", "10.0.0.2:80"), [1234, 0xdead]),
                  (icmp("10.0.0.1", "10.0.0.2"), [1234, 0xdead])]),
    dict(name="flowlog: different packets match different tiers and rules",
         rules=Rules(no_profile_match_id=0xdead, suppress_normal_host_policy=False, tiers=[
             Tier("first", end_rule_id=0xbeef, policies=[
                 Policy("TCP pass", [Rule("pass", protocol="tcp", match_id=6)]),
                 Policy("UDP allow", [Rule("allow", protocol="udp", match_id=17)])]),
             Tier("tcp", end_rule_id=0xdeadbeef, policies=[
                 Policy("TCP ports", [Rule("pass", dst_ports=[(80, 80)], match_id=80),
                                      Rule("allow", dst_ports=[(443, 443)], match_id=443)]),
                 Policy("UDP allow", [Rule("allow", protocol="udp", match_id=17)])]),
             Tier("http", end_rule_id=0xbad, policies=[
                 Policy("TCP ports", [Rule("allow", src_ip_sets=["setFrom"], match_id=10002)])])]),
         ipsets={"setFrom": ["10.0.0.2/32"]}, literal_ids=True,
         allowed=[(udp("10.0.0.1:53", "10.0.0.2:53"), [17]),
                  (tcp("10.0.0.2:1234", "10.0.0.1:80"), [6, 80, 10002]),
                  (tcp("10.0.0.2:1234", "10.0.0.1:443"), [6, 443])],
         dropped=[(tcp("10.0.0.2:8080", "10.0.0.1:31245"), [6, 0xdeadbeef]),
                  (icmp("10.0.0.1", "10.0.0.2"), [0xbeef]),
                  (tcp("10.0.0.3:1234", "10.0.0.1:80"), [6, 80, 0xbad])]),
    dict(name="exceed match id space (33 pass tiers, then allow)",
         rules=Rules(suppress_normal_host_policy=False,
                     tiers=[Tier("", [Policy("", [Rule("pass", match_id=i + 1)])]) for i in range(33)]
                     + [Tier("", [Policy("", [Rule("allow", match_id=33)])])]),
         literal_ids=True, allowed=[(icmp("10.0.0.1", "10.0.0.2", 8, 3), list(range(1, 33)))]),
]

# Lab-shaped cases: Felix's workload layout (host checks suppressed), profiles, end-of-tier pass, log.
KNS = Policy("kns.ns1", [Rule("allow")])
KSA = Policy("ksa.ns1.default", [])
CASES += [
    dict(name="profiles: kns allow-all after an empty tier list",
         rules=Rules(profiles=[KNS, KSA]), allowed=BASIC_DROPS),
    dict(name="profiles: empty profiles deny (no-profile rule)", rules=Rules(profiles=[KSA]), dropped=BASIC_DROPS),
    dict(name="end-of-tier pass reaches profiles",
         rules=Rules(tiers=[Tier("platform", [Policy("deny-udp", [Rule("deny", protocol="udp")])],
                                 end_action="pass", end_rule_id=77)], profiles=[KNS, KSA]),
         allowed=[tcp("10.0.0.1:1000", "10.0.0.2:80"), icmp("10.0.0.1", "10.0.0.2", 8, 0)],
         dropped=[udp("10.0.0.1:1000", "10.0.0.2:53")]),
    dict(name="end-of-tier deny stops before profiles",
         rules=Rules(tiers=[Tier("default", [Policy("allow-80", [Rule("allow", protocol="tcp", dst_ports=[(80, 80)])])],
                                 end_action="deny", end_rule_id=78)], profiles=[KNS, KSA]),
         allowed=[tcp("10.0.0.1:1000", "10.0.0.2:80")],
         dropped=[tcp("10.0.0.1:1000", "10.0.0.2:81"), icmp("10.0.0.1", "10.0.0.2", 8, 0)]),
    dict(name="host traffic skips nothing when suppressed (workload layout)",
         rules=Rules(tiers=[Tier("default", [Policy("allow-80", [Rule("allow", protocol="tcp", dst_ports=[(80, 80)])])],
                                 end_action="deny", end_rule_id=78)]),
         allowed=[tcp("10.0.0.1:1000", "10.0.0.2:80", flags=0x4)],
         dropped=[tcp("10.0.0.1:1000", "10.0.0.2:81", flags=0x8)]),
    dict(name="host traffic hits the empty host profiles (unit-test layout)",
         rules=single_tier(Rule("allow")), dropped=[tcp("10.0.0.1:1000", "10.0.0.2:80", flags=0x4)]),
    dict(name="log rule sets LOG_PACKET and continues",
         rules=single_tier(Rule("log", protocol="tcp"), Rule("deny", protocol="tcp"), Rule("allow")),
         allowed=[udp("10.0.0.1:1000", "10.0.0.2:53")], dropped=[tcp("10.0.0.1:1000", "10.0.0.2:80")]),
    dict(name="negations combined: !proto, !src net, !dst set, !dst ports",
         rules=single_tier(Rule("allow", not_protocol="udp", not_src_net=["10.1.0.0/16"],
                                not_dst_ip_sets=["setB"], not_dst_ports=[(22, 22)])),
         ipsets={"setB": ["10.0.9.0/24"]},
         allowed=[tcp("10.0.0.1:1000", "10.0.0.2:80"), icmp("10.0.0.1", "10.0.0.2", 8, 0)],
         dropped=[udp("10.0.0.1:1000", "10.0.0.2:80"), tcp("10.1.0.1:1000", "10.0.0.2:80"),
                  tcp("10.0.0.1:1000", "10.0.9.9:80"), tcp("10.0.0.1:1000", "10.0.0.2:22")]),
]




# pol_prog_test.go's "WithLargePrefixedTier" expander, scaled down: a first tier of rules that never match
# (empty source set; some with long port lists) and a final pass, in front of the case's own tiers. With a
# jump budget of 200 per program (Felix: 7992) the generator splits it into several sub-programs chained
# through the policy jump map, including inside port lists, and the verdicts must not change.
def _noop_rule(n: int) -> Rule:
    ports = [(1, 1 + n % 8000)]
    if n % 7 == 0:
        ports += [(p * 2 + 10000, p * 2 + 10001) for p in range(40)]
    return Rule(("allow", "deny", "pass")[n % 3], protocol="tcp", src_ip_sets=["setNoOp"], dst_ports=ports)


def with_large_prefixed_tier(case: dict) -> dict:
    pols = [Policy(f"pol-{i}", [_noop_rule(i * 5 + j) for j in range(5)]) for i in range(30)]
    pols[-1].rules.append(Rule("pass"))
    rules = case["rules"]
    out = dict(case, name=f"WithLargePrefixedTier/{case['name']}", max_jumps=200, split=True,
               ipsets=dict(case.get("ipsets", {}), setNoOp=[]))
    out["rules"] = Rules(tiers=[Tier("extra tier", pols)] + list(rules.tiers), profiles=rules.profiles,
                         no_profile_match_id=rules.no_profile_match_id,
                         suppress_normal_host_policy=rules.suppress_normal_host_policy)
    return out


CASES += [with_large_prefixed_tier(c) for c in CASES
          if c["name"] in ("pass to allow", "pass to deny", "allow from CIDRs", "allow to tcp:ranges",
                           "allow to tcp:!ranges", "allow to named ports", "allow to mixed ports",
                           "allow to !IP set", "end-of-tier pass reaches profiles", "log rule sets LOG_PACKET and continues")]


# --------------------------------------------------------------------------------------------
# Running one case in the kernel.


def stub(rc: int) -> bytes:
    return bytes(asm.encode(asm.MOV64_IMM, 0, 0, 0, rc) + asm.encode(asm.EXIT))


def set_id(name: str) -> int:
    import hashlib
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") or 1


def number_rules(rules: Rules) -> None:
    """Give every rule and end-of-tier a distinct id (the Felix tests leave them 0)."""
    n = 1000
    for tier in rules.host_pre_dnat_tiers + rules.host_forward_tiers + rules.host_normal_tiers + rules.tiers:
        for pol in tier.policies:
            for r in pol.rules:
                n += 1
                if not r.match_id and r.action != "log":
                    r.match_id = n
        n += 1
        tier.end_rule_id = tier.end_rule_id or n
    for prof in rules.host_profiles + rules.profiles:
        for r in prof.rules:
            n += 1
            r.match_id = r.match_id or n


def run_case(case: dict, version: str) -> list[str]:
    """Returns the failures (empty = pass)."""
    rules: Rules = case["rules"]
    if not case.get("literal_ids"):
        number_rules(rules)
    ipsets = case.get("ipsets", {})
    ids = {name: set_id(name) for name in ipsets}
    value_size = maps.STATE[version][1]
    fails = []
    subs = generate(rules, version, ids, max_jumps=case.get("max_jumps", MAX_JUMPS))
    with bpfsys.map_create("array", 4, value_size, 2, 0, "test_state") as st, \
            bpfsys.map_create("lpm_trie", 20, 4, 1024, bpfsys.F_NO_PREALLOC, "test_ipsets") as ips, \
            bpfsys.map_create("prog_array", 4, 4, 32, 0, "teststatic") as static, \
            bpfsys.map_create("prog_array", 4, 4, 24 * TC_STRIDE, 0, "testjump") as jump, \
            bpfsys.prog_load(stub(RC_ALLOWED), "lab_allow_stub") as allowed, \
            bpfsys.prog_load(stub(RC_DROPPED), "lab_drop_stub") as drop:
        bpfsys.map_update(static, struct.pack("<I", ALLOWED_IDX), struct.pack("<I", int(allowed)))
        bpfsys.map_update(static, struct.pack("<I", DROP_IDX), struct.pack("<I", int(drop)))
        for name, members in ipsets.items():
            for m in members:
                cidr, _, np = m.partition(",")
                proto, port = (0, 0)
                if np:
                    p, _, port = np.partition(":")
                    proto, port = {"tcp": 6, "udp": 17}[p], int(port)
                bpfsys.map_update(ips, maps.ipset_key(ids[name], cidr, proto, port), maps.IPSET_VALUE)
        fds = MapFds()
        fd_map = {fds.state: int(st), fds.ipsets: int(ips), fds.static_progs: int(static), fds.jump: int(jump)}
        if (len(subs) > 1) != bool(case.get("split")):
            fails.append(f"{len(subs)} sub-programs, want {'several' if case.get('split') else 1}")
        progs = [bpfsys.prog_load(asm.relocate(p, fd_map), f"p4E_test_{k}") for k, p in enumerate(subs)]
        for k, p in enumerate(progs):
            bpfsys.map_update(jump, struct.pack("<I", k * TC_STRIDE), struct.pack("<I", int(p)))
        with progs[0] as prog:
            for verdict, key in (("allow", "allowed"), ("deny", "dropped")):
                for item in case.get(key, []):
                    pkt, want_ids = item if isinstance(item, tuple) else (item, None)
                    ev, ev_ids, log = expected_ids(rules, pkt, ipsets)
                    if ev != verdict:
                        fails.append(f"{pkt}: Calico says {verdict}, the reference walk says {ev} (test data?)")
                    if want_ids is None:
                        want_ids = ev_ids
                    sin = state_in(version, pkt)
                    bpfsys.map_update(st, struct.pack("<I", 0), sin)
                    rc = bpfsys.prog_test_run(prog, bytes(64), bpfsys.skb_ctx([ALLOWED_IDX, DROP_IDX]))
                    sout = bpfsys.map_lookup(st, struct.pack("<I", 0), value_size)
                    got = maps.state_decode(version, sout)
                    want_rc = RC_ALLOWED if verdict == "allow" else RC_DROPPED
                    want_pol = 1 if verdict == "allow" else 2
                    want_hit = min(len(want_ids), 32)
                    problems = []
                    if rc != want_rc:
                        problems.append(f"retval {rc} want {want_rc}")
                    if got["pol_rc"] != want_pol:
                        problems.append(f"pol_rc {got['pol_rc']} want {want_pol}")
                    if got["rules_hit"] != want_hit:
                        problems.append(f"rules_hit {got['rules_hit']} want {want_hit}")
                    if got["rule_ids"] != want_ids[:32]:
                        problems.append(f"rule_ids {got['rule_ids']} want {want_ids[:32]}")
                    want_flags = pkt["flags"] | (maps.STATE_FLAG_LOG_PACKET if log else 0)
                    if got["flags"] != want_flags:
                        problems.append(f"flags {got['flags']:#x} want {want_flags:#x}")
                    # Nothing else may change (pol_prog_test.go MatchStateOut).
                    o = maps.state_offsets(version)
                    scrub = bytearray(sout)
                    scrub[o["pol_rc"]:o["pol_rc"] + 4] = sin[o["pol_rc"]:o["pol_rc"] + 4]
                    scrub[o["rules_hit"]:o["rule_ids"] + 256] = sin[o["rules_hit"]:o["rule_ids"] + 256]
                    scrub[o["flags"]:o["flags"] + 8] = sin[o["flags"]:o["flags"] + 8]
                    if bytes(scrub) != sin:
                        problems.append("other state bytes changed")
                    if problems:
                        fails.append(f"{pkt}: " + "; ".join(problems))
        for p in progs[1:]:
            p.close()
    return fails


def main() -> int:
    if os.geteuid() != 0:
        print("test_polprog: skipped, needs root (BPF_PROG_LOAD / BPF_PROG_TEST_RUN)")
        return 77
    passed = failed = 0
    import copy
    for version in VERSIONS:
        for case in CASES:
            try:
                fails = run_case(copy.deepcopy(case), version)
            except Exception as e:  # a load failure is a test failure with its verifier log
                fails = [f"{type(e).__name__}: {e}"]
            if fails:
                failed += 1
                print(f"FAIL {version} {case['name']}")
                for f in fails[:6]:
                    print(f"    {f}")
            else:
                passed += 1
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
