#!/usr/bin/env python3
"""Render a lab scenario into the rules Calico's Felix (v3.30+) and kube-proxy would program on the node.

    python3 tests/lab/render.py SCENARIO.json --layout nftables|iptables-nft --out DIR

Writes DIR/topology.json and, per layout:
  nftables      DIR/ruleset.nft                      (nft -f; `table ip calico` + `table ip kube-proxy`)
  iptables-nft  DIR/iptables.rules, DIR/ipsets.restore (iptables-nft-restore / ipset restore)

How it is organised (mirrors Felix, which builds one abstract rule model and renders it twice):
  1. `FelixModel` builds chains of abstract `Rule`s (match clauses + one action + comments) for the logical
     tables raw/mangle/nat/filter, plus the IP sets, exactly in Felix's order.
  2. `NftRenderer` / `IptRenderer` turn clauses and actions into nft or iptables syntax, add the
     `cali:<hash>` comments (hash chained over the rendered rules, as Felix does) and write the files.
  3. kube-proxy's service rules are emitted per layout (nftables mode vs iptables mode).
Facts and line references: ../shared/reference/calico-nftables.md and README-render.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scenario as scn  # noqa: E402

# Mark bits, v3.30+ with the default mask 0xffff0000 (reference section 2); configure_marks sets
# them for a scenario's mark_mask.
MARK_ACCEPT = 0x10000
MARK_PASS = 0x20000
MARK_DROP = 0x40000
MARK_SCRATCH0 = 0x80000
MARK_SCRATCH1 = 0x100000
ALL_CALICO_MARKS = MARK_ACCEPT | MARK_PASS | MARK_SCRATCH0 | MARK_SCRATCH1  # drop bit is not included


def configure_marks(mask: int) -> None:
    """Felix's MarkBitsManager: accept, pass, drop, scratch0, scratch1 from the mask, lowest bit
    first (dataplane/driver.go)."""
    global MARK_ACCEPT, MARK_PASS, MARK_DROP, MARK_SCRATCH0, MARK_SCRATCH1, ALL_CALICO_MARKS
    bits = [1 << i for i in range(32) if mask >> i & 1]
    MARK_ACCEPT, MARK_PASS, MARK_DROP, MARK_SCRATCH0, MARK_SCRATCH1 = bits[:5]
    ALL_CALICO_MARKS = MARK_ACCEPT | MARK_PASS | MARK_SCRATCH0 | MARK_SCRATCH1
KUBE_MASQ_MARK = 0x4000

NFLOG_INGRESS_GROUP = 1
NFLOG_EGRESS_GROUP = 2
VXLAN_PORT = 4789
IPT_MAX_CHAIN = 28   # iptables-nft rejects longer chain names
NFT_MAX_CHAIN = 256

LAYOUTS = ("nftables", "iptables-nft")


# ============================================================================================
# Abstract rules
#
# A match is a list of clause tuples, rendered in order. Actions are tuples too:
#   ("accept",) ("drop",) ("return",) ("jump", chain) ("goto", chain) ("setmark", m) ("clearmark", m)
#   ("maskedmark", value, mask) ("nflog", group, prefix) ("log", prefix) ("masq",) ("reject",)
# A rule without an action is a no-op that only carries comments (Felix emits these for empty policies).


@dataclass
class Rule:
    match: list = field(default_factory=list)
    action: tuple | None = None
    comment: list = field(default_factory=list)


@dataclass
class Chain:
    name: str
    rules: list = field(default_factory=list)
    base: tuple | None = None  # (nft type, hook, nft priority) for chains attached to a hook


@dataclass
class IPSet:
    name: str           # ipset name (cali40...); the nft set name replaces ':' by '-'
    kind: str           # "net" (hash:net / interval set), "ip" (hash:ip / plain set) or
                        # "ipport" (hash:ip,port / ipv4_addr . inet_proto . inet_service): named ports
    members: list


def length_limited(prefix: str, suffix: str, max_len: int) -> str:
    """Felix GetLengthLimitedID: prefix+suffix, or prefix + "_" + base64url(sha256(suffix)) cut to max_len."""
    total = len(prefix) + len(suffix)
    if total > max_len or (total == max_len and suffix.startswith("_")):
        digest = base64.urlsafe_b64encode(hashlib.sha256(suffix.encode()).digest()).decode().rstrip("=")
        return prefix + "_" + digest[: max_len - 1 - len(prefix)]
    return prefix + suffix


def nflog_prefix(text: str) -> str:
    """Felix maybeHash: prefixes of 63+ chars become first10 + "_" + 40 hash chars + "_" + last10."""
    if len(text) < 63:
        return text
    return text[:10] + length_limited("", text, 41) + "_" + text[-10:]


# ============================================================================================
# Felix model


class FelixModel:
    """Everything Felix programs for this node, as abstract chains per logical table."""

    def __init__(self, sc: dict, nft: bool, ipv6: bool = False):
        self.sc = sc
        self.nft = nft
        self.ipv6 = ipv6  # Felix's IPv6 tables (`table ip6 calico`, ip6tables): see V6 below
        self.max_name = NFT_MAX_CHAIN if nft else IPT_MAX_CHAIN
        self.flow_logs = bool(sc["flow_logs"])
        self.kind_naming = scn.kind_naming(sc)
        self.tables: dict[str, dict[str, Chain]] = {t: {} for t in ("raw", "mangle", "nat", "filter")}
        self.ipsets: dict[str, IPSet] = {}
        self.dispatch_maps: dict[str, dict[str, str]] = {}  # nft only: map name -> {iface: chain}
        self.build()

    # ---- small helpers ------------------------------------------------------------------

    def add(self, table: str, name: str, rules=(), base=None) -> Chain:
        chain = Chain(name, list(rules), base)
        self.tables[table][name] = chain
        return chain

    def add_ipset(self, set_id: str, kind: str, members) -> str:
        name = scn.ipset_name(set_id)
        if self.ipv6:
            name = v6_ipset_name(set_id)
            members = v6_members(self.sc, kind, members)
        self.ipsets.setdefault(name, IPSet(name, kind, list(members)))
        return name

    # ---- top level ----------------------------------------------------------------------

    def build(self) -> None:
        if self.ipv6:
            v6_static_ipsets(self)
        else:
            pool = self.sc["ip_pool"]
            self.add_ipset("all-ipam-pools", "net", [pool])
            self.add_ipset("masq-ipam-pools", "net", [pool])
            self.add_ipset("this-host", "ip", ["127.0.0.0", "127.0.0.1", self.sc["node"]["ip"]])
        self.build_raw()
        self.build_mangle()
        self.build_nat()
        self.build_filter_static()
        self.build_workloads()
        self.build_host_endpoints()

    def build_raw(self) -> None:
        """raw: clear our bits, flag traffic from workloads (scratch0) and apply the RPF check to it."""
        self.add("raw", "PREROUTING", [Rule([], ("jump", "cali-PREROUTING"))], ("filter", "prerouting", "raw"))
        self.add("raw", "OUTPUT", [Rule([], ("jump", "cali-OUTPUT"))], ("filter", "output", "raw"))
        self.add("raw", "cali-PREROUTING", [
            Rule([], ("clearmark", ALL_CALICO_MARKS)),
            Rule([("iif", "cali+")], ("setmark", MARK_SCRATCH0)),
            Rule([("mark_set", MARK_SCRATCH0)], ("jump", "cali-rpf-skip")),
            Rule([("mark_set", MARK_SCRATCH0), ("rpf_failed",)], ("drop",)),
            Rule([("mark_clear", MARK_SCRATCH0)], ("jump", "cali-from-host-endpoint")),
            Rule([("mark_set", MARK_ACCEPT)], ("accept",)),
        ])
        self.add("raw", "cali-OUTPUT", [
            Rule([], ("clearmark", ALL_CALICO_MARKS)),
            Rule([], ("jump", "cali-to-host-endpoint")),
            Rule([("mark_set", MARK_ACCEPT)], ("accept",)),
        ])
        for name in ("cali-rpf-skip", "cali-from-host-endpoint", "cali-to-host-endpoint"):
            self.add("raw", name)

    def build_mangle(self) -> None:
        self.add("mangle", "PREROUTING", [Rule([], ("jump", "cali-PREROUTING"))],
                 ("filter", "prerouting", "mangle"))
        if self.nft:  # Felix's nft table has every base chain, even the unused ones (fixture)
            self.add("mangle", "INPUT", [], ("filter", "input", "mangle"))
            self.add("mangle", "FORWARD", [], ("filter", "forward", "mangle"))
            self.add("mangle", "OUTPUT", [], ("route", "output", "mangle"))
        self.add("mangle", "POSTROUTING", [Rule([], ("jump", "cali-POSTROUTING"))],
                 ("filter", "postrouting", "mangle"))
        hep_ok = "Host endpoint policy accepted packet."
        self.add("mangle", "cali-PREROUTING", [
            Rule([("ctstate", "RELATED,ESTABLISHED")], ("accept",)),
            Rule([("mark_set", MARK_ACCEPT)], ("accept",)),
            Rule([], ("jump", "cali-from-host-endpoint")),
            Rule([("mark_set", MARK_ACCEPT)], ("accept",), [hep_ok]),
        ])
        self.add("mangle", "cali-POSTROUTING", [
            Rule([("mark_set", MARK_ACCEPT)], ("return",)),
            Rule([], ("clearmark", ALL_CALICO_MARKS)),
            Rule([("ctstatus", "DNAT")], ("jump", "cali-to-host-endpoint")),
            Rule([("mark_set", MARK_ACCEPT)], ("return",), [hep_ok]),
        ])
        self.add("mangle", "cali-from-host-endpoint")
        self.add("mangle", "cali-to-host-endpoint")

    def build_nat(self) -> None:
        """nat: floating-IP hooks (empty) and natOutgoing masquerade for pool addresses leaving the pools."""
        self.add("nat", "PREROUTING", [Rule([], ("jump", "cali-PREROUTING"))], ("nat", "prerouting", "dstnat"))
        if self.nft:
            self.add("nat", "INPUT", [], ("nat", "input", "-100"))
        self.add("nat", "OUTPUT", [Rule([], ("jump", "cali-OUTPUT"))], ("nat", "output", "110"))
        self.add("nat", "POSTROUTING", [Rule([], ("jump", "cali-POSTROUTING"))],
                 ("nat", "postrouting", "srcnat + 10"))
        self.add("nat", "cali-PREROUTING", [Rule([], ("jump", "cali-fip-dnat"))])
        self.add("nat", "cali-POSTROUTING", [Rule([], ("jump", "cali-fip-snat")),
                                             Rule([], ("jump", "cali-nat-outgoing"))])
        self.add("nat", "cali-OUTPUT", [Rule([], ("jump", "cali-fip-dnat"))])
        self.add("nat", "cali-fip-dnat")
        self.add("nat", "cali-fip-snat")
        self.add("nat", "cali-nat-outgoing", [
            Rule([("sset", self.static_set("masq-ipam-pools")), ("not_dset", self.static_set("all-ipam-pools"))],
                 ("masq",))])

    def static_set(self, set_id: str) -> str:
        return v6_ipset_name(set_id) if self.ipv6 else scn.ipset_name(set_id)

    def build_filter_static(self) -> None:
        hep_ok = "Host endpoint policy accepted packet."
        self.add("filter", "INPUT", [Rule([], ("jump", "cali-INPUT"))], ("filter", "input", "filter"))
        # Felix inserts its FORWARD jump at the top and appends the final accept (reference 1.1, 7).
        self.add("filter", "FORWARD", [Rule([], ("jump", "cali-FORWARD"))], ("filter", "forward", "filter"))
        self.forward_tail = [
            Rule([("mark_set", MARK_ACCEPT)], ("accept",), ["Policy explicitly accepted packet."]),
            Rule([], ("setmark", MARK_ACCEPT)),
        ]
        self.add("filter", "OUTPUT", [Rule([], ("jump", "cali-OUTPUT"))], ("filter", "output", "filter"))
        self.add("filter", "cali-INPUT", [
            Rule([("iif", "cali+")], ("goto", "cali-wl-to-host")),
            Rule([("mark_set", MARK_ACCEPT)], ("accept",)),
            Rule([], ("clearmark", ALL_CALICO_MARKS)),
            Rule([], ("jump", "cali-from-host-endpoint")),
            Rule([("mark_set", MARK_ACCEPT)], ("accept",), [hep_ok]),
        ])
        self.add("filter", "cali-wl-to-host", (v6_icmp_filter() if self.ipv6 else []) + [
            Rule([], ("jump", "cali-from-wl-dispatch")),
            Rule([], ("accept",), ["Configured DefaultEndpointToHostAction"]),
        ])
        self.add("filter", "cali-FORWARD", [
            Rule([], ("clearmark", MARK_PASS | MARK_SCRATCH0 | MARK_SCRATCH1)),
            Rule([("mark_clear", MARK_ACCEPT)], ("jump", "cali-from-hep-forward")),
            Rule([("iif", "cali+")], ("jump", "cali-from-wl-dispatch")),
            Rule([("oif", "cali+")], ("jump", "cali-to-wl-dispatch")),
            Rule([], ("jump", "cali-to-hep-forward")),
            Rule([], ("jump", "cali-cidr-block")),
        ])
        # Host -> local workload is not policed: cali-OUTPUT returns for cali+ before any policy.
        self.add("filter", "cali-OUTPUT", [
            Rule([("mark_set", MARK_ACCEPT)], ("accept",)),
            Rule([("oif", "cali+")], ("return",)),
            Rule([], ("clearmark", ALL_CALICO_MARKS)),
            Rule([("not_ctstatus", "DNAT")], ("jump", "cali-to-host-endpoint")),
            Rule([("mark_set", MARK_ACCEPT)], ("accept",), [hep_ok]),
        ])
        for name in ("cali-from-hep-forward", "cali-to-hep-forward", "cali-cidr-block",
                     "cali-from-host-endpoint", "cali-to-host-endpoint"):
            self.add("filter", name)

    # ---- workloads ----------------------------------------------------------------------

    def build_workloads(self) -> None:
        pods = self.sc["pods"]
        self.build_dispatch([p["iface"] for p in pods])
        for ns in sorted({p["namespace"] for p in pods}):
            self.build_profile(f"kns.{ns}", allow=True)
            self.build_profile(f"ksa.{ns}.default", allow=False)
        for pod in sorted(pods, key=lambda p: p["iface"]):
            self.build_endpoint(pod)

    def build_dispatch(self, ifaces: list[str]) -> None:
        unknown = Rule([], ("drop",), ["Unknown interface"])
        for root, prefix, direction in (("cali-from-wl-dispatch", "cali-fw-", "iif"),
                                        ("cali-to-wl-dispatch", "cali-tw-", "oif")):
            if self.nft:
                # nft mode dispatches with a verdict map keyed on the interface name.
                self.dispatch_maps[root] = {i: self.endpoint_chain(prefix, i) for i in sorted(ifaces)}
                self.add("filter", root, [Rule([(direction + "_vmap", root)], None), unknown])
            else:
                self.build_dispatch_tree(root, prefix, direction, sorted(ifaces), unknown)

    def build_dispatch_tree(self, root, prefix, direction, ifaces, unknown, table: str = "filter") -> None:
        """iptables mode: a shallow prefix tree; shared next characters get a child chain (dispatch.go)."""
        common = _common_prefix(ifaces)
        bins: dict[str, list[str]] = {}
        for name in ifaces:
            bins.setdefault(name[: len(common) + 1], []).append(name)
        rules = []
        for bin_prefix, names in bins.items():
            if len(names) == 1:
                rules.append(Rule([(direction, names[0])], ("goto", self.endpoint_chain(prefix, names[0]))))
                continue
            child = f"{root}-{bin_prefix[len(common):]}"
            rules.append(Rule([(direction, bin_prefix + "+")], ("goto", child)))
            self.add(table, child, [Rule([(direction, n)], ("goto", self.endpoint_chain(prefix, n)))
                                    for n in names] + ([unknown] if unknown else []))
        self.add(table, root, rules + ([unknown] if unknown else []))

    def endpoint_chain(self, prefix: str, iface: str) -> str:
        return length_limited(prefix, iface, self.max_name)

    def build_profile(self, name: str, allow: bool) -> None:
        for prefix, direction in (("cali-pri-", "ingress"), ("cali-pro-", "egress")):
            chain = length_limited(prefix, name, self.max_name)
            idx_rules = []
            if allow:
                rule = scn.normalise_rule(name, {"action": "allow"})
                idx_rules = self.rule_to_rules(rule, 0, direction, name, owner="R")
            self.add("filter", chain, self.finish_rules(idx_rules, f"Profile {name} {direction}"))

    def finish_rules(self, rules: list[Rule], chain_comment: str) -> list[Rule]:
        """Strip trailing RETURNs (no-ops) and put the chain comment on the first rule (policy.go)."""
        while rules and rules[-1].action == ("return",):
            rules.pop()
        if not rules:
            rules = [Rule()]
        rules[0].comment = rules[0].comment + [chain_comment]
        return rules

    def build_endpoint(self, pod: dict) -> None:
        profiles = [f"kns.{pod['namespace']}", f"ksa.{pod['namespace']}.default"]
        for direction in ("ingress", "egress"):
            prefix = "cali-tw-" if direction == "ingress" else "cali-fw-"
            name = self.endpoint_chain(prefix, pod["iface"])
            self.add("filter", name, self.endpoint_rules(pod, direction, profiles))

    def endpoint_rules(self, pod: dict, direction: str, profiles: list[str]) -> list[Rule]:
        """cali-tw-/cali-fw- chain body, in Felix's order (reference 1.4)."""
        ingress = direction == "ingress"
        group = NFLOG_INGRESS_GROUP if ingress else NFLOG_EGRESS_GROUP
        letter = "I" if ingress else "E"
        rules = [
            Rule([("ctstate", "RELATED,ESTABLISHED")], ("accept",)),
            Rule([("ctstate", "INVALID")], ("drop",)),
            Rule([], ("clearmark", MARK_ACCEPT | MARK_PASS)),
        ]
        if not ingress:
            rules += [
                Rule([("proto", "udp"), ("dports", [[VXLAN_PORT, VXLAN_PORT]])], ("drop",),
                     ["Drop VXLAN encapped packets originating in workloads"]),
                Rule([("proto", "4")], ("drop",), ["Drop IPinIP encapped packets originating in workloads"]),
            ]
        for tier in self.sc["tiers"]:
            groups = self.policy_groups(pod, tier["name"], direction)
            if not groups:
                continue  # Felix skips tiers with no policy for this endpoint and direction
            rules.append(Rule([], ("clearmark", MARK_PASS), [f"Start of tier {tier['name']}"]))
            for target in groups:
                rules.append(Rule([("mark_clear", MARK_PASS)], ("jump", target)))
                rules.append(Rule([("mark_set", MARK_ACCEPT)], ("return",), ["Return if policy accepted"]))
            if tier["default_action"] != "pass":
                if self.flow_logs:
                    prefix = nflog_prefix(f"DP{letter}|{tier['name']}")
                    rules.append(Rule([("mark_clear", MARK_PASS)], ("nflog", group, prefix)))
                rules.append(Rule([("mark_clear", MARK_PASS)], ("drop",),
                                  [f"End of tier {tier['name']}. Drop if no policies passed packet"]))
            elif self.flow_logs:
                prefix = nflog_prefix(f"PP{letter}|{tier['name']}")
                rules.append(Rule([("mark_clear", MARK_PASS)], ("nflog", group, prefix)))
        return rules + self.profile_tail(profiles, ingress, group, letter)

    def profile_tail(self, profiles: list[str], ingress: bool, group: int, letter: str) -> list[Rule]:
        """An endpoint chain's end (endpoints.go): each profile, return if it accepted, else drop."""
        rules = []
        for prof in profiles:
            pfx = "cali-pri-" if ingress else "cali-pro-"
            rules.append(Rule([], ("jump", length_limited(pfx, prof, self.max_name))))
            rules.append(Rule([("mark_set", MARK_ACCEPT)], ("return",), ["Return if profile accepted"]))
        if self.flow_logs:
            rules.append(Rule([], ("nflog", group, f"DR{letter}")))
        rules.append(Rule([], ("drop",), ["Drop if no profiles matched"]))
        return rules

    # ---- policies -----------------------------------------------------------------------

    def policy_groups(self, pod: dict, tier: str, direction: str) -> list[str]:
        """Chains to jump to for this tier: consecutive policies with the same selector share a
        `cali-gi-`/`cali-go-` group chain when there are 2+ of them (endpoints.go, v3.28+)."""
        # pre-DNAT and untracked policies only reach host endpoints (calc tierInfoToProtoTierInfo).
        pols = [p for p in scn.policies_in_tier(self.sc, tier)
                if direction in p["types"] and scn.policy_applies_to(self.sc, p, pod)
                and not (p.get("pre_dnat") or p.get("do_not_track"))]
        targets = []
        for run in self.selector_runs(pols):
            for pol in run:
                self.ensure_policy_chain(pol, direction)
            if len(run) == 1:
                targets.append(self.policy_chain_name(run[0], direction))
            else:
                targets.append(self.ensure_group_chain(run, tier, direction))
        return targets

    def selector_runs(self, pols: list[dict]) -> list[list[dict]]:
        """Consecutive policies with the same selector, in order: each run of 2+ shares a group chain."""
        runs: list[list[dict]] = []
        for pol in pols:
            if runs and self.policy_selector(runs[-1][0]) == self.policy_selector(pol):
                runs[-1].append(pol)
            else:
                runs.append([pol])
        return runs

    def policy_selector(self, pol: dict) -> str:
        sel = {"namespace": pol.get("namespace") if pol["kind"] != "gnp" else None,
               "namespace_selector": None, "labels": pol["selector"]}
        expr = scn.selector_expression(sel)
        # Calico adds an orchestrator clause to converted k8s policies, so they never group with np/gnp.
        return f'projectcalico.org/orchestrator == "k8s" && {expr}' if pol["kind"] == "knp" else expr

    def policy_name(self, pol: dict) -> str:
        """Name used in NFLOG prefixes and chain suffixes: v1 tiered name (<=3.31) or kind ID (3.32+)."""
        return scn.policy_kind_id(pol) if self.kind_naming else scn.policy_v1_name(pol)

    def policy_chain_name(self, pol: dict, direction: str) -> str:
        prefix = "cali-pi-" if direction == "ingress" else "cali-po-"
        if self.kind_naming:
            suffix = scn.policy_kind_id(pol)
        else:
            suffix = f"{pol['tier']}/{scn.policy_v1_name(pol)}"
        return length_limited(prefix, suffix, self.max_name)

    def policy_comment(self, pol: dict, direction: str) -> str:
        if self.kind_naming:
            ns = f"{pol['namespace']}/" if pol["kind"] != "gnp" else ""
            return f"{scn.KIND_LONG[pol['kind']]} {ns}{pol['name']} {direction}"
        return f"Policy {scn.policy_v1_name(pol)} {direction}"

    def ensure_policy_chain(self, pol: dict, direction: str) -> None:
        name = self.policy_chain_name(pol, direction)
        if name in self.tables["filter"]:
            return
        rules = []
        for idx, rule in enumerate(pol[direction]):
            rules += self.rule_to_rules(rule, idx, direction, self.policy_name(pol), owner="P", pol=pol)
        self.add("filter", name, self.finish_rules(rules, self.policy_comment(pol, direction)))

    def ensure_group_chain(self, run: list[dict], tier: str, direction: str) -> str:
        names = [self.policy_name(p) if self.kind_naming else scn.policy_v1_name(p) for p in run]
        hasher = hashlib.sha3_224()
        for part in [tier, self.policy_selector(run[0]), "inbound" if direction == "ingress" else "outbound",
                     str(len(names))] + names:
            hasher.update(part.encode() + b"\n")
        uid = base64.urlsafe_b64encode(hasher.digest()).decode().rstrip("=")[:20]
        name = ("cali-gi-" if direction == "ingress" else "cali-go-") + uid
        if name in self.tables["filter"]:
            return name
        rules = []
        for i, pol in enumerate(run):
            if i and i % 5 == 0:  # every 5 jumps, return once a verdict is in (returnStride)
                rules.append(Rule([("mark_not_clear", MARK_PASS | MARK_ACCEPT)], ("return",),
                                  ["Return on verdict"]))
            match = [] if i % 5 == 0 else [("mark_clear", MARK_PASS | MARK_ACCEPT)]
            rules.append(Rule(match, ("jump", self.policy_chain_name(pol, direction))))
        self.add("filter", name, rules)
        return name

    def rule_to_rules(self, rule: dict, idx: int, direction: str, name: str, owner: str,
                      pol: dict | None = None) -> list[Rule]:
        """One API rule -> Felix rules: optional match blocks, then the main match + action rules."""
        rule = rule_for_version(rule, 6 if self.ipv6 else 4)
        if rule is None:
            return []  # not for this IP version (FilterRuleToIPVersion)
        blocks = MatchBlocks()
        src, dst = rule["src"], rule["dst"]
        proto = scn.proto_name(rule.get("protocol"))
        src_nets, dst_nets = list(src["nets"]), list(dst["nets"])
        not_src_nets, not_dst_nets = list(src["not_nets"]), list(dst["not_nets"])
        src_ports, dst_ports = list(src["ports"]), list(dst["ports"])
        # Ports: more than one multiport's worth (15 slots) needs an OR block.
        if len(split_ports(src_ports)) > 1:
            blocks.positive([[("proto", proto), ("sports", s)] for s in split_ports(src_ports)])
            src_ports = []
        if len(split_ports(dst_ports)) > 1:
            blocks.positive([[("proto", proto), ("dports", s)] for s in split_ports(dst_ports)])
            dst_ports = []
        # CIDRs: one positive CIDR fits in the main rule; more need an OR block.
        if len(src_nets) > 1:
            blocks.positive([[("saddr", n)] for n in src_nets])
            src_nets = []
        if len(dst_nets) > 1:
            blocks.positive([[("daddr", n)] for n in dst_nets])
            dst_nets = []
        if len(src_nets) + len(not_src_nets) > 1:
            blocks.negative([[("saddr", n)] for n in not_src_nets])
            not_src_nets = []
        if len(dst_nets) + len(not_dst_nets) > 1:
            blocks.negative([[("daddr", n)] for n in not_dst_nets])
            not_dst_nets = []

        match = []
        if proto:
            match.append(("proto", proto))
        match += [("saddr", n) for n in src_nets]
        # A side with a named port (and no numeric ports) has no selector set of its own: the
        # named-port set holds only the selector's pods (rule_scanner.go's optimisation).
        if not src["named_ports"]:
            match += [("sset", s) for s in self.selector_sets(pol, src, negated=False)]
        match += [("snset", s) for s in self.named_port_sets(pol, src, proto)]
        if src_ports:
            match.append(("sports", src_ports))
        match += [("daddr", n) for n in dst_nets]
        if not dst["named_ports"]:
            match += [("dset", s) for s in self.selector_sets(pol, dst, negated=False)]
        match += [("dnset", s) for s in self.named_port_sets(pol, dst, proto)]
        if dst_ports:
            match.append(("dports", dst_ports))
        if rule.get("icmp"):
            match.append(("icmp", rule["icmp"].get("type"), rule["icmp"].get("code")))
        if rule.get("not_protocol") is not None:
            match.append(("not_proto", scn.proto_name(rule["not_protocol"])))
        match += [("not_saddr", n) for n in not_src_nets]
        match += [("not_sset", s) for s in self.selector_sets(pol, src, negated=True)]
        for split in split_ports(src["not_ports"]):
            match.append(("not_sports", split))
        match += [("not_daddr", n) for n in not_dst_nets]
        match += [("not_dset", s) for s in self.selector_sets(pol, dst, negated=True)]
        for split in split_ports(dst["not_ports"]):
            match.append(("not_dports", split))
        if blocks.used:
            match.append(("mark_set", MARK_SCRATCH0))
        return blocks.rules + self.rule_actions(rule["action"], match, idx, direction, name, owner)

    def rule_actions(self, action: str, match: list, idx: int, direction: str, name: str,
                     owner: str) -> list[Rule]:
        """CombineMatchAndActionsForProtoRule: set a verdict bit, then NFLOG/RETURN/DROP on that bit."""
        group = NFLOG_INGRESS_GROUP if direction == "ingress" else NFLOG_EGRESS_GROUP
        letter = "I" if direction == "ingress" else "E"
        rules = []
        if action == "log":
            return [Rule(match, ("log", "calico-packet"))]
        mark, code = {"allow": (MARK_ACCEPT, "A"), "pass": (MARK_PASS, "P"), "deny": (MARK_DROP, "D")}[action]
        rules.append(Rule(match, ("setmark", mark)))
        if self.flow_logs:
            prefix = nflog_prefix(f"{code}{owner}{letter}{idx}|{name}")
            rules.append(Rule([("mark_set", mark)], ("nflog", group, prefix)))
        rules.append(Rule([("mark_set", mark)], ("drop",) if action == "deny" else ("return",)))
        return rules

    def selector_sets(self, pol: dict | None, peer: dict, negated: bool) -> list[str]:
        if pol is None:
            return []
        sel = scn.peer_selector(pol, peer, negated)
        if sel is None:
            return []
        expr = scn.selector_expression(sel)
        return [self.add_ipset(scn.selector_ipset_id(expr), "net", scn.selector_members(self.sc, sel))]


    def named_port_sets(self, pol: dict | None, peer: dict, proto: str | None) -> list[str]:
        """Felix's (ip, proto, port) IP set of each named port, filtered by the side's selector."""
        out = []
        for name in peer["named_ports"]:
            sel = scn.peer_selector(pol, peer) if pol else None
            members = scn.named_port_members(self.sc, sel, proto, name)
            out.append(self.add_ipset(scn.named_port_ipset_id(sel, proto, name), "ipport", members))
        return out

    # ---- host endpoints (reference 1.2, 1.4; endpoints.go HostEndpointTo*Chains, dispatch.go
    # hostDispatchChains, static.go failsafe chains, calc tierInfoToProtoTierInfo) ----------------

    def build_host_endpoints(self) -> None:
        """Felix's chains for the scenario's host endpoints, in the four tables. Without host
        endpoints the static HEP dispatch chains stay empty, as before."""
        heps = sorted(self.sc.get("host_endpoints", []), key=lambda h: h["interface"])
        if not heps:
            return
        for table in ("raw", "mangle", "filter"):
            self.add(table, "cali-failsafe-in", self.failsafe_rules("in", raw=table == "raw"))
            self.add(table, "cali-failsafe-out", self.failsafe_rules("out", raw=table == "raw"))
        untracked, pre_dnat = [], []
        for hep in heps:
            iface = hep["interface"]
            profiles = list(hep["profiles"])
            for prof in profiles:
                if length_limited("cali-pri-", prof, self.max_name) not in self.tables["filter"]:
                    self.build_profile(prof, allow=False)
            for direction, prefix, fwd_prefix in (("egress", "cali-th-", "cali-thfw-"),
                                                  ("ingress", "cali-fh-", "cali-fhfw-")):
                self.add("filter", self.endpoint_chain(prefix, iface),
                         self.hep_chain_rules(hep, direction, "normal", "filter", profiles))
                self.add("filter", self.endpoint_chain(fwd_prefix, iface),
                         self.hep_chain_rules(hep, direction, "forward", "filter", profiles))
            # mangle egress: normal policy for DNATed traffic the host sends (allow = RETURN).
            self.add("mangle", self.endpoint_chain("cali-th-", iface),
                     self.hep_chain_rules(hep, "egress", "mangle_egress", "mangle", profiles))
            if self.hep_tiers(hep, "pre_dnat"):
                pre_dnat.append(iface)
                self.add("mangle", self.endpoint_chain("cali-fh-", iface),
                         self.hep_chain_rules(hep, "ingress", "pre_dnat", "mangle", []))
            if self.hep_tiers(hep, "untracked"):
                untracked.append(iface)
                for direction, prefix in (("egress", "cali-th-"), ("ingress", "cali-fh-")):
                    self.add("raw", self.endpoint_chain(prefix, iface),
                             self.hep_chain_rules(hep, direction, "untracked", "raw", []))
        ifaces = [h["interface"] for h in heps]
        self.hep_dispatch("filter", ifaces, ("from", "to"), "cali-from-host-endpoint", "cali-to-host-endpoint",
                          "cali-fh-", "cali-th-")
        self.hep_dispatch("filter", ifaces, ("from", "to"), "cali-from-hep-forward", "cali-to-hep-forward",
                          "cali-fhfw-", "cali-thfw-")
        self.hep_dispatch("mangle", pre_dnat, ("from",), "cali-from-host-endpoint", None, "cali-fh-", None)
        self.hep_dispatch("mangle", ifaces, ("to",), None, "cali-to-host-endpoint", None, "cali-th-")
        self.hep_dispatch("raw", untracked, ("from", "to"), "cali-from-host-endpoint", "cali-to-host-endpoint",
                          "cali-fh-", "cali-th-")

    def failsafe_rules(self, direction: str, raw: bool) -> list[Rule]:
        """cali-failsafe-in/out: allow each failsafe port; in raw also the replies of the other
        direction's ports (matched on the source port), so they are not left untracked."""
        own = self.sc["failsafe_inbound" if direction == "in" else "failsafe_outbound"]
        other = self.sc["failsafe_outbound" if direction == "in" else "failsafe_inbound"]
        net_clause = "saddr" if direction == "in" else "daddr"
        rules = []
        for entries, ports in ((own, "dports"), (other, "sports") if raw else ((), "")):
            for e in entries:
                match = [("proto", e["protocol"]), (ports, [[e["port"], e["port"]]])]
                if e.get("net"):
                    match.append((net_clause, e["net"]))
                rules.append(Rule(match, ("accept",)))
        return rules

    def hep_tiers(self, hep: dict, chain_type: str) -> list[tuple[dict, list[dict]]]:
        """(tier, policies) applying to the host endpoint for a chain type: normal and mangle_egress
        take every tracked policy, forward the apply_on_forward ones, pre_dnat/untracked their own."""
        want = {"normal": ("normal", "forward"), "mangle_egress": ("normal", "forward"), "forward": ("forward",),
                "pre_dnat": ("pre_dnat",), "untracked": ("untracked",)}[chain_type]
        out = []
        for tier in self.sc["tiers"]:
            pols = [p for p in scn.policies_in_tier(self.sc, tier["name"])
                    if scn.policy_applies_to_hep(p, hep) and scn.hep_policy_class(p) in want]
            if pols:
                out.append((tier, pols))
        return out

    def hep_chain_rules(self, hep: dict, direction: str, chain_type: str, table: str,
                        profiles: list[str]) -> list[Rule]:
        """endpointIptablesChain for a host endpoint: conntrack (not untracked), failsafe jump (not
        forward), clear accept+pass, the tiers, then the type's tail (profiles + drop for normal
        chains; "Allow forwarded traffic by default" for a forward chain without tiers)."""
        ingress = direction == "ingress"
        group = NFLOG_INGRESS_GROUP if ingress else NFLOG_EGRESS_GROUP
        letter = "I" if ingress else "E"
        normal = chain_type in ("normal", "mangle_egress")
        allow = ("return",) if chain_type == "mangle_egress" else ("accept",)
        rules = []
        if chain_type != "untracked":
            if allow != ("accept",):
                rules.append(Rule([("ctstate", "RELATED,ESTABLISHED")], ("setmark", MARK_ACCEPT)))
            rules += [Rule([("ctstate", "RELATED,ESTABLISHED")], allow),
                      Rule([("ctstate", "INVALID")], ("drop",))]
        if chain_type != "forward":
            rules.append(Rule([], ("jump", "cali-failsafe-in" if ingress else "cali-failsafe-out")))
        rules.append(Rule([], ("clearmark", MARK_ACCEPT | MARK_PASS)))
        tiers = [(t, [p for p in pols if direction in p["types"]]) for t, pols in self.hep_tiers(hep, chain_type)]
        tiers = [(t, pols) for t, pols in tiers if pols]
        for tier, pols in tiers:
            rules.append(Rule([], ("clearmark", MARK_PASS), [f"Start of tier {tier['name']}"]))
            for target in self.hep_policy_targets(pols, tier["name"], direction, table,
                                                  untracked=chain_type == "untracked"):
                rules.append(Rule([("mark_clear", MARK_PASS)], ("jump", target)))
                if chain_type == "untracked":
                    rules.append(Rule([("mark_set", MARK_ACCEPT)], ("notrack",)))
                rules.append(Rule([("mark_set", MARK_ACCEPT)], ("return",), ["Return if policy accepted"]))
            if chain_type in ("normal", "mangle_egress", "forward"):
                # untracked and pre-DNAT tiers get default action Pass (tierInfoToProtoTierInfo)
                if tier["default_action"] != "pass":
                    if self.flow_logs:
                        rules.append(Rule([("mark_clear", MARK_PASS)],
                                          ("nflog", group, nflog_prefix(f"DP{letter}|{tier['name']}"))))
                    rules.append(Rule([("mark_clear", MARK_PASS)], ("drop",),
                                      [f"End of tier {tier['name']}. Drop if no policies passed packet"]))
                elif self.flow_logs:
                    rules.append(Rule([("mark_clear", MARK_PASS)],
                                      ("nflog", group, nflog_prefix(f"PP{letter}|{tier['name']}"))))
        if chain_type == "forward" and not tiers:
            rules += [Rule([], ("setmark", MARK_ACCEPT), ["Allow forwarded traffic by default"]),
                      Rule([], ("return",), ["Return for accepted forward traffic"])]
        if normal:
            rules += self.profile_tail(profiles, ingress, group, letter)
        return rules

    def hep_policy_targets(self, pols: list[dict], tier: str, direction: str, table: str,
                           untracked: bool) -> list[str]:
        """Like policy_groups, for a host endpoint's policies in one table: runs of 2+ policies with
        one selector share a group chain; policy chains live in the table that uses them (raw for
        untracked, mangle for pre-DNAT), and untracked ones carry no NFLOG (policy.go)."""
        targets = []
        for run in self.selector_runs(pols):
            for pol in run:
                self.ensure_table_policy_chain(pol, direction, table, untracked)
            if len(run) == 1:
                targets.append(self.policy_chain_name(run[0], direction))
                continue
            # ensure_group_chain writes into filter; for another table move the chain over.
            had = set(self.tables["filter"])
            name = self.ensure_group_chain(run, tier, direction)
            if table != "filter" and name not in self.tables[table]:
                chain = self.tables["filter"][name] if name not in had else Chain(
                    name, list(self.tables["filter"][name].rules))
                if name not in had:
                    del self.tables["filter"][name]
                self.tables[table][name] = chain
            targets.append(name)
        return targets

    def ensure_table_policy_chain(self, pol: dict, direction: str, table: str, untracked: bool) -> None:
        name = self.policy_chain_name(pol, direction)
        if name in self.tables[table]:
            return
        flow_logs, self.flow_logs = self.flow_logs, self.flow_logs and not untracked
        try:
            rules = []
            for idx, rule in enumerate(pol[direction]):
                rules += self.rule_to_rules(rule, idx, direction, self.policy_name(pol), owner="P", pol=pol)
        finally:
            self.flow_logs = flow_logs
        self.add(table, name, self.finish_rules(rules, self.policy_comment(pol, direction)))

    def hep_dispatch(self, table: str, ifaces: list[str], directions: tuple, from_root: str | None,
                     to_root: str | None, from_prefix: str | None, to_prefix: str | None) -> None:
        """hostDispatchChains: `-i <if> -g cali-fh-<if>` / `-o <if> -g cali-th-<if>` (a prefix tree for
        several interfaces), with no end rule: other interfaces fall through. nft mode uses the same
        rule tree (only workload dispatch has verdict maps)."""
        for d, root, prefix in (("from", from_root, from_prefix), ("to", to_root, to_prefix)):
            if d not in directions or not ifaces:
                continue
            self.build_dispatch_tree(root, prefix, "iif" if d == "from" else "oif", sorted(ifaces), None, table)


