"""Populate a lab node's private bpffs the way Felix would for a scenario (Calico eBPF dataplane).

Run INSIDE the node's network namespace and the lab's private mount namespace (the caller's job):

    python3 tests/lab/ebpf/node.py populate --scenario S.json --version 3.32 \
        --globals <bpffs>/tc/globals --policy-dir <labdir>/policy --ifaces-json '{"caliXXXX": 5, "eth0": 2}'

Creates and pins every map of the version (maps.py), writes routes, ifstate, IP-set members, NAT
frontends/backends and zeroed counters, generates a policy program per workload interface and direction
(polprog.py), loads it (SCHED_CLS, expected_attach_type 0: the lab attaches with tc clsact on every
version), stores it in the hook's policy jump map at the ifstate index, writes Felix's debug JSON into
--policy-dir and the manifest (CONTRACT.md) to <policy-dir>/../manifest.json, and prints the manifest.

Dual-stack pods (a pod with an `ip6` address; the node's own `node.ip6` and the scenario's `ip6_pool`
optional) also get what Felix writes for IPv6: cali_v6_routes entries, IPv6Ready and the v6 policy indices
in ifstate (v3.32: after the v4 ones of the same hook's allocator; v3.30: from the shared allocator),
members in cali_v6_ip_sets (the selected pods' v6 addresses) and a `p6<I|E>_<iface>` program per direction
from polprog's IPv6 builder with its `<iface>_<dir>_v6.json`. IPv6 services are not modelled.

A host endpoint on the uplink (`host_endpoints`): ifstate policy indices after the workloads', a
`p4<I|E>_<uplink>` host program per direction (RuleBuilder.host_rules; tc ingress = ingress policy),
`<uplink>_<dir>_v4.json`, and the failsafe ports in cali_v4_fsafes2. Untracked policies are refused.
"""

from __future__ import annotations

import argparse
import hashlib
import base64
import ipaddress
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import asm  # noqa: E402
import bpfsys  # noqa: E402
import maps  # noqa: E402
import polprog  # noqa: E402
import ruleids  # noqa: E402
import scenario as scn  # noqa: E402

FDS = polprog.MapFds()
HOOK_OF_POLICY = {"egress": "ingress", "ingress": "egress"}  # workload policy direction -> tc hook


class NodeError(RuntimeError):
    pass


def _minor(version: str) -> int:
    return int(version.split(".")[1])


def ipset_numeric_id(set_id: str) -> int:
    """The lab's stand-in for Felix's idalloc: LE64(sha256(set id)[0:8]), never 0."""
    return int.from_bytes(hashlib.sha256(set_id.encode()).digest()[:8], "little") or 1


def felix_rule_id(owner: str, idx: int, rule: dict) -> str:
    """A stable 16-char stand-in for the calc graph's per-rule hash (printed in "End of rule")."""
    text = json.dumps([owner, idx, rule], sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha224(text.encode()).digest()).decode()[:16]


# --------------------------------------------------------------------------------------------
# Scenario -> polprog.Rules


def original_selectors(r: dict) -> dict:
    """The rule's selectors as the user wrote them (proto.Rule original_*_selector), as selector strings."""
    out = {}

    def expr(labels):
        return scn.selector_expression({"namespace": None, "namespace_selector": None, "labels": labels})

    for side in ("src", "dst"):
        peer = r[side]
        if peer.get("selector") is not None:
            out[f"original_{side}_selector"] = expr(peer["selector"])
        if peer.get("namespace_selector") is not None:
            out[f"original_{side}_namespace_selector"] = expr(peer["namespace_selector"])
        if peer.get("not_selector") is not None:
            out[f"original_not_{side}_selector"] = expr(peer["not_selector"])
    return out


