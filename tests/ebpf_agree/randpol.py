"""Random Felix-shaped policy programs for the interpreter/kernel agreement test (issue 14).

Writes, into --out, for a fixed --seed (same seed, same bytes):
  prog_NN_<ingress|egress>_v4.json  Felix's policy-debug JSON (tests/lab/ebpf/polprog.py lays the program
                                    out as pol_prog_builder.go does, split into sub-programs when large)
  programs.txt                      "<file> <calico version>" per program
  ipsets.txt                        "<set id hex> <cidr> <proto> <port>" per IP-set member (proto 0: plain)
  pools.txt                         "cidr <cidr>" / "port <n>": what the rules match, to bias random flows

Shapes: tiers of policies of rules and profiles; rules mix protocols (names and numbers, negated),
CIDRs, IP sets (two of tens of thousands of members), IP-port and named-port sets, port ranges, ICMP
type/code, every negation, and the actions allow/deny/pass/log; end-of-tier actions deny/pass; programs
from one rule to thousands (which split into sub-programs).

    python3 tests/ebpf_agree/randpol.py --out DIR [--seed N] [--programs N] [--scale]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lab", "ebpf"))

from polprog import Policy, Rule, Rules, Tier, debug_json, generate  # noqa: E402

VERSIONS = ("3.30", "3.32")
PROTOCOLS = ("tcp", "udp", "icmp", "sctp", 6, 17, 1, 132, 47, 50)
PORT_PROTOCOLS = ("tcp", "udp", "sctp", 6, 17)


class Universe:
    """The node's IP sets and the CIDRs and ports rules draw from: shared by every program."""

    def __init__(self, rnd: random.Random, scale: bool = False):
        self.rnd, self.scale = rnd, scale
        self.cidrs = self._cidrs()
        self.ports = sorted({rnd.choice((22, 53, 80, 443, 8080, 9090, 6443)) for _ in range(7)}
                            | {rnd.randrange(1, 65536) for _ in range(25)})
        self.sets: dict[str, list[tuple[str, int, int]]] = {}  # name -> [(cidr, proto, port)]
        self.ids: dict[str, int] = {}
        self.addr_sets: list[str] = []
        self.port_sets: list[str] = []  # named-port and IP-port sets: members carry proto + port
        self._make_sets()

    def _cidrs(self):
        out = set()
        for _ in range(60):
            plen = self.rnd.choice((8, 12, 16, 20, 24, 24, 28, 30, 32, 32))
            base = self.rnd.choice((0x0A000000, 0xAC100000, 0xC0A80000, self.rnd.getrandbits(32)))
            span = 32 - plen
            addr = (base | self.rnd.getrandbits(16)) >> span << span if span < 32 else 0
            out.add(str(ipaddress.IPv4Network((addr, plen))))
        return sorted(out)

    def _addr(self):
        # Mostly inside 10/8 (pods), so that sets and CIDRs overlap.
        if self.rnd.random() < 0.8:
            return 0x0A000000 | self.rnd.getrandbits(20)
        return self.rnd.getrandbits(32)

    def _new_id(self, name):
        sid = self.rnd.getrandbits(64) | 1
        self.ids[name] = sid
        return sid

    def _make_sets(self):
        if self.scale:  # Calico scale: ~3,700 sets, ~256k members (a few large, many small)
            sizes = [20000, 10000, 5000] + [self.rnd.choice((1, 2, 5, 10, 20, 50, 100, 150, 200))
                                             for _ in range(3700 - 3 - 12)]
        else:
            sizes = [30000, 20000] + [self.rnd.choice((1, 2, 5, 20, 100, 500, 2000)) for _ in range(38)]
        for n, size in enumerate(sizes):
            name = f"s:addr{n:04d}"
            self._new_id(name)
            members = set()
            while len(members) < size:
                if self.rnd.random() < 0.05:
                    plen = self.rnd.choice((16, 20, 24, 28))
                    a = self._addr() >> (32 - plen) << (32 - plen)
                    members.add((str(ipaddress.IPv4Network((a, plen))), 0, 0))
                else:
                    members.add((f"{ipaddress.IPv4Address(self._addr())}/32", 0, 0))
            self.sets[name] = sorted(members)
            self.addr_sets.append(name)
        for n in range(12):
            name = f"s:port{n:02d}"
            self._new_id(name)
            size = 5000 if n == 0 else self.rnd.choice((1, 3, 10, 50, 300))
            members = set()
            while len(members) < size:
                proto = self.rnd.choice((6, 17, 132))
                port = self.rnd.choice(self.ports) if self.rnd.random() < 0.7 else self.rnd.randrange(1, 65536)
                members.add((f"{ipaddress.IPv4Address(self._addr())}/32", proto, port))
            self.sets[name] = sorted(members)
            self.port_sets.append(name)


