#!/usr/bin/env python3
"""Calico-scale node for the dpinspect benchmark: N workloads, P policies in 3 tiers, big IP sets.

    python3 bench/scale.py --out DIR [--workloads 1000] [--policies 2000] [--services 1000]
                           [--netsets 100000,20000,5000,1000,1000,200,200,50] [--seed 1]
                           [--layout nftables|iptables-nft] [--flow-logs]

Writes DIR/scenario.json (the lab scenario format, plus "netsets"), DIR/topology.json and the rules
(render.py's files: DIR/ruleset.nft, or DIR/iptables.rules + DIR/ipsets.restore) and prints a
one-line JSON summary (counts, sizes, seconds). Deterministic for a given set of arguments.

It reuses tests/lab/render.py (FelixModel, NftRenderer, IptRenderer, kube-proxy) unchanged. Two
things are added on top, in `ScaleModel`:
  * network sets (Calico GlobalNetworkSets): a rule peer {"netset": "blocklist-0"} matches the
    set's CIDRs through one IP set, exactly as Felix renders a selector that picks a network set;
  * indexes, so rendering 5000 workloads x 2000 policies does not take quadratic time (the lab
    renderer scans every pod and policy per question, which is fine for 8 pods).

Shape (one node):
  * namespaces of 10 workloads; labels app (5 workloads each), role (5 values), zone (~20 each);
  * tier security (order 10, default pass): 3 global policies on every workload plus per-zone
    ones; ingress/egress deny from/to a network set, then pass;
  * tier platform (order 100, default pass): GlobalNetworkPolicies per role+zone: allow scraping
    from the pool on 9100, pass;
  * tier default (deny): namespaced NetworkPolicies and Kubernetes NetworkPolicies per app, with
    selector / namespace-selector / CIDR peers and port lists;
  * services with 1-5 endpoints (kube-proxy nftables mode: verdict map + numgen per service).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "lab"))
import render  # noqa: E402
import scenario as scn  # noqa: E402

ROLES = ["web", "db", "cache", "api", "worker"]
NETSET_BASE = int(ipaddress.IPv4Address("100.64.0.0"))  # 100.64.0.0/10: 262144 blocks of 16
NETSET_BLOCKS = 1 << 18
DEFAULT_NETSETS = "100000,20000,5000,1000,1000,200,200,50"


# --------------------------------------------------------------------------------------------
# Scenario


def pod_ip(i: int) -> str:
    return f"10.65.{i // 250}.{i % 250 + 2}"


def netset_members(rng: random.Random, size: int) -> list[str]:
    """size distinct, non-overlapping members of 100.64.0.0/10: 80% /32 hosts, 20% /28 blocks."""
    out = []
    for block in sorted(rng.sample(range(NETSET_BLOCKS), size)):
        base = NETSET_BASE + block * 16
        if rng.random() < 0.2:
            out.append(f"{ipaddress.IPv4Address(base)}/28")
        else:
            out.append(str(ipaddress.IPv4Address(base + rng.randrange(16))))
    return out


def build_scenario(n: int, p: int, services: int, netset_sizes: list[int], seed: int, flow_logs: bool) -> dict:
    rng = random.Random(seed)
    n_ns = max(2, (n + 9) // 10)
    zones = max(1, n // 20)
    namespaces = [{"name": f"ns{k}", "labels": {"env": "prod" if k % 3 else "dev",
                                                  "team": f"t{k % 7}"}} for k in range(n_ns)]
    pods = []
    for i in range(n):
        labels = {"app": f"app{i // 5}", "role": rng.choice(ROLES), "zone": f"z{rng.randrange(zones)}"}
        pods.append({"namespace": f"ns{i // 10}", "name": f"w{i}", "ip": pod_ip(i), "labels": labels,
                     "serve": [{"proto": "tcp", "port": rng.choice([80, 443, 8080]), "kind": "tcp"}]})
    netsets = [{"name": f"blocklist-{k}", "members": netset_members(rng, size)}
               for k, size in enumerate(netset_sizes)]
    tiers = [{"name": "security", "order": 10, "default_action": "pass"},
             {"name": "platform", "order": 100, "default_action": "pass"},
             {"name": "default", "order": 1000000, "default_action": "deny"}]
    sc = {"name": f"scale-n{n}-p{p}", "calico_version": "3.30", "flow_logs": flow_logs,
          "namespaces": namespaces, "pods": pods, "tiers": tiers, "policies": [], "services": [],
          "netsets": netsets}

    def netset_peer() -> dict:
        # Big sets are referenced by fewer policies, as blocklists are in practice.
        k = min(int(rng.expovariate(0.5)), len(netsets) - 1) if netsets else None
        return {"netset": netsets[len(netsets) - 1 - k]["name"]} if netsets else {"nets": ["100.64.0.0/10"]}

    def ports() -> list:
        ps = rng.sample([80, 443, 5432, 6379, 8080, 9000, 9090], rng.randint(1, 3))
        if rng.random() < 0.2:
            ps.append("30000:32767")
        return ps

    n_sec, n_plat = max(3, p // 10), max(1, (p * 15) // 100)
    for i in range(p):
        if i < n_sec:
            sel = {} if i < 3 else {"zone": f"z{rng.randrange(zones)}"}
            pol = {"kind": "gnp", "name": f"sec-{i}", "tier": "security", "order": i, "selector": sel,
                   "types": ["ingress", "egress"],
                   "ingress": [{"action": "deny", "src": netset_peer()},
                               {"action": "deny", "protocol": "tcp", "dst": {"ports": [23]}},
                               {"action": "pass"}],
                   "egress": [{"action": "deny", "dst": netset_peer()}, {"action": "pass"}]}
        elif i < n_sec + n_plat:
            sel = {"role": rng.choice(ROLES), "zone": f"z{rng.randrange(zones)}"}
            pol = {"kind": "gnp", "name": f"plat-{i}", "tier": "platform", "order": i % 100, "selector": sel,
                   "types": ["ingress"],
                   "ingress": [{"action": "allow", "protocol": "tcp", "src": {"nets": ["10.65.0.0/16"]},
                                "dst": {"ports": [9100]}},
                               {"action": "pass"}]}
        else:
            ns_i = rng.randrange(n_ns)
            ns = f"ns{ns_i}"
            apps = sorted({pp["labels"]["app"] for pp in pods[ns_i * 10: ns_i * 10 + 10]})
            kind = "knp" if rng.random() < 0.2 else "np"
            sel = {} if rng.random() < 0.1 else {"app": rng.choice(apps)}
            ingress, egress = [], []
            for _ in range(rng.randint(1, 3)):
                r = {"action": "allow", "protocol": "tcp", "dst": {"ports": ports()}}
                c = rng.random()
                if c < 0.5:
                    r["src"] = {"selector": {"app": rng.choice(apps)}}
                elif c < 0.8:
                    r["src"] = {"namespace_selector": {"team": f"t{rng.randrange(7)}"}}
                else:
                    r["src"] = {"nets": [f"10.65.{rng.randrange(20)}.0/24", "192.168.0.0/16"]}
                ingress.append(r)
            types = ["ingress"]
            if rng.random() < 0.5:
                types.append("egress")
                egress = [{"action": "allow", "protocol": "udp", "dst": {"nets": ["10.96.0.10/32"], "ports": [53]}},
                          {"action": "allow", "protocol": "tcp",
                           "dst": {"selector": {"app": rng.choice(apps)}, "ports": ports()}}]
                if kind != "knp" and rng.random() < 0.3:
                    egress.append({"action": "deny", "dst": netset_peer()})
            pol = {"kind": kind, "namespace": ns, "name": f"pol-{i}", "tier": "default", "selector": sel,
                   "types": types, "ingress": ingress, "egress": egress}
            if kind != "knp":
                pol["order"] = rng.choice([10, 100, 500, 1000])
        sc["policies"].append(pol)

    for s in range(services):
        app = rng.randrange((n + 4) // 5)
        first = app * 5
        port = pods[first]["serve"][0]["port"]
        sc["services"].append({"namespace": pods[first]["namespace"], "name": f"svc{s}",
                               "cluster_ip": f"10.96.{(s + 20) // 250}.{(s + 20) % 250 + 2}",
                               "ports": [{"proto": "tcp", "port": 80 + s % 3, "target_port": port}],
                               "selector": {"app": f"app{app}"}})
    return sc


# --------------------------------------------------------------------------------------------
# Indexed model


class ScaleModel(render.FelixModel):
    """FelixModel with network sets and indexes; renders the same rules as the lab's model."""

    def __init__(self, sc: dict, nft: bool):
        self.netsets = {s["name"]: s["members"] for s in sc.get("netsets", [])}
        self.ns_labels = {n["name"]: n["labels"] for n in sc["namespaces"]}
        self.pods_by_ns: dict[str, list[dict]] = {}
        for pod in sc["pods"]:
            self.pods_by_ns.setdefault(pod["namespace"], []).append(pod)
        # Per pod: the policies that apply to it, per tier in Calico's order.
        self.tier_rank = {}
        for tier in sc["tiers"]:
            for k, pol in enumerate(scn.policies_in_tier(sc, tier["name"])):
                self.tier_rank[id(pol)] = k
        self.applies: dict[str, dict[str, list[dict]]] = {}
        for pol in sc["policies"]:
            cands = sc["pods"] if pol["kind"] == "gnp" else self.pods_by_ns.get(pol["namespace"], [])
            for pod in cands:
                if scn.labels_match(pol["selector"], pod["labels"]):
                    self.applies.setdefault(pod["iface"], {}).setdefault(pol["tier"], []).append(pol)
        for tiers in self.applies.values():
            for pols in tiers.values():
                pols.sort(key=lambda q: self.tier_rank[id(q)])
        self.members_cache: dict[str, list[str]] = {}
        super().__init__(sc, nft)

    def policy_groups(self, pod: dict, tier: str, direction: str) -> list[str]:
        pols = [q for q in self.applies.get(pod["iface"], {}).get(tier, []) if direction in q["types"]]
        targets = []
        for run in self.selector_runs(pols):
            for pol in run:
                self.ensure_policy_chain(pol, direction)
            targets.append(self.policy_chain_name(run[0], direction) if len(run) == 1
                           else self.ensure_group_chain(run, tier, direction))
        return targets

    def selector_sets(self, pol, peer, negated):
        out = []
        if pol is not None:
            sel = scn.peer_selector(pol, peer, negated)
            if sel is not None:
                expr = scn.selector_expression(sel)
                if expr not in self.members_cache:
                    self.members_cache[expr] = self.members(sel)
                out.append(self.add_ipset(scn.selector_ipset_id(expr), "net", self.members_cache[expr]))
        if not negated and peer.get("netset"):
            expr = f'projectcalico.org/netset == "{peer["netset"]}"'
            out.append(self.add_ipset(scn.selector_ipset_id(expr), "net", self.netsets[peer["netset"]]))
        return out

    def members(self, sel: dict) -> list[str]:
        if sel["namespace"] is not None:
            nss = [sel["namespace"]]
        else:
            nss = [ns for ns, labels in self.ns_labels.items()
                   if sel["namespace_selector"] is None or scn.labels_match(sel["namespace_selector"], labels)]
        out = [pod["ip"] for ns in nss for pod in self.pods_by_ns.get(ns, [])
               if scn.labels_match(sel["labels"], pod["labels"])]
        return sorted(out, key=ipaddress.IPv4Address)