class MatchBlocks:
    """Felix's matchBlockBuilder: OR-blocks of rules that leave scratch0 set iff every block matched."""

    def __init__(self):
        self.rules: list[Rule] = []
        self.used = False
        self.done_first_positive = False

    def _start(self, initial: int) -> None:
        if not self.used:
            self.rules.append(Rule([], ("maskedmark", initial, MARK_SCRATCH0 | MARK_SCRATCH1)))
            self.used = True

    def positive(self, matches: list[list]) -> None:
        self._start(0)
        # The first positive block writes straight to scratch0; later ones use scratch1 and AND it in.
        bit = MARK_SCRATCH1 if self.done_first_positive else MARK_SCRATCH0
        self.rules += [Rule(m, ("setmark", bit)) for m in matches]
        if self.done_first_positive:
            self.rules.append(Rule([("mark_clear", MARK_SCRATCH1)], ("clearmark", MARK_SCRATCH0)))
        self.done_first_positive = True

    def negative(self, matches: list[list]) -> None:
        self._start(MARK_SCRATCH0)
        self.rules += [Rule(m, ("clearmark", MARK_SCRATCH0)) for m in matches]


def split_ports(ports: list) -> list[list]:
    """SplitPortList: groups using at most 15 multiport slots (a range takes 2)."""
    splits, cur, free = [], [], 15
    for lo, hi in ports:
        need = 1 if lo == hi else 2
        if free < need:
            splits.append(cur)
            cur, free = [], 15
        cur.append([lo, hi])
        free -= need
    if cur:
        splits.append(cur)
    return splits


