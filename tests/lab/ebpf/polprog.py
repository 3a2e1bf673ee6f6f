"""Calico TC policy programs, generated the way felix/bpf/polprog/pol_prog_builder.go lays them out.

Input is a `Rules` value (tiers of policies of rules, profiles), the shape Felix's extractTiers /
extractProfiles produce; node.py builds it from a lab scenario, test_polprog.py from Calico's own test
cases. Output is Felix's instruction list (asm.py dicts: inst, labels, comments, annotation) for ONE
program: header (state lookup) -> [host-policy skeleton] -> tiers -> profiles -> deny/allow footers that
tail-call the static programs map at skb->cb[1] / skb->cb[0].

Programs with more than MAX_JUMPS jumps are split as Felix splits them: sub-program k goes in the policy
jump map at index + k * stride and continues through a trampoline keyed by pol_rc.

IPv6 programs (`ipv6=True`, Felix's WithIPv6): addresses are four 32-bit sections of the state's 16-byte
slots (CIDR matches compare each section whose mask is not zero), IP-set keys carry the 16-byte address
(full mask 224, port/protocol/pad 12 bytes further) and rules are filtered to the family as Felix's
FilterRuleToIPVersion does (a rule whose CIDRs are all of the other family compiles to no code but keeps
its comments and its place in the policy).

Host-endpoint programs (`Rules.for_host_interface`, Felix's applyPolicyToHost/addHostPolicy): pre-DNAT
tiers matched on the pre-DNAT destination, then to/from-host traffic (state flags DEST_IS_HOST /
SRC_IS_HOST) jumps to the normal host tiers and host profiles (ending in the no-profile deny), forwarded
traffic runs the apply-on-forward tiers; everything that passes host policy is allowed (no workload part).

Not modelled (the lab has no use for them): XDP (untracked policy), Felix's in-program jump trampolines
(past 32k instructions), WithAllowDenyJumps.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import sys
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import asm  # noqa: E402
import maps  # noqa: E402
from asm import R0, R1, R2, R3, R6, R9, R10  # noqa: E402

# Felix splits a program after this many jumps (verifier limit 8192 minus headroom).
MAX_JUMPS = 8192 - 200
MAX_RULE_IDS = 32
TC_STRIDE = 10000  # jump.TCMaxEntryPoints: sub-program k of entry point i sits at i + k * 10000

POL_NO_MATCH, POL_ALLOW, POL_DENY, POL_TAIL_CALL_FAILED = 0, 1, 2, 10
TC_ACT_SHOT = 2

# Stack layout (pol_prog_builder.go nextOffset): state key, then src and dst IP-set keys (v6-sized).
OFF_STATE_KEY, OFF_SRC_IPSET_KEY, OFF_DST_IPSET_KEY = -4, -36, -68
IPS_KEY_PREFIX, IPS_KEY_ID, IPS_KEY_ADDR, IPS_KEY_PORT, IPS_KEY_PROTO, IPS_KEY_PAD = 0, 4, 12, 16, 18, 19
SKB_CB0, SKB_CB1 = 48, 52
FLAG_DEST_IS_HOST, FLAG_SRC_IS_HOST, FLAG_LOG_PACKET = 0x4, 0x8, 0x400

PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132}
IPS_V6_SHIFT = 12  # a v6 IP-set key's port, protocol and pad sit 12 bytes further
IPSET_FULL_MASK_V6 = 224


@dataclass
class Rule:
    """One proto.Rule as Felix's calc graph hands it over (IP sets by their string id)."""
    action: str = "allow"  # allow | deny | pass | next-tier | log
    protocol: int | str | None = None
    not_protocol: int | str | None = None
    src_net: list = field(default_factory=list)
    not_src_net: list = field(default_factory=list)
    dst_net: list = field(default_factory=list)
    not_dst_net: list = field(default_factory=list)
    src_ip_sets: list = field(default_factory=list)
    not_src_ip_sets: list = field(default_factory=list)
    dst_ip_sets: list = field(default_factory=list)
    not_dst_ip_sets: list = field(default_factory=list)
    dst_ip_port_sets: list = field(default_factory=list)
    src_ports: list = field(default_factory=list)  # [(first, last)]
    not_src_ports: list = field(default_factory=list)
    dst_ports: list = field(default_factory=list)
    not_dst_ports: list = field(default_factory=list)
    src_named_port_sets: list = field(default_factory=list)
    not_src_named_port_sets: list = field(default_factory=list)
    dst_named_port_sets: list = field(default_factory=list)
    not_dst_named_port_sets: list = field(default_factory=list)
    icmp_type: int | None = None
    icmp_code: int | None = None
    not_icmp_type: int | None = None
    not_icmp_code: int | None = None
    match_id: int = 0
    rule_id: str = ""  # Felix's per-rule hash ("End of rule ... <rule_id>")
    original: dict = field(default_factory=dict)  # original_{src,dst,not_src,...}_selector strings