def install_service_index(sc: dict) -> None:
    """render.py asks scn.pods_for_service per service and port; answer from an index."""
    by_key: dict[tuple, list[dict]] = {}
    for pod in sc["pods"]:
        for k, v in pod["labels"].items():
            by_key.setdefault((pod["namespace"], k, v), []).append(pod)

    def pods_for_service(_sc: dict, svc: dict) -> list[dict]:
        if not svc["selector"]:
            return []
        k, v = next(iter(sorted(svc["selector"].items())))
        return [p for p in by_key.get((svc["namespace"], k, v), [])
                if scn.labels_match(svc["selector"], p["labels"])]

    scn.pods_for_service = pods_for_service  # render.py and topology() look it up at call time


def render_all(sc: dict, layout: str, out: Path) -> list[Path]:
    install_service_index(sc)
    out.mkdir(parents=True, exist_ok=True)
    topo = render.topology(sc)
    topo["netsets"] = {s["name"]: s["members"][:64] for s in sc.get("netsets", [])}  # samples for flows
    (out / "topology.json").write_text(json.dumps(topo) + "\n")
    model = ScaleModel(sc, nft=(layout == "nftables"))
    if layout == "nftables":
        path = out / "ruleset.nft"
        path.write_text(render.NftRenderer(model).render() + "\n" + render.kube_nft(sc))
        return [out / "topology.json", path]
    ipt = render.IptRenderer(model)
    (out / "ipsets.restore").write_text(ipt.ipsets())
    (out / "iptables.rules").write_text(ipt.render(render.kube_iptables(sc)))
    return [out / "topology.json", out / "ipsets.restore", out / "iptables.rules"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workloads", type=int, default=1000)
    ap.add_argument("--policies", type=int, default=2000)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--netsets", default=DEFAULT_NETSETS, help="comma-separated network set sizes (max 262144)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layout", choices=render.LAYOUTS, default="nftables")
    ap.add_argument("--flow-logs", action="store_true", help="render NFLOG rules too")
    args = ap.parse_args(argv)
    if not 2 <= args.workloads <= 60000:
        ap.error("--workloads must be between 2 and 60000")
    sizes = [int(s) for s in args.netsets.split(",") if s.strip()]
    if any(not 0 < s <= NETSET_BLOCKS for s in sizes):
        ap.error(f"--netsets sizes must be 1..{NETSET_BLOCKS}")
    t0 = time.monotonic()
    raw = build_scenario(args.workloads, args.policies, args.services, sizes, args.seed, args.flow_logs)
    sc = scn.normalise(raw)
    sc["netsets"] = raw["netsets"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scenario.json").write_text(json.dumps({k: v for k, v in raw.items()}) + "\n")
    files = render_all(sc, args.layout, args.out)
    summary = {"workloads": args.workloads, "policies": args.policies, "services": args.services,
               "netsets": sizes, "layout": args.layout, "seconds": round(time.monotonic() - t0, 2),
               "files": {f.name: f.stat().st_size for f in files}}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