def _common_prefix(names: list[str]) -> str:
    if not names:
        return ""
    lo, hi = min(names), max(names)
    i = 0
    while i < len(lo) and lo[i] == hi[i]:
        i += 1
    return lo[:i]


# ============================================================================================
# Rule hashes (shared by both renderers)


def rule_hashes(chain_name: str, rendered: list[str]) -> list[str]:
    """cali:<hash>: base64url(sha224(prev || rule))[:16], chained from sha224(chain name) (generictables)."""
    prev = hashlib.sha224(chain_name.encode()).digest()
    out = []
    for text in rendered:
        prev = hashlib.sha224(prev + text.encode()).digest()
        out.append(base64.urlsafe_b64encode(prev).decode()[:16])
    return out


def _ports_text(ports, sep: str, rng: str) -> str:
    return sep.join(str(lo) if lo == hi else f"{lo}{rng}{hi}" for lo, hi in ports)


# ============================================================================================
# nftables renderer


class NftRenderer:
    """Renders a FelixModel as Felix's native nftables mode (`table ip calico`, layer-prefixed chains)."""

    def __init__(self, model: FelixModel):
        self.m = model
        self.fam = "ip6" if model.ipv6 else "ip"

    def chain_name(self, layer: str, name: str) -> str:
        return f"{layer}-{name}"

    def match(self, layer: str, clauses: list) -> str:
        proto = next((c[1] for c in clauses if c[0] == "proto"), None)
        return " ".join(self.clause(layer, c, proto) for c in clauses)

    def clause(self, layer: str, c: tuple, proto: str | None) -> str:
        kind = c[0]
        if kind == "proto":
            return f"meta l4proto {c[1]}"
        if kind == "not_proto":
            return f"meta l4proto != {c[1]}"
        fam = self.fam
        simple = {"saddr": f"{fam} saddr {{}}", "not_saddr": f"{fam} saddr != {{}}", "daddr": f"{fam} daddr {{}}",
                  "not_daddr": f"{fam} daddr != {{}}"}
        if kind in simple:
            return simple[kind].format(c[1])
        sets = {"sset": f"{fam} saddr @{{}}", "not_sset": f"{fam} saddr != @{{}}", "dset": f"{fam} daddr @{{}}",
                "not_dset": f"{fam} daddr != @{{}}"}
        if kind in sets:
            return sets[kind].format(c[1].replace(":", "-"))
        if kind in ("snset", "dnset"):
            side = "s" if kind == "snset" else "d"
            return f"{fam} {side}addr . meta l4proto . th {side}port @{c[1].replace(':', '-')}"
        if kind in ("sports", "dports", "not_sports", "not_dports"):
            neg = "!= " if kind.startswith("not_") else ""
            field_ = "sport" if "sports" in kind else "dport"
            return f"{proto} {field_} {neg}{{ {_ports_text(c[1], ', ', '-')} }}"
        if kind == "icmp":
            # Felix writes "icmp type T code C", which nft 1.0.6 rejects; "icmp code" is the valid form.
            icmp = "icmpv6" if self.m.ipv6 else "icmp"  # policy.go: ICMPV6Type in the v6 chains
            text = f"{icmp} type {c[1]}"
            return text + (f" {icmp} code {c[2]}" if c[2] is not None else "")
        if kind == "mark_clear":
            return f"meta mark & {c[1]:#x} == 0"
        if kind == "mark_set":
            return f"meta mark & {c[1]:#x} == {c[1]:#x}"
        if kind == "mark_not_clear":
            return f"meta mark & {c[1]:#x} != 0"
        if kind in ("iif", "oif"):
            return f"{kind}name {c[1].replace('+', '*')}"  # Felix writes it unquoted
        if kind in ("iif_vmap", "oif_vmap"):
            return f"{kind[:3]}name vmap @{self.chain_name(layer, c[1])}"
        if kind == "ctstate":
            return "ct state " + c[1].lower()
        if kind == "ctstatus":
            return "ct status " + c[1].lower()
        if kind == "not_ctstatus":
            return "ct status != " + c[1].lower()
        if kind == "rpf_failed":
            return "fib saddr . mark . iif oif 0"
        raise ValueError(f"unknown clause {c}")

    def action(self, layer: str, a: tuple) -> str:
        kind = a[0]
        if kind in ("accept", "drop", "return", "reject", "notrack"):
            return kind
        if kind in ("jump", "goto"):
            return f"{kind} {self.chain_name(layer, a[1])}"
        if kind == "setmark":
            return f"meta mark set mark or {a[1]:#x}"
        if kind == "clearmark":
            return f"meta mark set mark & {a[1] ^ 0xffffffff:#x}"
        if kind == "maskedmark":
            return f"meta mark set mark & {a[2] ^ 0xffffffff:#x} ^ {a[1]:#x}"
        if kind == "nflog":
            return f'log prefix "{a[2]}" snaplen 80 group {a[1]}'
        if kind == "log":
            return f'log prefix "{a[1]}: " level info'
        if kind == "masq":
            return "masquerade fully-random"
        raise ValueError(f"unknown action {a}")

    def rule_text(self, layer: str, rule: Rule) -> str:
        parts = [self.match(layer, rule.match)] if rule.match else []
        if rule.action is not None:
            parts += ["counter", self.action(layer, rule.action)]  # Felix puts a counter on every action
        return " ".join(p for p in parts if p) or "continue"  # an empty rule is a no-op "continue"

    def chain_text(self, layer: str, chain: Chain, extra: list[Rule] = ()) -> list[str]:
        name = self.chain_name(layer, chain.name)
        rules = list(chain.rules) + list(extra)
        texts = [self.rule_text(layer, r) for r in rules]
        lines = [f"\tchain {name} {{"]
        if chain.base:
            ctype, hook, prio = chain.base
            lines.append(f"\t\ttype {ctype} hook {hook} priority {prio}; policy accept;")
        for rule, text, h in zip(rules, texts, rule_hashes(name, texts)):
            lines.append(f'\t\t{text} comment "{nft_comment(h, rule.comment)}"')
        lines.append("\t}")
        return lines

    def render(self) -> str:
        fam = self.fam
        out = ["# Felix native nftables mode (NFTablesMode=Enabled), rendered by tests/lab/render.py",
               f"table {fam} calico", f"delete table {fam} calico", f"table {fam} calico {{"]
        for s in sorted(self.m.ipsets.values(), key=lambda s: s.name):
            out += nft_set(s.name.replace(":", "-"), s, fam)
        for name, elems in self.m.dispatch_maps.items():
            mapname = self.chain_name("filter", name)
            out.append(f"\tmap {mapname} {{")
            out.append("\t\ttype ifname : verdict")
            if elems:
                items = ", ".join(f'"{i}" : goto {self.chain_name("filter", c)}' for i, c in elems.items())
                out.append(f"\t\telements = {{ {items} }}")
            out += ["\t}", ""]
        for layer in ("raw", "mangle", "nat", "filter"):
            for chain in self.m.tables[layer].values():
                extra = self.m.forward_tail if (layer, chain.name) == ("filter", "FORWARD") else []
                out += self.chain_text(layer, chain, extra) + [""]
        out.append("}")
        return "\n".join(out) + "\n"