class Policies:
    def __init__(self, rnd: random.Random, u: Universe):
        self.rnd, self.u = rnd, u

    def _ranges(self):
        out = []
        for _ in range(self.rnd.choice((1, 1, 2, 3))):
            a = self.rnd.choice(self.u.ports) if self.rnd.random() < 0.7 else self.rnd.randrange(0, 65536)
            if self.rnd.random() < 0.6:
                out.append((a, a))
            else:
                out.append((a, min(65535, a + self.rnd.choice((1, 10, 100, 5000)))))
        return out

    def _nets(self):
        return self.rnd.sample(self.u.cidrs, self.rnd.choice((1, 1, 2, 4)))

    def rule(self, in_tier: bool) -> Rule:
        rnd = self.rnd
        actions = ["allow"] * 35 + ["deny"] * 30 + (["pass"] * 20 + ["log"] * 10 if in_tier else [])
        r = Rule(action=rnd.choice(actions), match_id=rnd.getrandbits(64) or 1)
        if r.action == "log":
            r.match_id = 0
        if r.action == "log" and rnd.random() < 0.5:
            return r  # matches everything; any other such rule would make the rest unreachable (dropped)
        if rnd.random() < 0.5:
            r.protocol = rnd.choice(PROTOCOLS)
        elif rnd.random() < 0.15:
            r.not_protocol = rnd.choice(PROTOCOLS)
        ported = r.protocol in PORT_PROTOCOLS
        icmp = r.protocol in ("icmp", 1)
        for attr, p in (("src_net", 0.15), ("not_src_net", 0.05), ("dst_net", 0.15), ("not_dst_net", 0.05)):
            if rnd.random() < p:
                setattr(r, attr, self._nets())
        for attr, p in (("src_ip_sets", 0.3), ("not_src_ip_sets", 0.08), ("not_dst_ip_sets", 0.05)):
            if rnd.random() < p:
                # At Calico scale one set per leg: the program must fit Felix's 24 sub-programs.
                setattr(r, attr, rnd.sample(self.u.addr_sets, 1 if self.u.scale else rnd.choice((1, 1, 2))))
        if rnd.random() < 0.25:
            r.dst_ip_sets = [rnd.choice(self.u.addr_sets)]  # Felix combines destination sets into one
        if rnd.random() < 0.05:
            r.dst_ip_port_sets = [rnd.choice(self.u.port_sets)]
        if ported or r.protocol is None:
            for attr, p in (("src_ports", 0.1), ("not_src_ports", 0.05), ("dst_ports", 0.35),
                            ("not_dst_ports", 0.05)):
                if rnd.random() < p:
                    setattr(r, attr, self._ranges())
            if ported and rnd.random() < 0.15:
                r.dst_named_port_sets = rnd.sample(self.u.port_sets, 1 if self.u.scale else rnd.choice((1, 1, 2)))
            if ported and rnd.random() < 0.04:
                r.src_named_port_sets = [rnd.choice(self.u.port_sets)]
            if ported and rnd.random() < 0.04:
                r.not_dst_named_port_sets = [rnd.choice(self.u.port_sets)]
        if icmp and rnd.random() < 0.6:
            r.icmp_type = rnd.choice((0, 3, 8, 11))
            r.icmp_code = rnd.choice((None, None, 0, 1, 4))
        if icmp and rnd.random() < 0.2:
            r.not_icmp_type = rnd.choice((0, 3, 8))
            r.not_icmp_code = rnd.choice((None, 0, 1))
        if r == Rule(action=r.action, match_id=r.match_id, protocol=r.protocol):
            # Nothing but (maybe) a protocol matched: make it conditional, or the rest is unreachable.
            r.protocol = r.protocol or rnd.choice(PROTOCOLS)
        return r

    def scale_program(self) -> Rules:
        """Issue 14's Calico-scale case: 300 policies of 70 rules in 10 tiers, in one program."""
        rnd = self.rnd
        out = Rules(no_profile_match_id=rnd.getrandbits(64) or 1)
        for t in range(10):
            tier = Tier(name=f"tier{t}", end_action="pass" if t < 9 else "deny",
                        end_rule_id=rnd.getrandbits(64) or 1)
            for p in range(30):
                ns = rnd.choice(("", "default", f"ns{p}"))
                kind = "GlobalNetworkPolicy" if not ns else "NetworkPolicy"
                tier.policies.append(Policy(name=f"{tier.name}.pol{p}", namespace=ns, kind=kind,
                                            rules=[self.rule(True) for _ in range(70)]))
            out.tiers.append(tier)
        out.profiles.append(Policy(name="kns.default", rules=[self.rule(False) for _ in range(3)]))
        return out

    def program(self, n: int, rules_total: int) -> Rules:
        rnd = self.rnd
        out = Rules(no_profile_match_id=rnd.getrandbits(64) or 1,
                    suppress_normal_host_policy=rnd.random() < 0.8)
        left = rules_total
        t = 0
        while left > 0:
            # A tier that ends in deny makes the tiers after it reachable only through its pass rules
            # (Felix drops unreachable code): most end in pass, so that large programs stay large.
            tier = Tier(name=f"tier{t}", end_action=rnd.choice(("", "deny", "pass", "pass", "pass", "pass")),
                        end_rule_id=rnd.getrandbits(64) or 1)
            for p in range(rnd.randint(1, max(1, min(60, rules_total // 40 + 4)))):
                k = min(left, rnd.randint(1, max(1, min(70, rules_total // 8 + 3))))
                if k <= 0:
                    break
                left -= k
                ns = rnd.choice(("", "default", f"ns{n}"))
                kind = "GlobalNetworkPolicy" if not ns else rnd.choice(("NetworkPolicy", "KubernetesNetworkPolicy"))
                tier.policies.append(Policy(name=f"{tier.name}.pol{p}", namespace=ns, kind=kind,
                                            rules=[self.rule(True) for _ in range(k)]))
            out.tiers.append(tier)
            t += 1
        for p in range(rnd.choice((0, 1, 1, 2))):
            out.profiles.append(Policy(name=f"kns.ns{p}", rules=[self.rule(False) for _ in range(rnd.randint(1, 5))]))
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--programs", type=int, default=24)
    ap.add_argument("--scale", action="store_true",
                    help="one program of 300 policies x 70 rules, ~3,700 IP sets, ~256k members (bench/)")
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    u = Universe(rnd, args.scale)
    gen = Policies(rnd, u)
    os.makedirs(args.out, exist_ok=True)
    listing = []
    if args.scale:
        subs = generate(gen.scale_program(), "3.32", u.ids, max_jumps=5800)
        with open(os.path.join(args.out, "scale_egress_v4.json"), "w") as f:
            f.write(debug_json("cali00000000000", "ingress", subs))
        listing.append(f"scale_egress_v4.json 3.32 {len(subs)}")
    for n in range(0 if args.scale else args.programs):
        # Mostly pod-sized programs; two of thousands of rules, which Felix splits.
        size = {0: 6000, 1: 2500}.get(n, rnd.choice((1, 2, 5, 10, 20, 50, 80, 150, 400)))
        version = VERSIONS[n % len(VERSIONS)]
        direction = ("ingress", "egress")[n % 2]
        # Split after 3000 jumps, not Felix's ~8000: polprog.py does not model Felix's in-program
        # trampolines for jumps past 32k instructions, which a sub-program of 8000 jumps can need.
        subs = generate(gen.program(n, size), version, u.ids, max_jumps=3000)
        name = f"prog{n:02d}_{direction}_v4.json"
        with open(os.path.join(args.out, name), "w") as f:
            f.write(debug_json(f"cali{n:011d}", "ingress" if direction == "egress" else "egress", subs))
        listing.append(f"{name} {version} {len(subs)}")
    with open(os.path.join(args.out, "programs.txt"), "w") as f:
        f.write("\n".join(listing) + "\n")
    with open(os.path.join(args.out, "ipsets.txt"), "w") as f:
        for name, members in u.sets.items():
            sid = u.ids[name]
            f.writelines(f"{sid:x} {cidr} {proto} {port}\n" for cidr, proto, port in members)
    with open(os.path.join(args.out, "pools.txt"), "w") as f:
        f.writelines(f"cidr {c}\n" for c in u.cidrs)
        f.writelines(f"port {p}\n" for p in u.ports)
    print(f"randpol: {len(listing)} programs, {sum(len(m) for m in u.sets.values())} IP-set members in "
          f"{len(u.sets)} sets, in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