class RuleBuilder:
    def __init__(self, sc: dict, version: str):
        self.sc = sc
        self.version = version
        self.ipsets: dict[str, dict] = {}  # set id string -> {"id": int, "members": [cidr], "members6": [cidr]}
        self.rule_table: dict[str, dict] = {}

    def _set(self, pol: dict, peer: dict, negated: bool) -> list[str]:
        sel = scn.peer_selector(pol, peer, negated)
        if sel is None:
            return []
        set_id = scn.selector_ipset_id(scn.selector_expression(sel))
        members = scn.selector_members(self.sc, sel)
        v6 = {p["ip"]: p["ip6"] for p in self.sc["pods"] if p.get("ip6")}
        self.ipsets.setdefault(set_id, {"id": ipset_numeric_id(set_id),
                                        "members": [f"{ip}/32" for ip in members],
                                        "members6": [f"{v6[ip]}/128" for ip in members if ip in v6]})
        return [set_id]

    def _ports(self, ports) -> list[tuple[int, int]]:
        return [(int(a), int(b)) for a, b in ports]

    def rule(self, r: dict, pol: dict | None, owner_key: str, idx: int, match_id: int) -> polprog.Rule:
        src, dst = r["src"], r["dst"]
        if src.get("named_ports") or dst.get("named_ports"):
            # Felix's named-port IP sets are not generated for the eBPF node: refuse rather than
            # load a policy that silently matches any port.
            raise ValueError(f"{owner_key} rule {idx}: named ports are not supported on the eBPF node")
        proto = scn.proto_name(r.get("protocol"))
        icmp = r.get("icmp") or {}
        not_proto = scn.proto_name(r.get("not_protocol")) if r.get("not_protocol") is not None else None
        return polprog.Rule(
            action=r["action"],
            protocol=int(proto) if proto and proto.isdigit() else proto,
            not_protocol=int(not_proto) if not_proto and not_proto.isdigit() else not_proto,
            src_net=list(src["nets"]), not_src_net=list(src["not_nets"]),
            dst_net=list(dst["nets"]), not_dst_net=list(dst["not_nets"]),
            src_ip_sets=self._set(pol, src, False) if pol else [],
            not_src_ip_sets=self._set(pol, src, True) if pol else [],
            dst_ip_sets=self._set(pol, dst, False) if pol else [],
            not_dst_ip_sets=self._set(pol, dst, True) if pol else [],
            src_ports=self._ports(src["ports"]), not_src_ports=self._ports(src["not_ports"]),
            dst_ports=self._ports(dst["ports"]), not_dst_ports=self._ports(dst["not_ports"]),
            icmp_type=icmp.get("type"), icmp_code=icmp.get("code") if icmp.get("type") is not None else None,
            match_id=match_id, rule_id=felix_rule_id(owner_key, idx, r), original=original_selectors(r))

    def policy_id_string(self, pol: dict) -> str:
        return scn.policy_kind_id(pol) if _minor(self.version) >= 32 else scn.policy_v1_name(pol)

    def _record(self, match_id: int, entry: dict) -> None:
        if match_id:
            self.rule_table.setdefault(str(match_id), entry)

    def endpoint_rules(self, pod: dict, direction: str) -> polprog.Rules:
        tiers = []
        for tier in self.sc["tiers"]:
            pols = [p for p in scn.policies_in_tier(self.sc, tier["name"])
                    if direction in p["types"] and scn.policy_applies_to(self.sc, p, pod)]
            if not pols:
                continue  # Felix only lists tiers with a policy for this endpoint and direction
            tiers.append(self._tier(tier, pols, direction))
        profiles = []
        for name, allow in ((f"kns.{pod['namespace']}", True), (f"ksa.{pod['namespace']}.default", False)):
            prules = []
            if allow:
                r = scn.normalise_rule(name, {"action": "allow"})
                mid = ruleids.rule_match_id("allow", "R", direction, 0, name)
                prules.append(self.rule(r, None, name, 0, mid))
                self._record(mid, {"kind": "profile", "name": name, "rule_index": 0, "action": "allow",
                                   "direction": direction})
            profiles.append(polprog.Policy(name, prules))
        self.rule_table.setdefault("0", {"no_profile": True, "action": "deny"})
        return polprog.Rules(tiers=tiers, profiles=profiles, no_profile_match_id=0,
                             suppress_normal_host_policy=True)


    def host_rules(self, hep: dict, direction: str) -> polprog.Rules:
        """A host endpoint's program (Felix's tierInfoToProtoTierInfo + applyPolicyToHost): pre-DNAT
        tiers (ingress only), apply-on-forward tiers, and the normal tiers, which hold every policy
        that is neither pre-DNAT nor untracked (apply-on-forward ones included). Untracked
        (do_not_track) policies belong to the XDP program, which the lab does not build: refused."""
        classes = {"pre_dnat": [], "forward": [], "normal": []}
        for tier in self.sc["tiers"]:
            pols = [p for p in scn.policies_in_tier(self.sc, tier["name"])
                    if direction in p["types"] and scn.policy_applies_to_hep(p, hep)]
            for p in pols:
                if scn.hep_policy_class(p) == "untracked":
                    raise ValueError(f"policy {p['name']}: untracked (do_not_track) host policy runs in "
                                     "XDP, which the lab's eBPF node does not build")
            for cls, keep in (("pre_dnat", lambda p: scn.hep_policy_class(p) == "pre_dnat"),
                              ("forward", lambda p: scn.hep_policy_class(p) == "forward"),
                              ("normal", lambda p: scn.hep_policy_class(p) in ("forward", "normal"))):
                chosen = [p for p in pols if keep(p)]
                if chosen and not (cls == "pre_dnat" and direction != "ingress"):
                    # Felix's addHostPolicy: a pre-DNAT tier that decides nothing goes on (its end
                    # passes); forward and normal tiers end in a drop.
                    classes[cls].append(self._tier(tier, chosen, direction, end_drop=cls != "pre_dnat"))
        self.rule_table.setdefault("0", {"no_profile": True, "action": "deny"})
        return polprog.Rules(tiers=[], profiles=[], no_profile_match_id=0,
                             suppress_normal_host_policy=False, for_host_interface=True,
                             host_pre_dnat_tiers=classes["pre_dnat"], host_forward_tiers=classes["forward"],
                             host_normal_tiers=classes["normal"], host_profiles=[])

    def _tier(self, tier: dict, pols: list[dict], direction: str, end_drop: bool = True) -> polprog.Tier:
        """One tier of an endpoint's program: its policies' rules (recorded in the rule table) and
        its end, a drop unless the tier passes or end_drop is False (a pre-DNAT tier)."""
        out = []
        for pol in pols:
            id_str = self.policy_id_string(pol)
            prules = []
            for idx, r in enumerate(pol[direction]):
                mid = ruleids.rule_match_id(r["action"], "P", direction, idx, id_str)
                prules.append(self.rule(r, pol, id_str, idx, mid))
                self._record(mid, {"tier": tier["name"], "kind": pol["kind"],
                                   "namespace": pol.get("namespace", ""), "name": pol["name"],
                                   "policy_id": id_str, "rule_index": idx, "action": r["action"],
                                   "direction": direction})
            if _minor(self.version) >= 32:
                name = f"knp.default.{pol['name']}" if pol["kind"] == "knp" else pol["name"]
                out.append(polprog.Policy(name, prules, kind=scn.KIND_LONG[pol["kind"]],
                                          namespace=pol.get("namespace", "") if pol["kind"] != "gnp" else ""))
            else:
                out.append(polprog.Policy(id_str, prules))
        end = "pass" if tier["default_action"] == "pass" or not end_drop else "deny"
        end_id = ruleids.end_of_tier_id(direction, tier["name"], end)
        self._record(end_id, {"tier": tier["name"], "end_of_tier": True, "action": end,
                              "direction": direction})
        return polprog.Tier(tier["name"], out, end_action=end, end_rule_id=end_id)