def nft_comment(rule_hash: str, comments: list[str]) -> str:
    """`cali:<hash>;` then the extra comments, each cut so the whole stays within 128 chars (renderer.go)."""
    head = f"cali:{rule_hash};"
    if not comments:
        return head
    per = (128 - len(head)) // len(comments)
    parts = [head] + [c.replace('"', "_")[:per] for c in comments]
    return " ".join(parts)[:128]


def nft_set(name: str, s: IPSet, fam: str = "ip") -> list[str]:
    addr = "ipv6_addr" if fam == "ip6" else "ipv4_addr"
    if s.kind == "ipport":
        lines = [f"\tset {name} {{", f"\t\ttype {addr} . inet_proto . inet_service"]
        members = [f"{ip} . {proto} . {port}" for ip, proto, port in s.members]
    else:
        lines = [f"\tset {name} {{", f"\t\ttype {addr}"]
        members = list(s.members)
    if s.kind == "net":
        lines.append("\t\tflags interval")
    if members:
        lines.append(f"\t\telements = {{ {', '.join(members)} }}")
    return lines + ["\t}", ""]


# ============================================================================================
# iptables renderer


class IptRenderer:
    """Renders a FelixModel as Felix's iptables dataplane (iptables-nft-restore input + ipset restore)."""

    def __init__(self, model: FelixModel):
        self.m = model

    def match(self, clauses: list) -> list[str]:
        proto = next((c[1] for c in clauses if c[0] == "proto"), None)
        return [self.clause(c, proto) for c in clauses]

    def clause(self, c: tuple, proto: str | None) -> str:
        kind = c[0]
        if kind == "proto":
            return f"-p {c[1]}"
        if kind == "not_proto":
            return f"! -p {c[1]}"
        simple = {"saddr": "--source {}", "not_saddr": "! --source {}", "daddr": "--destination {}",
                  "not_daddr": "! --destination {}"}
        if kind in simple:
            return simple[kind].format(c[1])
        sets = {"sset": "-m set --match-set {} src", "not_sset": "-m set ! --match-set {} src",
                "dset": "-m set --match-set {} dst", "not_dset": "-m set ! --match-set {} dst"}
        if kind in sets:
            return sets[kind].format(c[1])
        if kind in ("snset", "dnset"):
            side = "src" if kind == "snset" else "dst"
            return f"-m set --match-set {c[1]} {side},{side}"
        if kind in ("sports", "dports", "not_sports", "not_dports"):
            neg = "! " if kind.startswith("not_") else ""
            opt = "--source-ports" if "sports" in kind else "--destination-ports"
            return f"-m multiport {neg}{opt} {_ports_text(c[1], ',', ':')}"
        if kind == "icmp":
            code = f"/{c[2]}" if c[2] is not None else ""
            if self.m.ipv6:
                return f"-m icmp6 --icmpv6-type {c[1]}{code}"
            return f"-m icmp --icmp-type {c[1]}{code}"
        if kind == "mark_clear":
            return f"-m mark --mark 0/{c[1]:#x}"
        if kind == "mark_set":
            return f"-m mark --mark {c[1]:#x}/{c[1]:#x}"
        if kind == "mark_not_clear":
            return f"-m mark ! --mark 0/{c[1]:#x}"
        if kind == "iif":
            return f"--in-interface {c[1]}"
        if kind == "oif":
            return f"--out-interface {c[1]}"
        if kind == "ctstate":
            return f"-m conntrack --ctstate {c[1]}"
        if kind == "ctstatus":
            return f"-m conntrack --ctstate {c[1]}"
        if kind == "not_ctstatus":
            return f"-m conntrack ! --ctstate {c[1]}"
        if kind == "rpf_failed":
            return "-m rpfilter --validmark --invert"
        raise ValueError(f"unknown clause {c}")

    def action(self, a: tuple) -> str:
        kind = a[0]
        simple = {"accept": "--jump ACCEPT", "drop": "--jump DROP", "return": "--jump RETURN",
                  "reject": "--jump REJECT", "masq": "--jump MASQUERADE --random-fully",
                  "notrack": "--jump NOTRACK"}
        if kind in simple:
            return simple[kind]
        if kind == "jump":
            return f"--jump {a[1]}"
        if kind == "goto":
            return f"--goto {a[1]}"
        if kind == "setmark":
            return f"--jump MARK --set-mark {a[1]:#x}/{a[1]:#x}"
        if kind == "clearmark":
            return f"--jump MARK --set-mark 0/{a[1]:#x}"
        if kind == "maskedmark":
            return f"--jump MARK --set-mark {a[1]:#x}/{a[2]:#x}"
        if kind == "nflog":
            return f'--jump NFLOG --nflog-group {a[1]} --nflog-prefix "{a[2]}" --nflog-size 80'
        if kind == "log":
            return f'--jump LOG --log-prefix "{a[1]}: " --log-level 5'
        raise ValueError(f"unknown action {a}")

    def rule_body(self, rule: Rule) -> str:
        parts = self.match(rule.match)
        if rule.action is not None:
            parts.append(self.action(rule.action))
        return " ".join(parts)

    def chain_lines(self, chain: Chain, rules: list[Rule]) -> list[str]:
        bodies = [self.rule_body(r) for r in rules]
        lines = []
        for rule, body, h in zip(rules, bodies, rule_hashes(chain.name, bodies)):
            comments = [f'-m comment --comment "cali:{h}"'] + [
                f'-m comment --comment "{ipt_comment(c)}"' for c in rule.comment]
            lines.append(" ".join([f"-A {chain.name}"] + comments + ([body] if body else [])))
        return lines

    def render(self, kube: dict[str, dict]) -> str:
        """kube: per table {"chains": [names], "head": {base: [lines]}, "rules": [lines]} from kube-proxy."""
        out = ["# Felix ip6tables dataplane, rendered by tests/lab/render.py" if self.m.ipv6 else
               "# Felix iptables dataplane + kube-proxy iptables mode, rendered by tests/lab/render.py"]
        for table in ("raw", "mangle", "nat", "filter"):
            chains = self.m.tables[table]
            k = kube.get(table, {"chains": [], "head": {}, "rules": [], "tail": {}})
            out.append(f"*{table}")
            base = [c for c in chains.values() if c.base]
            for builtin in BUILTIN_CHAINS[table]:
                out.append(f":{builtin} ACCEPT [0:0]")
            for c in chains.values():
                if not c.base:
                    out.append(f":{c.name} - [0:0]")
            for name in k["chains"]:
                out.append(f":{name} - [0:0]")
            for c in base:
                if (table, c.name) in FELIX_APPENDS:
                    out += k["head"].get(c.name, []) + self.chain_lines(c, c.rules)
                else:
                    out += self.chain_lines(c, c.rules)           # Felix inserts its jumps first
                    out += k["head"].get(c.name, [])               # then kube-proxy's (prepended earlier)
                if (table, c.name) == ("filter", "FORWARD"):
                    out += self.chain_lines(Chain("FORWARD"), c.rules + self.m.forward_tail)[len(c.rules):]
                out += k["tail"].get(c.name, [])
            for builtin in BUILTIN_CHAINS[table]:
                if builtin not in chains:
                    out += k["head"].get(builtin, []) + k["tail"].get(builtin, [])
            for c in chains.values():
                if not c.base:
                    out += self.chain_lines(c, c.rules)
            out += k["rules"]
            out.append("COMMIT")
        return "\n".join(out) + "\n"

    def ipsets(self) -> str:
        lines = []
        for s in sorted(self.m.ipsets.values(), key=lambda s: s.name):
            kind = {"net": "hash:net", "ip": "hash:ip", "ipport": "hash:ip,port"}[s.kind]
            family = "inet6" if self.m.ipv6 else "inet"
            lines.append(f"create {s.name} {kind} family {family} hashsize 1024 maxelem 1048576")
            if s.kind == "ipport":
                lines += [f"add {s.name} {ip},{proto}:{port}" for ip, proto, port in s.members]
            else:
                lines += [f"add {s.name} {m}" for m in s.members]
        return "\n".join(lines) + "\n"