@dataclass
class Policy:
    name: str
    rules: list
    kind: str = ""  # v3.32 comment: NetworkPolicy | GlobalNetworkPolicy | KubernetesNetworkPolicy
    namespace: str = ""

    def namespaced_name(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass
class Tier:
    name: str
    policies: list = field(default_factory=list)
    end_action: str = ""  # "" | deny | pass ("" prints empty in the comment and acts as deny)
    end_rule_id: int = 0


@dataclass
class Rules:
    tiers: list = field(default_factory=list)
    profiles: list = field(default_factory=list)
    no_profile_match_id: int = 0
    # Felix sets this for every workload program; Calico's unit tests leave it false, which adds the
    # (empty) normal host policy: to/from-host traffic then hits the no-profile deny.
    suppress_normal_host_policy: bool = True
    # Host endpoint policy (a host interface's program, or host-* on a workload's).
    for_host_interface: bool = False
    host_pre_dnat_tiers: list = field(default_factory=list)
    host_forward_tiers: list = field(default_factory=list)
    host_normal_tiers: list = field(default_factory=list)
    host_profiles: list = field(default_factory=list)


@dataclass(frozen=True)
class MapFds:
    """The imm of each map's ld_imm64 (Felix's fd numbers at generation time)."""
    state: int = 3
    ipsets: int = 4
    static_progs: int = 5
    jump: int = 6


def protocol_number(p) -> int:
    if isinstance(p, int) or str(p).isdigit():
        return int(p)
    return PROTO_NUMBERS.get(str(p).lower(), 0)


def protocol_comment_name(p) -> str:
    """protocolToName: names lower-cased; numbers 6/11(!)/1/132 named, others empty (Felix's table)."""
    if isinstance(p, int) or str(p).isdigit():
        return {6: "tcp", 11: "udp", 1: "icmp", 132: "sctp"}.get(int(p), "")
    return str(p).lower()


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rule_text(r: Rule) -> str:
    """The proto.Rule text Felix prints in "Start of rule": protobuf text format, fields in the order of
    felixbackend.proto's `message Rule` (protobuf-go randomly uses one or two spaces; we use one)."""
    parts = []

    def proto_field(name, p):
        if p is None:
            return
        if isinstance(p, int) or str(p).isdigit():
            parts.append(f"{name}:{{number:{int(p)}}}")
        else:
            parts.append(f"{name}:{{name:{_quote(str(p))}}}")

    def strings(name, items):
        parts.extend(f"{name}:{_quote(s)}" for s in items)

    def ports(name, items):
        parts.extend(f"{name}:{{first:{a} last:{b}}}" if a else f"{name}:{{last:{b}}}" for a, b in items)

    def icmp(prefix, typ, code):
        if typ is None:
            return
        if code is None:
            parts.append(f"{prefix}icmp_type:{typ}")
        else:
            inner = " ".join(([f"type:{typ}"] if typ else []) + ([f"code:{code}"] if code else []))
            parts.append(f"{prefix}icmp_type_code:{{{inner}}}")

    strings("action", [r.action])
    proto_field("protocol", r.protocol)
    strings("src_net", r.src_net)
    ports("src_ports", r.src_ports)
    strings("src_named_port_ip_set_ids", r.src_named_port_sets)
    strings("dst_net", r.dst_net)
    ports("dst_ports", r.dst_ports)
    strings("dst_named_port_ip_set_ids", r.dst_named_port_sets)
    icmp("", r.icmp_type, r.icmp_code)
    strings("src_ip_set_ids", r.src_ip_sets)
    strings("dst_ip_set_ids", r.dst_ip_sets)
    strings("dst_ip_port_set_ids", r.dst_ip_port_sets)
    proto_field("not_protocol", r.not_protocol)
    strings("not_src_net", r.not_src_net)
    ports("not_src_ports", r.not_src_ports)
    strings("not_dst_net", r.not_dst_net)
    ports("not_dst_ports", r.not_dst_ports)
    icmp("not_", r.not_icmp_type, r.not_icmp_code)
    strings("not_src_ip_set_ids", r.not_src_ip_sets)
    strings("not_dst_ip_set_ids", r.not_dst_ip_sets)
    strings("not_src_named_port_ip_set_ids", r.not_src_named_port_sets)
    strings("not_dst_named_port_ip_set_ids", r.not_dst_named_port_sets)
    for key in ("original_src_selector", "original_dst_selector", "original_src_namespace_selector",
                "original_dst_namespace_selector", "original_not_src_selector", "original_not_dst_selector"):
        if r.original.get(key):
            strings(key, [r.original[key]])
    if r.rule_id:
        strings("rule_id", [r.rule_id])
    return " ".join(parts)


def _le32(b: bytes) -> int:
    v = int.from_bytes(b, "little")
    return v - (1 << 32) if v & 0x80000000 else v


class Builder:
    def __init__(self, version: str, ipset_ids: dict[str, int], fds: MapFds = MapFds(), debug: bool = True,
                 flow_logs: bool = False, policy_map_index: int = 0, stride: int = TC_STRIDE,
                 max_jumps: int = MAX_JUMPS, ipv6: bool = False):
        self.ipv6 = ipv6
        minor = int(version.split(".")[1])
        if minor < 30:
            raise ValueError(f"policy programs are generated for Calico 3.30+ only, not {version}")
        self.kind_comments = minor >= 32
        self.off = maps.state_offsets(version)
        self.ipset_ids = ipset_ids
        self.fds = fds
        self.debug = debug
        self.record = debug or flow_logs
        self.b = asm.Block(debug)
        self.blocks = [self.b]
        self.policy_map_index, self.stride, self.max_jumps = policy_map_index, stride, max_jumps
        self.tier_id = self.policy_id = self.rule_id = self.rule_part = 0
        self.pre_dnat = False  # writing pre-DNAT tiers: the destination leg is the pre-DNAT one

    # ---- state fields ------------------------------------------------------------------

    def _f(self, name):
        return self.off[name], f"state->{name}"

    def _leg(self, leg: str):
        """(address field, port field) of a match leg."""
        if leg == "source":
            return "ip_src", "sport"
        if self.pre_dnat:
            return "pre_nat_ip_dst", "pre_nat_dport"
        return "post_nat_ip_dst", "post_nat_dport"

    # ---- program ----------------------------------------------------------------------

    def programs(self, rules: Rules) -> list[list[dict]]:
        """The program and its sub-programs (usually just one)."""
        self._header()
        self.pre_dnat = True
        self._tiers(rules.host_pre_dnat_tiers, "allowed_by_host_policy")
        self.pre_dnat = False
        if rules.suppress_normal_host_policy:
            self._jump_if_host("allowed_by_host_policy")
        else:
            self._jump_if_host("to_or_from_host")
        self._tiers(rules.host_forward_tiers, "allowed_by_host_policy")
        self.b.jump("allowed_by_host_policy")
        if not rules.suppress_normal_host_policy:
            self.b.label("to_or_from_host")
            self._tiers(rules.host_normal_tiers, "allowed_by_host_policy")
            self._profiles(rules.host_profiles, rules.no_profile_match_id, "allowed_by_host_policy")
        self.b.label("allowed_by_host_policy")
        if rules.for_host_interface:
            self.b.jump("allow")
        else:
            self._tiers(rules.tiers, "allow")
            self._profiles(rules.profiles, rules.no_profile_match_id, "allow")
        self._footer()
        return [blk.assemble() for blk in self.blocks]

    def _split_if_needed(self) -> bool:
        """maybeSplitProgram: past max_jumps, end this program with a tail call to the next sub-program.

        Every jump target still unresolved becomes a landing pad that stores its number in pol_rc; the next
        sub-program re-runs the header, reads and clears pol_rc and jumps to the same label."""
        b = self.b
        if b.num_jumps < self.max_jumps or not self.stride:
            return False
        b.comment(f"Splitting program after {b.num_jumps} jumps")
        b.mov64_imm(R0, 0)
        b.jump("next-program")
        self._footer()
        targets = sorted(t for t in b.fixups if t != "next-program")
        for i, t in enumerate(targets):
            b.label(t)
            b.mov64_imm(R0, i + 1)
            if i != len(targets) - 1:
                b.jump("next-program")
        b.label("next-program")
        b.store(asm.STX32, R9, R0, *self._f("pol_rc"))
        k = len(self.blocks)
        idx = self.policy_map_index + k * self.stride
        b.mov64(R1, R6)
        b.ld_map_fd(R2, self.fds.jump)
        b.comment(f"Tail call to policy program at index {self.stride} * {k} + {self.policy_map_index} = {idx}")
        b.mov64_imm(R3, idx)
        b.call(asm.HELPER_TAIL_CALL)
        self._exit_target()
        self.b = b = asm.Block(self.debug)
        self.blocks.append(b)
        b.comment(f"##### Start of program {k} #####")
        self._header()
        b.load(asm.LDX32, R0, R9, *self._f("pol_rc"))
        b.mov32_imm(R1, 0)
        b.store(asm.STX32, R9, R1, *self._f("pol_rc"))
        for i, t in enumerate(targets):
            b.jump_imm(asm.JEQ_IMM, R0, i + 1, t)
        return True

    def _exit_target(self):
        self.b.label("exit")
        self.b.mov64_imm(R0, TC_ACT_SHOT)
        self.b.exit()

    def _header(self):
        b = self.b
        b.label("start")
        b.mov64(R6, asm.R1)
        b.mov64_imm(R1, 0)
        b.store_stack(asm.STX32, R1, OFF_STATE_KEY)
        b.mov64(R2, R10)
        b.add64_imm(R2, OFF_STATE_KEY)
        b.comment("Load packet metadata saved by previous program")
        b.ld_map_fd(R1, self.fds.state)
        b.call(asm.HELPER_MAP_LOOKUP_ELEM)
        b.jump_imm(asm.JEQ_IMM, R0, 0, "exit")
        b.comment("Save state pointer in register R9")
        b.mov64(R9, R0)
        b.label("policy")

    def _jump_if_host(self, target):
        b = self.b
        b.load(asm.LDX64, R1, R9, *self._f("flags"))
        b.and64_imm(R1, FLAG_DEST_IS_HOST | FLAG_SRC_IS_HOST)
        b.jump_imm(asm.JNE_IMM, R1, 0, target)

    def _footer(self):
        b = self.b
        b.label("deny")
        b.mov32_imm(R1, POL_DENY)
        b.store(asm.STX32, R9, R1, *self._f("pol_rc"))
        b.mov64(R1, R6)
        b.ld_map_fd(R2, self.fds.static_progs)
        b.load(asm.LDX32, R3, R6, SKB_CB1, "skb->cb[1]")
        b.call(asm.HELPER_TAIL_CALL)
        self._exit_target()
        if b.target_used("allow"):
            b.label("allow")
            b.mov32_imm(R1, POL_ALLOW)
            b.store(asm.STX32, R9, R1, *self._f("pol_rc"))
            b.mov64(R1, R6)
            b.ld_map_fd(R2, self.fds.static_progs)
            b.load(asm.LDX32, R3, R6, SKB_CB0, "skb->cb[0]")
            b.call(asm.HELPER_TAIL_CALL)
            b.mov32_imm(R1, POL_TAIL_CALL_FAILED)
            b.store(asm.STX32, R9, R1, *self._f("pol_rc"))
            b.mov64_imm(R0, TC_ACT_SHOT)
            b.exit()

    # ---- tiers, policies, profiles ------------------------------------------------------

    def _tiers(self, tiers, allow_label):
        labels = {"allow": allow_label, "deny": "deny", "log": "log"}
        for tier in tiers:
            end = f"end_of_tier_{self.tier_id}"
            labels["pass"] = labels["next-tier"] = end
            self.b.comment(f"Start of tier {tier.name}")
            for pol in tier.policies:
                self._policy(pol, labels)
            action = tier.end_action or "deny"
            self.b.comment(f"End of tier {tier.name}: {tier.end_action}")
            self._rule(Rule(action=action, match_id=tier.end_rule_id), labels[action])
            self.b.label(end)
            self.tier_id += 1

    def _policy(self, pol: Policy, labels):
        if self.kind_comments:
            cmt = f"{pol.kind} {pol.namespaced_name()} {self.policy_id}"
            self.b.comment(f"Start of {cmt}")
            self._policy_rules(pol, labels)
            self.b.comment(f"End of {cmt}")
        else:
            self.b.comment(f"Start of policy {pol.name}")
            self._policy_rules(pol, labels)
            self.b.comment(f"End of policy {pol.name}")
        self.policy_id += 1

    def _profiles(self, profiles, no_profile_id, allow_label):
        labels = {"allow": allow_label, "deny": "deny", "pass": "deny", "next-tier": "deny"}
        for prof in profiles:
            self._policy_rules(prof, labels)
            self.policy_id += 1
        self._rule(Rule(action="deny", match_id=no_profile_id), "deny")

    def _policy_rules(self, pol: Policy, labels):
        for r in pol.rules:
            if self.kind_comments:
                self.b.comment(f"Start of rule {pol.namespaced_name()} {rule_text(r)}")
            else:
                self.b.comment(f"Start of rule {rule_text(r)}")
            ids = self._ipset_ids_text(r)
            if ids:
                self.b.comment(f"IPSets {ids}")
            self.b.comment(f"Rule MatchID: {r.match_id}")
            label = labels.get(r.action.lower(), "")
            if not label:
                raise ValueError(f"{pol.name}: action {r.action!r} has no meaning here")
            self._rule(r, label)
            if self.kind_comments:
                self.b.comment(f"End of rule {pol.namespaced_name()} {r.rule_id}")
            else:
                self.b.comment(f"End of rule {r.rule_id}")

    def _ipset_ids_text(self, r: Rule) -> str:
        out = ""
        for name, sets in (("src_ip_set_ids", r.src_ip_sets), ("not_src_ip_set_ids", r.not_src_ip_sets),
                           ("dst_ip_set_ids", r.dst_ip_sets), ("not_dst_ip_set_ids", r.not_dst_ip_sets)):
            ids = ",".join(f"0x{self.ipset_ids[s]:x}" for s in sets if self.ipset_ids.get(s))
            if ids:
                out += f"{name}:<{ids}> "
        return out

    # ---- one rule -------------------------------------------------------------------------

    def _end_label(self):
        return f"rule_{self.rule_id}_no_match"

    def _fresh(self):
        label = f"rule_{self.rule_id}_part_{self.rule_part}"
        self.rule_part += 1
        return label

    def _for_family(self, r: Rule) -> Rule | None:
        """FilterRuleToIPVersion: the rule's CIDRs of this program's family; None when a CIDR field keeps
        none of its CIDRs (or a negated one is the family's catch-all): the rule cannot match here."""
        def nets(cidrs, negated):
            if not cidrs:
                return [], False
            keep = [c for c in cidrs if (":" in c) == self.ipv6]
            if negated and any(c in ("0.0.0.0/0", "::/0") for c in keep):
                return [], True
            return keep, not keep
        out = {}
        for name, neg in (("src_net", False), ("not_src_net", True), ("dst_net", False), ("not_dst_net", True)):
            kept, gone = nets(getattr(r, name), neg)
            if gone:
                return None
            out[name] = kept
        return dataclasses.replace(r, **out)

    def _rule(self, r: Rule, action_label: str):
        self._split_if_needed()
        r = self._for_family(r)
        if r is None:
            return  # no code; Felix does not advance its rule label counter either
        if r.protocol is not None:
            self._proto(False, r.protocol)
        if r.not_protocol is not None:
            self._proto(True, r.not_protocol)
        if r.src_net:
            self._cidrs(False, "source", r.src_net)
        if r.not_src_net:
            self._cidrs(True, "source", r.not_src_net)
        if r.dst_net:
            self._cidrs(False, "dest", r.dst_net)
        if r.not_dst_net:
            self._cidrs(True, "dest", r.not_dst_net)
        if r.src_ip_sets:
            self._ipsets(False, "source", r.src_ip_sets)
        if r.not_src_ip_sets:
            self._ipsets(True, "source", r.not_src_ip_sets)
        if len(r.dst_ip_sets) > 1:
            raise ValueError("Felix combines destination IP sets into one (calc graph)")
        if r.dst_ip_sets:
            self._ipsets_or("dest", r.dst_ip_sets)
        if r.not_dst_ip_sets:
            self._ipsets(True, "dest", r.not_dst_ip_sets)
        if r.dst_ip_port_sets:
            self._ipsets(False, "dest", r.dst_ip_port_sets)
        if r.src_ports or r.src_named_port_sets:
            self._ports(False, "source", r.src_ports, r.src_named_port_sets)
        if r.not_src_ports or r.not_src_named_port_sets:
            self._ports(True, "source", r.not_src_ports, r.not_src_named_port_sets)
        if r.dst_ports or r.dst_named_port_sets:
            self._ports(False, "dest", r.dst_ports, r.dst_named_port_sets)
        if r.not_dst_ports or r.not_dst_named_port_sets:
            self._ports(True, "dest", r.not_dst_ports, r.not_dst_named_port_sets)
        if r.icmp_type is not None:
            self._icmp(False, r.icmp_type, r.icmp_code)
        if r.not_icmp_type is not None:
            self._icmp(True, r.not_icmp_type, r.not_icmp_code)
        self._end_of_rule(r, action_label)
        self.rule_id += 1
        self.rule_part = 0

    def _end_of_rule(self, r: Rule, action_label: str):
        b = self.b
        if action_label == "log":
            b.load(asm.LDX64, R1, R9, *self._f("flags"))
            b.or64_imm(R1, FLAG_LOG_PACKET)
            b.store(asm.STX64, R9, R1, *self._f("flags"))
        else:
            if self.record:
                self._record_rule_id(r.match_id, action_label)
            b.jump(action_label)
        b.label(self._end_label())

    def _record_rule_id(self, rule_id: int, skip_label: str):
        b = self.b
        b.load(asm.LDX8, R1, R9, *self._f("rules_hit"))
        b.jump_imm(asm.JGE_IMM, R1, MAX_RULE_IDS, skip_label)
        b.mov64(R2, R1)
        b.add64_imm(R2, 1)
        b.store(asm.STX8, R9, R2, *self._f("rules_hit"))
        b.lsh64_imm(R1, 3)
        b.add64_imm(R1, self.off["rule_ids"])
        b.ld_imm64(R2, rule_id)
        b.add64(R1, R9)
        b.store(asm.STX64, R1, R2, 0, "")

    def _proto(self, negate, p):
        b = self.b
        b.comment(f"If protocol {'==' if negate else '!='} {protocol_comment_name(p)}, skip to next rule")
        b.load(asm.LDX8, R1, R9, *self._f("ip_proto"))
        b.jump_imm(asm.JEQ_IMM if negate else asm.JNE_IMM, R1, protocol_number(p), self._end_label())

    def _icmp(self, negate, icmp_type, icmp_code):
        b = self.b
        op = asm.JEQ_IMM if negate else asm.JNE_IMM
        if icmp_code is None:
            b.comment(f"If ICMP type {'==' if negate else '!='} {icmp_type}, skip to next rule")
            b.load(asm.LDX8, R1, R9, self.off["dport"], "state->icmp_type")
            b.jump_imm(op, R1, icmp_type, self._end_label())
        else:
            if negate:
                b.comment(f"If ICMP type == {icmp_type} and code == {icmp_code}, skip to next rule")
            else:
                b.comment(f"If ICMP type != {icmp_type} or code != {icmp_code}, skip to next rule")
            b.load(asm.LDX16, R1, R9, self.off["dport"], "state->icmp_type")
            b.jump_imm(op, R1, (icmp_code << 8) | icmp_type, self._end_label())

    def _cidrs(self, negate, leg, cidrs):
        b = self.b
        if self.debug:
            text = "{" + ",".join(cidrs) + "}"
            b.comment(f"If {leg} {'in' if negate else 'not in'} {text}, skip to next rule")
        on_match = self._end_label() if negate else self._fresh()
        addr_field = self._leg(leg)[0]
        for n, cidr in enumerate(cidrs):
            if self._split_if_needed():  # the number of CIDRs is unbounded
                b = self.b
            net = ipaddress.ip_network(cidr, strict=False)
            words = len(net.network_address.packed) // 4
            addrs = [_le32(net.network_address.packed[4 * i:4 * i + 4]) for i in range(words)]
            masks = [_le32(net.netmask.packed[4 * i:4 * i + 4]) for i in range(words)]
            next_cidr = f"rule_{self.rule_id}_cidr_{n}_end"
            last = addrs[0]
            for i in range(words):
                if i > 0 and masks[i] == 0:
                    break  # the rest of the address is not compared
                off, name = self._f(addr_field)
                b.load(asm.LDX32, R1, R9, off + 4 * i, name)
                b.mov32_imm(R2, masks[i])
                b.and32(R2, R1)
                last = addrs[i]
                if i != words - 1:
                    b.jump_imm(asm.JNE32_IMM, R2, addrs[i], next_cidr)
            b.jump_imm(asm.JEQ32_IMM, R2, last, on_match)
            if self.ipv6:
                b.label(next_cidr)
        if not negate:
            b.jump(self._end_label())
            b.label(on_match)

    def _ipset_key(self, set_id: int, key_off: int, leg: str):
        b = self.b
        addr_field, port_field = self._leg(leg)
        shift = IPS_V6_SHIFT if self.ipv6 else 0
        b.mov64_imm(R1, 0)
        b.store_stack(asm.STX8, R1, key_off + IPS_KEY_PAD + shift)
        b.mov64_imm(R1, IPSET_FULL_MASK_V6 if self.ipv6 else maps.IPSET_FULL_MASK)
        b.store_stack(asm.STX32, R1, key_off + IPS_KEY_PREFIX)
        if self.ipv6:
            off, name = self._f(addr_field)
            for half in (0, 8):
                b.load(asm.LDX64, R1, R9, off + half, name)
                b.store_stack(asm.STX64, R1, key_off + IPS_KEY_ADDR + half)
        else:
            b.load(asm.LDX32, R1, R9, *self._f(addr_field))
            b.store_stack(asm.STX32, R1, key_off + IPS_KEY_ADDR)
        b.load(asm.LDX16, R1, R9, *self._f(port_field))
        b.store_stack(asm.STX16, R1, key_off + IPS_KEY_PORT + shift)
        b.load(asm.LDX8, R1, R9, *self._f("ip_proto"))
        b.store_stack(asm.STX8, R1, key_off + IPS_KEY_PROTO + shift)
        be = int.from_bytes(set_id.to_bytes(8, "little"), "big")  # bits.ReverseBytes64
        b.mov32_imm(R1, be & 0xffffffff)
        b.store_stack(asm.STX32, R1, key_off + IPS_KEY_ID)
        b.mov32_imm(R1, be >> 32)
        b.store_stack(asm.STX32, R1, key_off + IPS_KEY_ID + 4)

    def _lookup(self, set_name: str, leg: str):
        set_id = self.ipset_ids.get(set_name, 0)
        if not set_id:
            raise ValueError(f"no id for IP set {set_name}")
        key_off = OFF_SRC_IPSET_KEY if leg == "source" else OFF_DST_IPSET_KEY
        self._ipset_key(set_id, key_off, leg)
        self.b.ld_map_fd(R1, self.fds.ipsets)
        self.b.mov64(R2, R10)
        self.b.add64_imm(R2, key_off)
        self.b.call(asm.HELPER_MAP_LOOKUP_ELEM)

    def _ipsets(self, negate, leg, sets):
        for s in sets:
            sid = self.ipset_ids.get(s, 0)
            if negate:
                self.b.comment(f"If {leg} matches ipset {s} (0x{sid:x}), skip to next rule")
            else:
                self.b.comment(f"If {leg} doesn't match ipset {s} (0x{sid:x}), skip to next rule")
            self._lookup(s, leg)
            self.b.jump_imm(asm.JNE_IMM if negate else asm.JEQ_IMM, R0, 0, self._end_label())

    def _ipsets_or(self, leg, sets):
        on_match = self._fresh()
        for s in sets:
            sid = self.ipset_ids.get(s, 0)
            tail = "skip to next rule" if len(sets) == 1 else "jump to next ipset"
            self.b.comment(f"If {leg} doesn't match ipset {s} (0x{sid:x}), {tail}")
            self._lookup(s, leg)
            self.b.jump_imm(asm.JNE_IMM, R0, 0, on_match)
        if len(sets) > 1:
            self.b.comment(f"If {leg} doesn't match any of the IP sets, skip to next rule")
        self.b.jump(self._end_label())
        self.b.label(on_match)

    def _ports(self, negate, leg, ports, named):
        b = self.b
        on_match = self._end_label() if negate else self._fresh()
        if self.debug:
            text = "{" + ",".join(str(a) if a == z else f"{a}-{z}" for a, z in ports) + "}"
            b.comment(f"If {leg} port is {'' if negate else 'not '}within any of {text}, skip to next rule")
        port_field = self._leg(leg)[1]
        b.load(asm.LDX16, R1, R9, *self._f(port_field))
        for first, last in ports:
            if first == last:
                b.jump_imm(asm.JEQ_IMM, R1, first, on_match)
            else:
                skip = None
                if first > 0:
                    skip = self._fresh()
                    b.jump_imm(asm.JLT_IMM, R1, first, skip)
                b.jump_imm(asm.JLE_IMM, R1, last, on_match)
                if skip:
                    b.label(skip)
            if self._split_if_needed():  # the next instruction is in the new sub-program: reload the port
                b = self.b
                b.load(asm.LDX16, R1, R9, *self._f(port_field))
        if self.debug:
            text = "{" + ",".join(named) + "}"
            b.comment(f"If {leg} port is {'' if negate else 'not '}within any of the named ports {text}, "
                      "skip to next rule")
        for s in named:
            self._split_if_needed()
            b = self.b
            self._lookup(s, leg)
            b.jump_imm(asm.JNE_IMM, R0, 0, on_match)
        if not negate:
            b.jump(self._end_label())
            b.label(on_match)


def generate(rules: Rules, version: str, ipset_ids: dict[str, int], fds: MapFds = MapFds(),
             debug: bool = True, flow_logs: bool = False, policy_map_index: int = 0, stride: int = TC_STRIDE,
             max_jumps: int = MAX_JUMPS, ipv6: bool = False) -> list[list[dict]]:
    """The policy program as a list of sub-programs (sub-program k belongs at policy_map_index + k*stride)."""
    return Builder(version, ipset_ids, fds, debug, flow_logs, policy_map_index, stride, max_jumps,
                   ipv6).programs(rules)


def debug_json(iface: str, tc_hook: str, programs: list[list[dict]] | None, error: str = "") -> str:
    """The policy-debug file body (bpf.PolicyDebugInfo): sub-programs concatenated, as Felix writes them;
    tc_hook is the tc hook, "ingress"/"egress"."""
    insns = [i for p in programs for i in p] if programs else None
    return asm.go_json({"ifacename": iface, "hook": f"tc {tc_hook}", "policyInfo": insns, "error": error})


def debug_json_name(iface: str, policy_direction: str, family: int = 4) -> str:
    """`<iface>_<ingress|egress>_v<4|6>.json`, named by the POLICY direction (workload egress = tc ingress)."""
    return f"{iface}_{policy_direction}_v{family}.json"


def program_name(iface: str, policy_direction: str, sub: int = 0, family: int = 4) -> str:
    """`p4I_<iface>` / `p6E_<iface>` (letter = policy direction), truncated to the kernel's 15 chars;
    sub-program k: the first 12 characters + `_k`."""
    name = f"p{family}{policy_direction[0].upper()}_{iface}"
    if sub:
        name = f"{name[:12]}_{sub}"
    return name[:15]