# --------------------------------------------------------------------------------------------
# Writing the maps


def _u32(v: int) -> bytes:
    return struct.pack("<I", v)


def populate(sc: dict, version: str, globals_dir: str, policy_dir: str, ifaces: dict[str, int]) -> dict:
    if _minor(version) < 30:
        raise NodeError(f"the lab's eBPF node supports Calico 3.30+ policy programs, not {version}")
    missing = [p["iface"] for p in sc["pods"] if p["iface"] not in ifaces]
    if missing:
        raise NodeError(f"no ifindex for pod interface(s) {', '.join(missing)} in --ifaces-json")
    pinned = maps.create_maps(version, globals_dir)
    os.makedirs(policy_dir, exist_ok=True)
    sp = {s.role: s for s in maps.map_specs(version)}

    def fd(role):
        return maps.open_map(globals_dir, sp[role])

    node = sc["node"]
    pool = ipaddress.IPv4Network(sc["ip_pool"])
    with fd("routes") as rt:
        pod_flags = maps.RT_LOCAL | maps.RT_WORKLOAD
        for pod in sc["pods"]:
            flags = pod_flags | (maps.RT_IN_POOL | maps.RT_NAT_OUT
                                 if ipaddress.IPv4Address(pod["ip"]) in pool else 0)
            bpfsys.map_update(rt, maps.route_key(f"{pod['ip']}/32"),
                              maps.route_value(flags, ifindex=ifaces[pod["iface"]]))
        bpfsys.map_update(rt, maps.route_key(f"{node['ip']}/32"), maps.route_value(maps.RT_LOCAL | maps.RT_HOST))
        bpfsys.map_update(rt, maps.route_key(f"{node['remote_ip']}/32"),
                          maps.route_value(maps.RT_HOST, next_hop=node["remote_ip"]))
        bpfsys.map_update(rt, maps.route_key(str(pool)), maps.route_value(maps.RT_IN_POOL | maps.RT_NAT_OUT))
    pool6 = ipaddress.IPv6Network(sc["ip6_pool"]) if sc.get("ip6_pool") else None
    with fd("routes6") as rt:
        for pod in sc["pods"]:
            if not pod.get("ip6"):
                continue
            in_pool = pool6 is not None and ipaddress.IPv6Address(pod["ip6"]) in pool6
            flags = maps.RT_LOCAL | maps.RT_WORKLOAD | (maps.RT_IN_POOL | maps.RT_NAT_OUT if in_pool else 0)
            bpfsys.map_update(rt, maps.route_key(f"{pod['ip6']}/128"),
                              maps.route_value(flags, ifindex=ifaces[pod["iface"]], v6=True))
        if node.get("ip6"):
            bpfsys.map_update(rt, maps.route_key(f"{node['ip6']}/128"),
                              maps.route_value(maps.RT_LOCAL | maps.RT_HOST, v6=True))
        if pool6 is not None:
            bpfsys.map_update(rt, maps.route_key(str(pool6)),
                              maps.route_value(maps.RT_IN_POOL | maps.RT_NAT_OUT, v6=True))

    # Policy indices: v3.32 one allocator per hook, v3.28-3.31 one shared allocator (cali_jump3).
    pods = sorted(sc["pods"], key=lambda p: p["iface"])
    index = {}
    shared = 0
    for n, pod in enumerate(pods):
        if _minor(version) >= 32:
            index[pod["iface"]] = {"ingress": n, "egress": n}
        else:
            index[pod["iface"]] = {"ingress": shared, "egress": shared + 1}
            shared += 2
    index6 = {}
    for n, pod in enumerate(p for p in pods if p.get("ip6")):
        if _minor(version) >= 32:
            index6[pod["iface"]] = {"ingress": len(pods) + n, "egress": len(pods) + n}
        else:
            index6[pod["iface"]] = {"ingress": shared, "egress": shared + 1}
            shared += 2

    # The uplink as a host endpoint: its policy indices after the workloads' (v3.32: per hook).
    hep = scn.hep_for_interface(sc, node["uplink"]) if node["uplink"] in ifaces else None
    hep_index = None
    if hep is not None:
        if _minor(version) >= 32:
            n = len(pods) + len(index6)
            hep_index = {"ingress": n, "egress": n}
        else:
            hep_index = {"ingress": shared, "egress": shared + 1}
            shared += 2

    with fd("ifstate") as ifs:
        for pod in pods:
            v6 = {}
            if pod["iface"] in index6:
                v6 = {"ingress_policy_v6": index6[pod["iface"]]["ingress"],
                      "egress_policy_v6": index6[pod["iface"]]["egress"]}
            bpfsys.map_update(ifs, maps.ifstate_key(ifaces[pod["iface"]]), maps.ifstate_value(
                maps.IFS_WEP | maps.IFS_V4READY | (maps.IFS_V6READY if v6 else 0), pod["iface"],
                ingress_policy_v4=index[pod["iface"]]["ingress"], egress_policy_v4=index[pod["iface"]]["egress"],
                **v6))
        uplink = node["uplink"]
        if uplink in ifaces:
            idx = {}
            if hep_index is not None:
                idx = {"ingress_policy_v4": hep_index["ingress"], "egress_policy_v4": hep_index["egress"]}
            bpfsys.map_update(ifs, maps.ifstate_key(ifaces[uplink]),
                              maps.ifstate_value(maps.IFS_HEP | maps.IFS_V4READY, uplink, **idx))
    if hep is not None:
        write_failsafes(sc, globals_dir, sp)

    with fd("counters") as ctr:
        for name, ifindex in sorted(ifaces.items()):
            for hook in (maps.HOOK_INGRESS, maps.HOOK_EGRESS):
                bpfsys.map_update(ctr, maps.counters_key(ifindex, hook), maps.counters_value(version))

    services = write_nat(sc, globals_dir, sp)

    rb = RuleBuilder(sc, version)
    programs = {pod["iface"]: {d: rb.endpoint_rules(pod, d) for d in ("egress", "ingress")} for pod in pods}
    hep_rules = {d: rb.host_rules(hep, d) for d in ("ingress", "egress")} if hep is not None else {}
    with fd("ipsets") as ips:
        for set_id, s in sorted(rb.ipsets.items()):
            for cidr in s["members"]:
                bpfsys.map_update(ips, maps.ipset_key(s["id"], cidr), maps.IPSET_VALUE)
    with fd("ipsets6") as ips:
        for set_id, s in sorted(rb.ipsets.items()):
            for cidr in s["members6"]:
                bpfsys.map_update(ips, maps.ipset_key(s["id"], cidr), maps.IPSET_VALUE)

    interfaces = {}
    ipset_ids = {k: v["id"] for k, v in rb.ipsets.items()}

    def load_policy(rules: polprog.Rules, iface: str, direction: str, hook: str, family: int, idx: int,
                    state, ips, what: str) -> dict:
        """Felix's program for one endpoint hook: generated, loaded into the jump map at idx (its
        sub-programs at the stride), its debug JSON written (with the error, if any). The hook's
        manifest entry; NodeError when it cannot load."""
        static_spec, jump_spec = maps.hook_maps(version, hook)
        json_path = os.path.join(policy_dir, polprog.debug_json_name(iface, direction, family))
        error, subs, prog_ids = "", None, []
        try:
            subs = polprog.generate(rules, version, ipset_ids, FDS, policy_map_index=idx, ipv6=family == 6)
            with maps.open_map(globals_dir, static_spec) as static, \
                    maps.open_map(globals_dir, jump_spec) as jump:
                fd_map = {FDS.state: int(state), FDS.ipsets: int(ips),
                          FDS.static_progs: int(static), FDS.jump: int(jump)}
                # Sub-programs first, the entry point last, so it never tail-calls an empty slot.
                for k in reversed(range(len(subs))):
                    name = polprog.program_name(iface, direction, k, family)
                    with bpfsys.prog_load(asm.relocate(subs[k], fd_map), name) as prog:
                        bpfsys.map_update(jump, _u32(idx + k * polprog.TC_STRIDE), _u32(int(prog)))
                        prog_ids.insert(0, bpfsys.prog_info(prog).id)
        except (bpfsys.BpfError, asm.AsmError, ValueError) as e:
            error = str(e)
        _write_private(json_path, polprog.debug_json(iface, hook, subs, error))
        if error:
            raise NodeError(f"{iface} {direction} {what}: {error.splitlines()[0]}")
        return {"policy": direction, "index": idx, "jump_map": jump_spec.name, "static_map": static_spec.name,
                "prog_id": prog_ids[0], "prog_ids": prog_ids, "sub_program_stride": polprog.TC_STRIDE,
                "json": json_path}

    with fd("state") as state, fd("ipsets") as ips4, fd("ipsets6") as ips6:
        for pod in pods:
            entry = {"ifindex": ifaces[pod["iface"]], "pod": f"{pod['namespace']}/{pod['name']}"}
            for family, idx_of in ((4, index), (6, index6)):
                if pod["iface"] not in idx_of:
                    continue
                ips = ips4 if family == 4 else ips6
                sfx = "" if family == 4 else "_v6"
                for direction in ("egress", "ingress"):
                    hook = HOOK_OF_POLICY[direction]
                    entry[f"tc_{hook}{sfx}"] = load_policy(
                        programs[pod["iface"]][direction], pod["iface"], direction, hook, family,
                        idx_of[pod["iface"]][hook], state, ips, f"v{family} policy")
            interfaces[pod["iface"]] = entry
    if node["uplink"] in ifaces:
        interfaces[node["uplink"]] = {"ifindex": ifaces[node["uplink"]], "uplink": True}
    if hep is not None:
        uplink = node["uplink"]
        entry = interfaces[uplink]
        entry["host_endpoint"] = hep["name"]
        with fd("state") as state, fd("ipsets") as ips:
            for direction in ("ingress", "egress"):
                hook = direction  # a host endpoint's tc ingress runs its ingress policy
                entry[f"tc_{hook}"] = load_policy(hep_rules[direction], uplink, direction, hook, 4,
                                                  hep_index[hook], state, ips, "host endpoint policy")

    manifest = {
        "version": version, "globals": globals_dir, "policy_dir": policy_dir,
        "maps": pinned, "map_fds": {"state": FDS.state, "ipsets": FDS.ipsets, "static_progs": FDS.static_progs,
                                    "jump": FDS.jump},
        "interfaces": interfaces,
        "ipsets": {k: {"id": f"0x{v['id']:x}", "members": v["members"], "members6": v["members6"]}
                   for k, v in sorted(rb.ipsets.items())},
        "services": services,
        "rule_ids": rb.rule_table,
    }
    with open(os.path.join(os.path.dirname(os.path.abspath(policy_dir)), "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    return manifest


def _write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def failsafe_key(proto: int, port: int, outbound: bool, net: str) -> bytes:
    """cali_v4_fsafes2's LPM key: prefixlen (LE32, the 32 bits of port, protocol and flags plus the
    net's), port (LE16), protocol, flags (1 = outbound), the address."""
    n = ipaddress.IPv4Network(net)
    return struct.pack("<IHBB", 32 + n.prefixlen, port, proto, 1 if outbound else 0) + n.network_address.packed


def write_failsafes(sc: dict, globals_dir: str, sp: dict) -> None:
    """Felix's failsafe ports (FailsafeInboundHostPorts/FailsafeOutboundHostPorts) in cali_v4_fsafes2."""
    with maps.open_map(globals_dir, sp["failsafes"]) as fs:
        for key, outbound in (("failsafe_inbound", False), ("failsafe_outbound", True)):
            for e in sc.get(key, []):
                bpfsys.map_update(fs, failsafe_key(scn.proto_number(e["protocol"]), e["port"], outbound,
                                                   e.get("net") or "0.0.0.0/0"), _u32(0))


def write_nat(sc: dict, globals_dir: str, sp: dict) -> list[dict]:
    """One frontend per (service, port) with ids 1, 2, ... in scenario order; backends = selected pods."""
    out = []
    svc_id = 0
    with maps.open_map(globals_dir, sp["nat_fe"]) as fe, maps.open_map(globals_dir, sp["nat_be"]) as be:
        for svc in sc["services"]:
            backends = [p["ip"] for p in scn.pods_for_service(sc, svc)]
            for port in svc["ports"]:
                svc_id += 1
                proto = scn.proto_number(port["proto"])
                bpfsys.map_update(fe, maps.nat_fe_key(svc["cluster_ip"], port["port"], proto),
                                  maps.nat_fe_value(svc_id, len(backends), len(backends)))
                for ordinal, ip in enumerate(backends):
                    bpfsys.map_update(be, maps.nat_be_key(svc_id, ordinal), maps.nat_be_value(ip, port["target_port"]))
                out.append({"service": f"{svc['namespace']}/{svc['name']}", "id": svc_id,
                            "frontend": f"{svc['cluster_ip']}:{port['port']}/{port['proto']}",
                            "backends": [f"{ip}:{port['target_port']}" for ip in backends]})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("populate")
    p.add_argument("--scenario", required=True)
    p.add_argument("--version", help="Calico version, 3.30+ (default: the scenario's calico_version)")
    p.add_argument("--globals", required=True, help="<private bpffs>/tc/globals")
    p.add_argument("--policy-dir", required=True, help="stands in for /var/run/calico/bpf/policy")
    p.add_argument("--ifaces-json", required=True, help='{"caliXXXX": ifindex, ..., "<uplink>": ifindex}')
    args = ap.parse_args(argv)
    try:
        sc = scn.load(args.scenario)
        ifaces = json.loads(args.ifaces_json)
        if not isinstance(ifaces, dict) or not all(isinstance(v, int) for v in ifaces.values()):
            raise NodeError("--ifaces-json: want an object of interface name -> ifindex")
        version = args.version or sc["calico_version"]
        manifest = populate(sc, version, args.globals, args.policy_dir, ifaces)
    except (NodeError, scn.ScenarioError, ValueError, OSError) as e:
        print(f"node.py populate: {e}".splitlines()[0], file=sys.stderr)
        return 1
    json.dump(manifest, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