# Felix appends (rather than inserts) its jump in nat POSTROUTING (int_dataplane.go), so kube-proxy's
# prepended rule comes first there.
FELIX_APPENDS = {("nat", "POSTROUTING")}

BUILTIN_CHAINS = {
    "raw": ["PREROUTING", "OUTPUT"],
    "mangle": ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
    "nat": ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
    "filter": ["INPUT", "FORWARD", "OUTPUT"],
}


def ipt_comment(text: str) -> str:
    """Felix sanitises iptables comments to [\\w @%+=:,./-] and 256 chars."""
    return "".join(ch if ch.isalnum() or ch in "_ @%+=:,./-" else "_" for ch in text)[:256]


# ============================================================================================
# kube-proxy


def service_endpoints(sc: dict, svc: dict, port: dict) -> list[str]:
    """"ip:port" of each endpoint ("[ip]:port" for IPv6, as kube-proxy writes a DNAT target)."""
    return [f"[{p['ip']}]:{port['target_port']}" if ":" in p["ip"] else f"{p['ip']}:{port['target_port']}"
            for p in scn.pods_for_service(sc, svc)]


def split_endpoint(ep: str) -> tuple[str, str]:
    ip, _, port = ep.rpartition(":")
    return ip.strip("[]"), port


def b32_sha256(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()


def kube_nft(sc: dict) -> str:
    """kube-proxy nftables mode (pkg/proxy/nftables/proxier.go), ClusterIP services only."""
    pool, svc_cidr, masq = sc["ip_pool"], sc["service_cidr"], f"{KUBE_MASQ_MARK:#x}"
    chains: dict[str, list[str]] = {}
    service_ips, no_endpoints, cluster_ips = [], [], []
    for svc in sc["services"]:
        for port in svc["ports"]:
            proto = port["proto"]
            base = f"{svc['namespace']}/{svc['name']}/{proto}/{port['name']}"
            key = f"{svc['cluster_ip']} . {proto} . {port['port']}"
            cluster_ips.append(svc["cluster_ip"])
            eps = service_endpoints(sc, svc, port)
            if not eps:
                no_endpoints.append(f'{key} comment "{svc["namespace"]}/{svc["name"]}'
                                    f'{":" + port["name"] if port["name"] else ""}" : goto reject-chain')
                continue
            svc_chain = "service-" + kube_hash_name(base)
            ep_chains = []
            for ep in eps:
                ip, ep_port = split_endpoint(ep)
                ep_chain = "endpoint-" + kube_hash_name(f"{base}__{ip.replace(':', '/')}/{ep_port}")
                chains[ep_chain] = [f"ip saddr {ip} jump mark-for-masquerade",
                                    f"meta l4proto {proto} dnat to {ep}"]
                ep_chains.append(ep_chain)
            vmap = ", ".join(f"{i} : goto {c}" for i, c in enumerate(ep_chains))
            chains[svc_chain] = [
                f"ip daddr {svc['cluster_ip']} ip saddr != {pool} jump mark-for-masquerade",
                f"numgen random mod {len(ep_chains)} vmap {{ {vmap} }}"]
            service_ips.append(f"{key} : goto {svc_chain}")

    def elements(items):
        return [f"\t\telements = {{ {', '.join(items)} }}"] if items else []

    out = ["# kube-proxy nftables mode", "table ip kube-proxy", "delete table ip kube-proxy",
           'table ip kube-proxy {', '\tcomment "rules for kube-proxy"',
           "\tset cluster-ips {", "\t\ttype ipv4_addr", '\t\tcomment "Active ClusterIPs"']
    out += elements(sorted(set(cluster_ips))) + ["\t}"]
    out += ["\tmap service-ips {", "\t\ttype ipv4_addr . inet_proto . inet_service : verdict",
            '\t\tcomment "ClusterIP, ExternalIP and LoadBalancer IP traffic"'] + elements(service_ips) + ["\t}"]
    out += ["\tmap no-endpoint-services {", "\t\ttype ipv4_addr . inet_proto . inet_service : verdict",
            '\t\tcomment "vmap to drop or reject packets to services with no endpoints"'
            ] + elements(no_endpoints) + ["\t}"]
    # knftables writes "dstnat-10" etc.; nft 1.0.6 only accepts the dstnat keyword on prerouting,
    # so use the numbers (dstnat = -100).
    base_chains = [
        ("filter-prerouting-pre-dnat", "filter hook prerouting priority -110", []),
        ("filter-input", "filter hook input priority -110",
         ["ct state new jump service-endpoints-check"]),
        ("filter-forward", "filter hook forward priority -110",
         ["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"]),
        ("filter-output", "filter hook output priority -110",
         ["ct state new jump service-endpoints-check"]),
        ("filter-output-post-dnat", "filter hook output priority -90",
         ["ct state new jump cluster-ips-check"]),
        ("nat-prerouting", "nat hook prerouting priority dstnat", ["jump services"]),
        ("nat-output", "nat hook output priority -100", ["jump services"]),
        ("nat-postrouting", "nat hook postrouting priority srcnat", ["jump masquerading"]),
    ]
    for name, spec, rules in base_chains:
        out += [f"\tchain {name} {{", f"\t\ttype {spec}; policy accept;"] + [f"\t\t{r}" for r in rules] + ["\t}"]
    regular = {
        "services": ["ip daddr . meta l4proto . th dport vmap @service-ips"],
        "service-endpoints-check": ["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"],
        "cluster-ips-check": [
            'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
            f'ip daddr {{ {svc_cidr} }} drop comment "Drop traffic to unallocated ClusterIPs"'],
        "mark-for-masquerade": [f"mark set mark or {masq}"],
        "masquerading": [f"mark and {masq} == 0 return", f"mark set mark xor {masq}",
                         "masquerade fully-random"],
        "reject-chain": ["reject"],
    }
    regular.update(chains)
    for name, rules in regular.items():
        out += [f"\tchain {name} {{"] + [f"\t\t{r}" for r in rules] + ["\t}"]
    out.append("}")
    return "\n".join(out) + "\n"


def kube_hash_name(name: str) -> str:
    """hashAndTruncate: 8 base32 chars of sha256(name), '-', name; cut to 112 chars."""
    full = b32_sha256(name)[:8] + "-" + name
    return full if len(full) <= 112 else full[:109] + "..."


def kube_iptables(sc: dict) -> dict[str, dict]:
    """kube-proxy iptables mode (pkg/proxy/iptables/proxier.go), ClusterIP services only."""
    pool = sc["ip_pool"]
    host = "/128" if ":" in pool else "/32"  # kube_iptables(v6_view(sc)): ip6tables
    unreachable = "icmp6-port-unreachable" if ":" in pool else "icmp-port-unreachable"
    nat_chains = ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-NODEPORTS"]
    nat_rules, svc_lines, filter_svc = [], [], []
    for svc in sc["services"]:
        for port in svc["ports"]:
            proto = port["proto"]
            spn = f"{svc['namespace']}/{svc['name']}" + (f":{port['name']}" if port["name"] else "")
            dst = f"-d {svc['cluster_ip']}{host} -p {proto} -m {proto} --dport {port['port']}"
            eps = service_endpoints(sc, svc, port)
            if not eps:
                filter_svc.append(f'-A KUBE-SERVICES {dst} -m comment --comment "{spn} has no endpoints" '
                                  f"-j REJECT --reject-with {unreachable}")
                continue
            svc_chain = "KUBE-SVC-" + b32_sha256(spn + proto)[:16]
            nat_chains.append(svc_chain)
            svc_lines.append(f'-A KUBE-SERVICES {dst} -m comment --comment "{spn} cluster IP" -j {svc_chain}')
            nat_rules.append(f'-A {svc_chain} ! -s {pool} {dst} -m comment --comment "{spn} cluster IP" '
                             f"-j KUBE-MARK-MASQ")
            for i, ep in enumerate(eps):
                sep = "KUBE-SEP-" + b32_sha256(spn + proto + ep)[:16]
                nat_chains.append(sep)
                left = len(eps) - i
                stat = f" -m statistic --mode random --probability {1 / left:.10f}" if left > 1 else ""
                nat_rules.append(f'-A {svc_chain} -m comment --comment "{spn} -> {ep}"{stat} -j {sep}')
                ip = split_endpoint(ep)[0]
                nat_rules.append(f'-A {sep} -s {ip}{host} -m comment --comment "{spn}" -j KUBE-MARK-MASQ')
                nat_rules.append(f'-A {sep} -p {proto} -m comment --comment "{spn}" -m {proto} '
                                 f"-j DNAT --to-destination {ep}")
    nodeports = ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the '
                 'last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
    masq = f"{KUBE_MASQ_MARK:#x}"
    nat = {
        "chains": nat_chains,
        "head": {"PREROUTING": ['-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'],
                 "OUTPUT": ['-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'],
                 "POSTROUTING": ['-A POSTROUTING -m comment --comment "kubernetes postrouting rules" '
                                 "-j KUBE-POSTROUTING"]},
        "tail": {},
        "rules": svc_lines + [nodeports] + nat_rules + [
            f"-A KUBE-MARK-MASQ -j MARK --or-mark {masq}",
            f"-A KUBE-POSTROUTING -m mark ! --mark {masq}/{masq} -j RETURN",
            f"-A KUBE-POSTROUTING -j MARK --xor-mark {masq}",
            '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
            "-j MASQUERADE --random-fully"],
    }
    filt = {
        "chains": ["KUBE-FORWARD", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES"],
        "head": {
            "INPUT": ['-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible '
                      'service portals" -j KUBE-EXTERNAL-SERVICES'],
            "FORWARD": ['-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
                        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
                        "-j KUBE-SERVICES"],
            "OUTPUT": ['-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
                       "-j KUBE-SERVICES"]},
        "tail": {},
        "rules": filter_svc + [
            "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
            f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark {masq}/{masq} '
            "-j ACCEPT",
            '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack '
            "--ctstate RELATED,ESTABLISHED -j ACCEPT"],
    }
    return {"nat": nat, "filter": filt}



# ============================================================================================
# V6: Felix's IPv6 tables for a dual-stack scenario (`table ip6 calico`, ip6tables-nft + inet6
# ipsets). Felix renders the same model for each IP version (int_dataplane.go builds one set of
# tables per version); what differs is gathered here:
#   - IP sets are `cali60...` (ipset_defs.go NameForMainIPSet) and hold the selected pods' v6 addresses;
#   - a rule goes to the version of its protocol (icmp -> 4, icmpv6 -> 6) and keeps only the CIDRs of
#     that version; a side whose CIDRs are all of the other version drops the rule (policy.go
#     FilterRuleToIPVersion / filterNets);
#   - ICMP type matches become ICMPv6 ones (policy.go), and cali-wl-to-host first accepts the
#     ICMPv6 types a router must see from its workloads (static.go ICMPv6Filter: MLD 130-132,
#     router solicitation 133, neighbour solicitation/advertisement 135/136).
# kube-proxy's IPv6 rules: services with a `cluster_ip6` (below).

ICMPV6_ROUTER_TYPES = (130, 131, 132, 133, 135, 136)


def v6_ipset_name(set_id: str) -> str:
    return ("cali60" + set_id)[:31]


def v6_members(sc: dict, kind: str, members: list) -> list:
    """The v6 twin of a v4 member list: pod addresses map to the pods' ip6 (pods without one drop out);
    CIDRs and addresses that are already v6 stay."""
    ip6 = scn.ip6_of(sc)
    if kind == "ipport":
        return [(ip6[ip], proto, port) for ip, proto, port in members if ip in ip6]
    return [ip6.get(m, m) for m in members if ip6.get(m, m) and scn.is_v6(ip6.get(m, m))]


def v6_static_ipsets(model: "FelixModel") -> None:
    sc = model.sc
    model.add_ipset("all-ipam-pools", "net", [sc["ip6_pool"]])
    model.add_ipset("masq-ipam-pools", "net", [sc["ip6_pool"]])
    model.add_ipset("this-host", "ip", ["::1", sc["node"]["ip6"]])


def v6_icmp_filter() -> list[Rule]:
    return [Rule([("proto", "58"), ("icmp", t, None)], ("accept",)) for t in ICMPV6_ROUTER_TYPES]


def rule_for_version(rule: dict, version: int) -> dict | None:
    """The rule as Felix renders it for one IP version, or None when that version leaves it out."""
    want = scn.rule_ip_version(rule)
    if want is not None and want != version:
        return None
    out = {**rule, "src": dict(rule["src"]), "dst": dict(rule["dst"])}
    for side in ("src", "dst"):
        for key in ("nets", "not_nets"):
            kept, dropped_all = scn.nets_for_version(rule[side][key], version)
            if dropped_all:
                return None
            out[side][key] = kept
    return out


def dual_stack(sc: dict) -> bool:
    return bool(sc.get("dual_stack"))


# kube-proxy runs one proxier per IP family in a dual-stack cluster: `table ip6 kube-proxy` in its
# nftables mode, the KUBE-* chains in ip6tables in its iptables mode, over the services' IPv6
# ClusterIPs (`cluster_ip6`) and the endpoints' IPv6 addresses. The same writers run on a v6 view of
# the scenario.


def v6_view(sc: dict) -> dict:
    """The scenario as the v6 proxier sees it: v6 pool, service CIDR and ClusterIPs, pods' v6 addresses."""
    return {**sc, "ip_pool": sc["ip6_pool"], "service_cidr": sc["service_cidr6"],
            "pods": [{**p, "ip": p["ip6"]} for p in sc["pods"] if p.get("ip6")],
            "services": [{**s, "cluster_ip": s["cluster_ip6"]} for s in sc["services"] if s.get("cluster_ip6")]}


def kube_nft_v6(sc: dict) -> str:
    text = kube_nft(v6_view(sc))
    for v4, v6 in (("table ip kube-proxy", "table ip6 kube-proxy"), ("ip daddr", "ip6 daddr"),
                   ("ip saddr", "ip6 saddr"), ("ipv4_addr", "ipv6_addr")):
        text = text.replace(v4, v6)
    return text

# ============================================================================================
# Output


def topology(sc: dict) -> dict:
    return {
        "name": sc["name"],
        "node": sc["node"],
        "calico_version": sc["calico_version"],
        "flow_logs": sc["flow_logs"],
        "ip_pool": sc["ip_pool"],
        **({"ip6_pool": sc["ip6_pool"]} if dual_stack(sc) else {}),
        "pods": [{"namespace": p["namespace"], "name": p["name"], "ip": p["ip"], "iface": p["iface"],
                  "labels": p["labels"], "serve": p["serve"], **({"ip6": p["ip6"]} if p.get("ip6") else {})}
                 for p in sc["pods"]],
        "services": [{"namespace": s["namespace"], "name": s["name"], "cluster_ip": s["cluster_ip"],
                      "ports": s["ports"], "endpoints": [p["ip"] for p in scn.pods_for_service(sc, s)],
                      **({"cluster_ip6": s["cluster_ip6"],
                          "endpoints6": [p["ip6"] for p in scn.pods_for_service(sc, s) if p.get("ip6")]}
                         if s.get("cluster_ip6") else {})}
                     for s in sc["services"]],
        **({"host_endpoints": sc["host_endpoints"]} if sc.get("host_endpoints") else {}),
    }


def render(sc: dict, layout: str, out: Path) -> list[Path]:
    """Render a normalised scenario into out/; returns the files written."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    out.mkdir(parents=True, exist_ok=True)
    configure_marks(int(str(sc["mark_mask"]), 0))
    written = [out / "topology.json"]
    written[0].write_text(json.dumps(topology(sc), indent=2) + "\n")
    model = FelixModel(sc, nft=(layout == "nftables"))
    model6 = FelixModel(sc, nft=(layout == "nftables"), ipv6=True) if dual_stack(sc) else None
    if layout == "nftables":
        path = out / "ruleset.nft"
        v6 = "\n" + NftRenderer(model6).render() if model6 else ""
        kube6 = "\n" + kube_nft_v6(sc) if model6 else ""
        path.write_text(NftRenderer(model).render() + v6 + "\n" + kube_nft(sc) + kube6)
        written.append(path)
    else:
        ipt = IptRenderer(model)
        ipsets = ipt.ipsets() + (IptRenderer(model6).ipsets() if model6 else "")
        (out / "ipsets.restore").write_text(ipsets)
        (out / "iptables.rules").write_text(ipt.render(kube_iptables(sc)))
        written += [out / "ipsets.restore", out / "iptables.rules"]
        if model6:
            (out / "ip6tables.rules").write_text(IptRenderer(model6).render(kube_iptables(v6_view(sc))))
            written.append(out / "ip6tables.rules")
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario", type=Path)
    ap.add_argument("--layout", choices=LAYOUTS, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        sc = scn.load(args.scenario)
    except (OSError, ValueError, KeyError) as e:
        print(f"render.py: {args.scenario}: {e}", file=sys.stderr)
        return 2
    for path in render(sc, args.layout, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
