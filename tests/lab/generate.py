#!/usr/bin/env python3
"""Deterministic random lab scenarios and flows.

    python3 tests/lab/generate.py --seed N [--pods 8] [--policies 6] > scenario.json
    python3 tests/lab/generate.py --flows --scenario S.json --count 200 --seed N > flows.jsonl

Everything comes from one `random.Random(seed)`, so the same arguments always give the same output.
Scenarios mix every policy kind (np/gnp/knp), actions allow/deny/pass/log, tiers with deny and pass
defaults, ports and port ranges, CIDRs inside and outside the pod range, selectors, namespace
selectors, negations and ICMP. Flows mix served and unserved ports so both verdicts occur.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scenario as scn  # noqa: E402

NAMESPACES = ["alpha", "beta", "gamma", "delta", "stars", "client"]
ROLES = ["web", "db", "cache", "api", "worker"]
TCP_PORTS = [80, 443, 5432, 6379, 8080, 9000]
UDP_PORTS = [53, 5000, 9999]
HTTP_PORTS = {80, 8080}
OUTSIDE_NETS = ["192.168.0.0/16", "203.0.113.0/24", "172.18.0.0/24", "0.0.0.0/0"]
NODE = {"name": "node1", "ip": "172.18.0.2", "prefix": 24, "uplink": "eth0", "remote_ip": "172.18.0.1"}
POD_NET = "10.65.0"
# Container port names (Kubernetes named ports): one name may stand for different numbers on
# different pods ("web" is 80 on some, 8080 on others), as in real deployments.
PORT_NAMES = {80: "web", 8080: "web", 443: "tls", 5432: "db", 6379: "db", 9000: "metrics",
              53: "dns", 5000: "app", 9999: "app"}


# --------------------------------------------------------------------------------------------
# Scenarios


class ScenarioGen:
    def __init__(self, seed: int, n_pods: int, n_policies: int, single_endpoint: bool = False,
                 named_ports: bool = True, host_endpoints: bool = False):
        self.rng = random.Random(seed)
        # Host endpoints too draw from their own generator: the rest of the scenario stays the same.
        self.hep_rng = random.Random(f"hostendpoints-{seed}") if host_endpoints else None
        self.single_endpoint = single_endpoint
        # Named ports draw from their own generator, so without them the scenario is the same.
        self.named_rng = random.Random(f"named-ports-{seed}") if named_ports else None
        self.seed = seed
        self.n_pods = n_pods
        self.n_policies = n_policies

    def build(self) -> dict:
        rng = self.rng
        namespaces = self.namespaces()
        pods = self.pods([n["name"] for n in namespaces])
        tiers = self.tiers()
        sc = {
            "name": f"gen-{self.seed}",
            "node": dict(NODE),
            "calico_version": "3.30",
            "flow_logs": rng.random() < 0.5,
            "namespaces": namespaces,
            "pods": pods,
            "tiers": tiers,
            "policies": [],
            "services": self.services(pods),
        }
        self.sc = sc
        if self.named_rng:
            for pod in pods:
                for entry in pod["serve"]:
                    entry["name"] = PORT_NAMES[entry["port"]]
        for i in range(self.n_policies):
            sc["policies"].append(self.policy(i))
        if self.hep_rng:
            HostEndpointGen(self.hep_rng, sc).add()
        scn.normalise(sc)  # validate; raises on anything render.py would reject
        return sc

    def namespaces(self) -> list[dict]:
        names = self.rng.sample(NAMESPACES, self.rng.randint(2, 4))
        return [{"name": n, "labels": {"env": self.rng.choice(["prod", "dev"])}} for n in names]

    def pods(self, namespaces: list[str]) -> list[dict]:
        rng, pods = self.rng, []
        for i in range(self.n_pods):
            role = rng.choice(ROLES)
            labels = {"role": role}
            if rng.random() < 0.5:
                labels["team"] = rng.choice(["a", "b"])
            pods.append({"namespace": namespaces[i % len(namespaces)], "name": f"{role}-{i}",
                         "ip": f"{POD_NET}.{i + 2}", "labels": labels, "serve": self.serve()})
        return pods

    def serve(self) -> list[dict]:
        rng = self.rng
        tcp = rng.sample(TCP_PORTS, rng.randint(1, 2))
        out = [{"proto": "tcp", "port": p, "kind": "http404" if p in HTTP_PORTS else "tcp"} for p in tcp]
        if rng.random() < 0.5:
            out.append({"proto": "udp", "port": rng.choice(UDP_PORTS), "kind": "udp"})
        return out

    def tiers(self) -> list[dict]:
        rng = self.rng
        tiers = [{"name": "default", "order": 1000000, "default_action": "deny"}]
        for name, order in rng.sample([("security", 10), ("platform", 100), ("app", 500)], rng.randint(0, 2)):
            tiers.append({"name": name, "order": order, "default_action": rng.choice(["deny", "pass"])})
        return tiers

    def services(self, pods: list[dict]) -> list[dict]:
        """0-3 ClusterIP services, each selecting its pods through an extra `app=<svc>` label.

        By default a service has 2-4 endpoints where its namespace has the pods (shape
        `multi-endpoint`: kube-proxy picks one at random, the oracle probes until it has seen each);
        the extra endpoints serve the target port too. With single_endpoint every service selects
        one pod (shape `single-endpoint`), the scenarios of the eBPF tests, whose oracles send one
        packet per flow. The extra endpoints come from a second generator, so the rest of the
        scenario (pods, policies) is the same in both modes."""
        rng, out = self.rng, []
        anchors = rng.sample(pods, min(len(pods), rng.randint(0, 3)))
        for i, pod in enumerate(anchors):
            served = rng.choice(pod["serve"])
            port = served["port"] if rng.random() < 0.7 else rng.choice([80, 8443, 7000])
            name = f"svc-{i}"
            pod["labels"]["app"] = name
            out.append({"namespace": pod["namespace"], "name": name, "cluster_ip": f"10.96.0.{10 + i}",
                        "ports": [{"proto": served["proto"], "port": port, "target_port": served["port"]}],
                        "selector": {"app": name}, "shape": "single-endpoint"})
        if self.single_endpoint:
            return out
        extra_rng = random.Random(f"endpoints-{self.seed}")
        taken = {id(p) for p in anchors}
        for svc, anchor in zip(out, anchors):
            free = [p for p in pods if p["namespace"] == anchor["namespace"] and id(p) not in taken]
            extra = extra_rng.sample(free, min(len(free), extra_rng.randint(1, 3)))
            if not extra:
                continue
            port = svc["ports"][0]
            for p in extra:
                taken.add(id(p))
                p["labels"]["app"] = svc["name"]
                if not any(s["proto"] == port["proto"] and s["port"] == port["target_port"] for s in p["serve"]):
                    anchor_serve = next(s for s in anchor["serve"] if s["proto"] == port["proto"]
                                        and s["port"] == port["target_port"])
                    p["serve"].append(dict(anchor_serve))
            svc["shape"] = "multi-endpoint"
        return out

    # ---- policies -----------------------------------------------------------------------

    def policy(self, i: int) -> dict:
        rng = self.rng
        kind = rng.choices(["np", "gnp", "knp"], weights=[3, 2, 1])[0]
        ns = rng.choice(self.sc["namespaces"])["name"]
        tier = "default" if kind == "knp" else rng.choice(self.sc["tiers"])["name"]
        pol = {"kind": kind, "name": f"pol-{i}", "tier": tier, "selector": self.pod_selector(ns, kind)}
        if kind != "gnp":
            pol["namespace"] = ns
        if rng.random() < 0.8:
            pol["order"] = rng.choice([1, 5, 10, 50, 100, 200])
        types = rng.choice([["ingress"], ["egress"], ["ingress", "egress"]])
        pol["types"] = types
        for direction in ("ingress", "egress"):
            n = rng.randint(0, 3) if direction in types else 0
            pol[direction] = [self.rule(kind, direction, ns) for _ in range(n)]
        return pol

    def pod_selector(self, ns: str, kind: str) -> dict:
        rng = self.rng
        candidates = [p for p in self.sc["pods"] if kind == "gnp" or p["namespace"] == ns]
        if not candidates or rng.random() < 0.3:
            return {}
        pod = rng.choice(candidates)
        key = rng.choice(sorted(pod["labels"]))
        return {key: pod["labels"][key]}

    def rule(self, kind: str, direction: str, ns: str) -> dict:
        rng = self.rng
        action = "allow" if kind == "knp" else rng.choices(
            ["allow", "deny", "pass", "log"], weights=[5, 3, 2, 1])[0]
        rule = {"action": action}
        proto = rng.choices(["tcp", "udp", "icmp", None, 17, 132], weights=[6, 2, 2, 3, 1, 1])[0]
        if proto is not None:
            rule["protocol"] = proto
        if rng.random() < 0.1 and proto is None:
            rule["not_protocol"] = rng.choice(["udp", "icmp"])
        if proto == "icmp" and rng.random() < 0.6:
            rule["icmp"] = {"type": 8, "code": 0} if rng.random() < 0.5 else {"type": 8}
        peer_side = "src" if direction == "ingress" else "dst"
        peer = self.peer(kind, ns)
        if peer:
            rule[peer_side] = peer
        if scn.proto_name(proto) in ("tcp", "udp"):
            ports = self.ports(scn.proto_name(proto))
            if self.named_rng and self.named_rng.random() < 0.3:
                # A named port instead of the numbers (shape `named-port`): Felix's (ip, port) set.
                pool = TCP_PORTS if scn.proto_name(proto) == "tcp" else UDP_PORTS
                ports = []
                rule.setdefault("dst", {})["named_ports"] = [PORT_NAMES[self.named_rng.choice(pool)]]
            if ports:
                rule.setdefault("dst", {})["ports"] = ports
            if rng.random() < 0.15:
                rule.setdefault("dst", {})["not_ports"] = [rng.choice(TCP_PORTS + UDP_PORTS)]
            if rng.random() < 0.1:
                rule.setdefault("src", {})["ports"] = ["32768:60999"]
        return rule

    def ports(self, proto: str) -> list:
        rng = self.rng
        pool = TCP_PORTS if proto == "tcp" else UDP_PORTS
        if rng.random() < 0.2:
            return []
        ports = rng.sample(pool, rng.randint(1, 2))
        if rng.random() < 0.3:
            lo = rng.choice([1, 1000, 5000, 8000])
            ports.append(f"{lo}:{lo + rng.choice([100, 1000, 4000])}")
        return ports

    def peer(self, kind: str, ns: str) -> dict:
        """A src/dst peer: CIDRs, selectors, namespace selectors and negations, or nothing."""
        rng = self.rng
        peer: dict = {}
        choice = rng.choices(["none", "nets", "selector", "nsel", "both", "not"], weights=[2, 3, 3, 2, 1, 2])[0]
        pods = self.sc["pods"]
        if choice == "nets":
            nets = [rng.choice(pods)["ip"] + "/32" for _ in range(rng.randint(1, 2))]
            if rng.random() < 0.4:
                nets.append(rng.choice([f"{POD_NET}.0/24", f"{POD_NET}.0/28"] + OUTSIDE_NETS))
            peer["nets"] = sorted(set(nets))
            if rng.random() < 0.3:
                peer["not_nets"] = [rng.choice(pods)["ip"] + "/32"]
        elif choice in ("selector", "both"):
            pod = rng.choice(pods)
            key = rng.choice(sorted(pod["labels"]))
            peer["selector"] = {key: pod["labels"][key]}
        if choice in ("nsel", "both"):
            target = rng.choice(self.sc["namespaces"])
            if rng.random() < 0.5:
                peer["namespace_selector"] = {"ns": target["name"]}
            else:
                peer["namespace_selector"] = {"env": target["labels"]["env"]}
        if choice == "not":
            if rng.random() < 0.5:
                peer["not_nets"] = [rng.choice([f"{POD_NET}.0/28", rng.choice(pods)["ip"] + "/32"])]
            else:
                pod = rng.choice(pods)
                peer["not_selector"] = {"role": pod["labels"]["role"]}
        return peer


# --------------------------------------------------------------------------------------------
# Host endpoints (--host-endpoints): the uplink as a HostEndpoint, node servers, and gnps of the
# four classes (normal, apply_on_forward, pre_dnat, do_not_track) selecting it.

HOST_SERVE = [{"proto": "tcp", "port": 8080, "kind": "tcp"}, {"proto": "tcp", "port": 9090, "kind": "http404"},
              {"proto": "tcp", "port": 22, "kind": "tcp"}, {"proto": "udp", "port": 5353, "kind": "udp"},
              {"proto": "udp", "port": 7777, "kind": "udp"}]
HOST_TCP_PORTS = [8080, 9090, 22, 443, 25, 80]
HOST_UDP_PORTS = [5353, 7777, 53]
# Remote sources: the uplink peer, others of its subnet, and the world beyond.
REMOTE_SOURCES = ["172.18.0.1", "172.18.0.66", "172.18.0.99", "198.51.100.7", "203.0.113.20"]
REMOTE_DESTS = ["172.18.0.1", "198.51.100.7", "203.0.113.20", "192.0.2.44"]


class HostEndpointGen:
    def __init__(self, rng: random.Random, sc: dict):
        self.rng = rng
        self.sc = sc

    def add(self) -> None:
        rng, sc = self.rng, self.sc
        sc["node"]["serve"] = [dict(e) for e in HOST_SERVE]
        labels = {"hep": "uplink"}
        if rng.random() < 0.5:
            labels["zone"] = rng.choice(["a", "b"])
        sc["host_endpoints"] = [{"name": f"{sc['node']['name']}-eth0", "interface": "eth0", "labels": labels,
                                 "expected_ips": [sc["node"]["ip"]]}]
        # A short failsafe list (22 in, 53 out) half the time, Felix's defaults otherwise.
        if rng.random() < 0.5:
            sc["failsafe_inbound"] = [{"protocol": "tcp", "port": 22}]
            sc["failsafe_outbound"] = [{"protocol": "udp", "port": 53}]
        classes = ["normal", "forward", "pre_dnat", "untracked"]
        classes += rng.sample(classes, rng.randint(0, 3))
        for i, cls in enumerate(classes):
            sc["policies"].append(self.policy(i, cls))

    def policy(self, i: int, cls: str) -> dict:
        rng = self.rng
        tier = rng.choice(self.sc["tiers"])["name"]
        sel = {} if rng.random() < 0.2 and cls in ("pre_dnat", "untracked") else {"hep": "uplink"}
        pol = {"kind": "gnp", "name": f"hep-{cls.replace('_', '')}-{i}", "tier": tier, "selector": sel,
               "apply_on_forward": cls != "normal", "pre_dnat": cls == "pre_dnat",
               "do_not_track": cls == "untracked"}
        if rng.random() < 0.8:
            pol["order"] = rng.choice([1, 5, 10, 50, 100, 200])
        types = ["ingress"] if cls == "pre_dnat" else rng.choice([["ingress"], ["egress"], ["ingress", "egress"]])
        pol["types"] = types
        for direction in ("ingress", "egress"):
            n = rng.randint(1, 3) if direction in types else 0
            pol[direction] = [self.rule(direction, cls) for _ in range(n)]
        return pol

    def rule(self, direction: str, cls: str) -> dict:
        rng = self.rng
        # untracked policies: no pass/log (allow = NOTRACK + accept, deny = drop)
        actions, weights = (["allow", "deny"], [3, 2]) if cls == "untracked" else (
            ["allow", "deny", "pass", "log"], [5, 3, 1, 1])
        rule = {"action": rng.choices(actions, weights=weights)[0]}
        proto = rng.choices(["tcp", "udp", None, "icmp"], weights=[5, 3, 1, 1])[0]
        if proto:
            rule["protocol"] = proto
        # A deny always names ports or a protocol other than TCP: a deny of all TCP from the
        # world would leave little for the other policies to decide.
        if proto in ("tcp", "udp") and (rng.random() < 0.8 or rule["action"] == "deny"):
            pool = HOST_TCP_PORTS if proto == "tcp" else HOST_UDP_PORTS
            side = "dst" if rng.random() < 0.85 else "src"
            rule[side] = {"ports": rng.sample(pool, rng.randint(1, 2))}
        elif proto is None and rule["action"] == "deny":
            rule["protocol"] = "icmp"
        peer_side = "src" if direction == "ingress" else "dst"
        r = rng.random()
        if r < 0.3:
            nets = REMOTE_SOURCES if direction == "ingress" else REMOTE_DESTS
            rule.setdefault(peer_side, {})["nets"] = [rng.choice(nets) + "/32"]
        elif r < 0.4:
            rule.setdefault(peer_side, {})["nets"] = ["172.18.0.0/24"]
        elif r < 0.5:
            rule.setdefault(peer_side, {})["not_nets"] = [rng.choice(REMOTE_SOURCES) + "/32"]
        elif r < 0.6 and self.sc["pods"]:
            pod = rng.choice(self.sc["pods"])
            key = rng.choice(sorted(pod["labels"]))
            rule.setdefault("dst" if direction == "ingress" else "src", {})["selector"] = {key: pod["labels"][key]}
        return rule


# --------------------------------------------------------------------------------------------
# Flows


class FlowGen:
    """Flows for a scenario: pod->pod, pod->service, pod->host, host->pod, remote->pod."""

    def __init__(self, sc: dict, seed: int):
        self.sc = sc
        self.rng = random.Random(seed)

    def flows(self, count: int) -> list[dict]:
        kinds = ["pod-pod"] * 5 + ["pod-svc"] * 2 + ["pod-host", "host-pod", "remote-pod", "remote-pod"]
        if not self.sc["services"]:
            kinds = [k for k in kinds if k != "pod-svc"]
        if self.sc.get("host_endpoints"):
            # Through the host endpoint: to and from the node itself, and forwarded both ways.
            kinds += ["remote-host"] * 4 + ["host-remote"] * 3 + ["hep-remote-pod"] * 2 + ["pod-remote"] * 3
        out = []
        for _ in range(count):
            out.append(getattr(self, "_" + self.rng.choice(kinds).replace("-", "_"))())
        return out

    def _port(self, dst_pod: dict | None) -> dict:
        """Served port of dst (60%), otherwise an unserved TCP/UDP port or an ICMP echo."""
        rng = self.rng
        if dst_pod and dst_pod["serve"] and rng.random() < 0.6:
            s = rng.choice(dst_pod["serve"])
            flow = {"proto": s["proto"], "dport": s["port"]}
        elif rng.random() < 0.15:
            return {"proto": "icmp", "icmp_type": 8}
        else:
            proto = rng.choice(["tcp", "tcp", "udp"])
            pool = TCP_PORTS + [22, 3306, 7000] if proto == "tcp" else UDP_PORTS + [123, 161]
            flow = {"proto": proto, "dport": rng.choice(pool)}
        if rng.random() < 0.2:
            flow["sport"] = rng.choice([40000, 50000, 1234])
        return flow

    @staticmethod
    def _pod_ref(pod: dict) -> str:
        return f"pod:{pod['namespace']}/{pod['name']}"

    def _pod_pod(self) -> dict:
        src, dst = self.rng.sample(self.sc["pods"], 2) if len(self.sc["pods"]) > 1 else self.sc["pods"] * 2
        return {"src": src["ip"], "dst": dst["ip"], **self._port(dst),
                "from": self._pod_ref(src), "to": self._pod_ref(dst)}

    def _pod_svc(self) -> dict:
        # Only the service's own ports: kube-proxy's nft mode rejects other ClusterIP ports itself,
        # its iptables mode does not, so other ports would test kube-proxy rather than Calico.
        src = self.rng.choice(self.sc["pods"])
        svc = self.rng.choice(self.sc["services"])
        port = self.rng.choice(svc["ports"])
        return {"src": src["ip"], "dst": svc["cluster_ip"], "proto": port["proto"], "dport": port["port"],
                "from": self._pod_ref(src), "to": f"service:{svc['namespace']}/{svc['name']}"}

    def _pod_host(self) -> dict:
        src = self.rng.choice(self.sc["pods"])
        return {"src": src["ip"], "dst": self.sc["node"]["ip"], **self._port(None),
                "from": self._pod_ref(src), "to": "host"}

    def _host_pod(self) -> dict:
        dst = self.rng.choice(self.sc["pods"])
        return {"src": self.sc["node"]["ip"], "dst": dst["ip"], **self._port(dst),
                "from": "host", "to": self._pod_ref(dst)}

    def _hep_port(self, serve: list[dict]) -> dict:
        """A node-served port (50%), else a host-endpoint-policy port, a failsafe port or an echo."""
        rng = self.rng
        r = rng.random()
        if serve and r < 0.5:
            s = rng.choice(serve)
            return {"proto": s["proto"], "dport": s["port"]}
        if r < 0.9:
            proto = rng.choice(["tcp", "tcp", "udp"])
            return {"proto": proto, "dport": rng.choice(HOST_TCP_PORTS + [2379] if proto == "tcp"
                                                       else HOST_UDP_PORTS + [68])}
        return {"proto": "icmp", "icmp_type": 8}

    def _remote_host(self) -> dict:
        return {"src": self.rng.choice(REMOTE_SOURCES), "dst": self.sc["node"]["ip"],
                **self._hep_port(self.sc["node"].get("serve", [])), "from": "remote", "to": "host"}

    def _host_remote(self) -> dict:
        return {"src": self.sc["node"]["ip"], "dst": self.rng.choice(REMOTE_DESTS), **self._hep_port([]),
                "from": "host", "to": "remote"}

    def _hep_remote_pod(self) -> dict:
        dst = self.rng.choice(self.sc["pods"])
        return {"src": self.rng.choice(REMOTE_SOURCES), "dst": dst["ip"], **self._port(dst),
                "from": "remote", "to": self._pod_ref(dst)}

    def _pod_remote(self) -> dict:
        src = self.rng.choice(self.sc["pods"])
        return {"src": src["ip"], "dst": self.rng.choice(REMOTE_DESTS), **self._hep_port([]),
                "from": self._pod_ref(src), "to": "remote"}

    def _remote_pod(self) -> dict:
        dst = self.rng.choice(self.sc["pods"])
        return {"src": self.sc["node"]["remote_ip"], "dst": dst["ip"], **self._port(dst),
                "from": "remote", "to": self._pod_ref(dst)}


# --------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Generate random lab scenarios (default) or flows (--flows).")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--pods", type=int, default=8)
    ap.add_argument("--policies", type=int, default=6)
    ap.add_argument("--single-endpoint-services", action="store_true",
                    help="every service selects one pod (default: 2-4 where the namespace has them)")
    ap.add_argument("--no-named-ports", action="store_true",
                    help="no port names on pods and no named ports in rules (the eBPF node lacks them)")
    ap.add_argument("--host-endpoints", action="store_true",
                    help="the uplink as a host endpoint with normal, apply_on_forward, pre_dnat and "
                         "do_not_track policies, node servers, and flows through it")
    ap.add_argument("--flows", action="store_true", help="emit flows (JSON lines) for --scenario")
    ap.add_argument("--scenario", type=Path, help="scenario JSON (with --flows)")
    ap.add_argument("--count", type=int, default=200)
    args = ap.parse_args(argv)
    if args.flows:
        if not args.scenario:
            ap.error("--flows needs --scenario")
        sc = scn.load(args.scenario)
        for flow in FlowGen(sc, args.seed).flows(args.count):
            print(json.dumps(flow, sort_keys=True))
        return 0
    if not 2 <= args.pods <= 200:
        ap.error("--pods must be between 2 and 200")
    sc = ScenarioGen(args.seed, args.pods, args.policies, args.single_endpoint_services,
                     not args.no_named_ports, args.host_endpoints).build()
    json.dump(sc, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
