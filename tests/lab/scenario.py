"""Scenario model for the dpinspect lab: load a scenario JSON, fill in defaults, answer selector questions.

A scenario describes one Calico node: its pods, namespaces, tiers, policies and services. render.py turns
it into the rules Felix and kube-proxy would program; generate.py produces random scenarios and flows.
The JSON shape is documented in README-render.md. Everything here is plain data (dicts), so the same
objects can be dumped back to JSON.

Selector semantics (kept deliberately simple, but the same ones Calico applies):
  * a selector is a dict of labels that must all be equal (`{}` selects everything);
  * every namespace implicitly carries the label `ns=<name>`, plus any labels from the top-level
    `namespaces` list; namespace selectors match those labels;
  * for namespaced kinds (np, knp) a peer `selector` without `namespace_selector` means "pods in the
    policy's own namespace"; for gnp it means "pods in any namespace".
"""

from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress
import json
from pathlib import Path

KINDS = ("np", "gnp", "knp")
ACTIONS = ("allow", "deny", "pass", "log")
PROTO_NUMBERS = {"icmp": 1, "tcp": 6, "udp": 17, "sctp": 132}
DEFAULT_TIER = {"name": "default", "order": 1000000, "default_action": "deny"}
# Kubernetes NetworkPolicies become Calico policies with order 1000 in tier default
# (libcalico-go k8s conversion), so use the same here.
KNP_ORDER = 1000.0


class ScenarioError(ValueError):
    pass


# --------------------------------------------------------------------------------------------
# Names


def iface_name(namespace: str, name: str, prefix: str = "cali") -> str:
    """Host-side veth of a pod: prefix + first 11 hex chars of sha1("<ns>.<pod>") (Calico VethNameForWorkload)."""
    return prefix + hashlib.sha1(f"{namespace}.{name}".encode()).hexdigest()[:11]


def version_tuple(version: str) -> tuple[int, int]:
    major, minor = (version.split(".") + ["0"])[:2]
    return int(major), int(minor)


def kind_naming(scenario: dict) -> bool:
    """True when Felix names policies `<kind>/[ns/]name` (v3.32+); before that it used v1 tiered names."""
    return version_tuple(scenario["calico_version"]) >= (3, 32)


def policy_v1_name(pol: dict) -> str:
    """The v3.30/v3.31 datamodel name: `<tier>.<name>` (gnp), `<ns>/<tier>.<name>` (np), `<ns>/knp.default.<name>` (knp)."""
    if pol["kind"] == "knp":
        return f"{pol['namespace']}/knp.default.{pol['name']}"
    name = pol["name"]
    if not name.startswith(pol["tier"] + "."):
        name = f"{pol['tier']}.{name}"
    return f"{pol['namespace']}/{name}" if pol["kind"] == "np" else name


def policy_kind_id(pol: dict) -> str:
    """The v3.32+ PolicyID.ID(): `<kind>/[ns/]name`; k8s policies keep their `knp.default.` name prefix."""
    name = f"knp.default.{pol['name']}" if pol["kind"] == "knp" else pol["name"]
    if pol["kind"] in ("np", "knp"):
        return f"{pol['kind']}/{pol['namespace']}/{name}"
    return f"{pol['kind']}/{name}"


KIND_LONG = {"np": "NetworkPolicy", "gnp": "GlobalNetworkPolicy", "knp": "KubernetesNetworkPolicy"}


# --------------------------------------------------------------------------------------------
# Loading and normalising


def load(path: str | Path) -> dict:
    with open(path) as f:
        return normalise(json.load(f))


def normalise(raw: dict) -> dict:
    """Return a deep copy of the scenario with every optional field filled in and validated."""
    sc = copy.deepcopy(raw)
    sc.setdefault("name", "scenario")
    sc.setdefault("calico_version", "3.30")
    sc.setdefault("flow_logs", False)
    # Felix's NftablesMarkMask / IptablesMarkMask: the bits it may use, handed out lowest first.
    mask = sc.setdefault("mark_mask", "0xffff0000")
    try:
        if bin(int(str(mask), 0)).count("1") < 5:
            raise ValueError
    except ValueError:
        raise ScenarioError(f"mark_mask {mask!r}: want a number with at least 5 bits set, e.g. 0xffff0000")
    sc.setdefault("ip_pool", "10.65.0.0/16")
    sc.setdefault("service_cidr", "10.96.0.0/12")
    node = sc.setdefault("node", {})
    node.setdefault("name", "node1")
    node.setdefault("ip", "172.18.0.2")
    node.setdefault("prefix", 24)
    node.setdefault("uplink", "eth0")
    node.setdefault("remote_ip", "172.18.0.1")
    node.setdefault("serve", [])  # servers in the node netns, bound to node.ip (host endpoint flows)

    for pod in sc.setdefault("pods", []):
        pod.setdefault("labels", {})
        pod.setdefault("serve", [])
        pod["iface"] = iface_name(pod["namespace"], pod["name"])
        ipaddress.IPv4Address(pod["ip"])

    _normalise_namespaces(sc)
    _normalise_tiers(sc)
    for pol in sc.setdefault("policies", []):
        _normalise_policy(sc, pol)
    _normalise_host_endpoints(sc)
    for svc in sc.setdefault("services", []):
        svc.setdefault("selector", {})
        for port in svc.setdefault("ports", []):
            port.setdefault("proto", "tcp")
            port.setdefault("target_port", port["port"])
            port.setdefault("name", "")
        _check_service_shape(sc, svc)
    return sc


# A service's shape, by its number of endpoints: kube-proxy DNATs a single endpoint unconditionally
# and picks one of several at random (numgen in nftables mode, a chain of statistic matches in
# iptables mode), which the oracle and the differential handle differently.
SERVICE_SHAPES = {"single-endpoint": (1, 1), "multi-endpoint": (2, 4)}


def service_shape(sc: dict, svc: dict) -> str | None:
    """The shape the service's endpoints give it (None: no endpoints, or more than 4)."""
    n = len(pods_for_service(sc, svc))
    return next((name for name, (lo, hi) in SERVICE_SHAPES.items() if lo <= n <= hi), None)


def _check_service_shape(sc: dict, svc: dict) -> None:
    want = svc.get("shape")
    if want is None:
        return
    if want not in SERVICE_SHAPES:
        raise ScenarioError(f"service {svc['name']}: unknown shape {want!r} (want one of {sorted(SERVICE_SHAPES)})")
    lo, hi = SERVICE_SHAPES[want]
    n = len(pods_for_service(sc, svc))
    if not lo <= n <= hi:
        raise ScenarioError(f"service {svc['name']}: shape {want} needs {lo}-{hi} endpoints, "
                            f"its selector matches {n} pods")


def _normalise_namespaces(sc: dict) -> None:
    """Namespaces = the explicit list plus every namespace a pod or policy mentions; each gets ns=<name>."""
    by_name = {}
    for ns in sc.get("namespaces", []):
        by_name[ns["name"]] = {"name": ns["name"], "labels": dict(ns.get("labels", {}))}
    mentioned = [p["namespace"] for p in sc["pods"]] + [
        p["namespace"] for p in sc.get("policies", []) if p.get("namespace")] + [
        s["namespace"] for s in sc.get("services", [])]
    for name in mentioned:
        by_name.setdefault(name, {"name": name, "labels": {}})
    for ns in by_name.values():
        ns["labels"].setdefault("ns", ns["name"])
    sc["namespaces"] = sorted(by_name.values(), key=lambda n: n["name"])


def _normalise_tiers(sc: dict) -> None:
    tiers = sc.setdefault("tiers", [])
    if not any(t["name"] == "default" for t in tiers):
        tiers.append(dict(DEFAULT_TIER))  # knp always lives in tier default
    for t in tiers:
        t.setdefault("order", DEFAULT_TIER["order"])
        t.setdefault("default_action", "deny")
        if t["default_action"] not in ("deny", "pass"):
            raise ScenarioError(f"tier {t['name']}: default_action must be deny or pass")
    # Calico orders tiers by order, then by name.
    tiers.sort(key=lambda t: (t["order"], t["name"]))


def _normalise_policy(sc: dict, pol: dict) -> None:
    kind = pol.setdefault("kind", "np")
    if kind not in KINDS:
        raise ScenarioError(f"policy {pol.get('name')}: unknown kind {kind}")
    if kind == "gnp":
        pol.pop("namespace", None)
    elif "namespace" not in pol:
        raise ScenarioError(f"policy {pol['name']}: {kind} needs a namespace")
    if kind == "knp":
        pol["tier"] = "default"
        pol.setdefault("order", KNP_ORDER)
    pol.setdefault("tier", "default")
    if not any(t["name"] == pol["tier"] for t in sc["tiers"]):
        raise ScenarioError(f"policy {pol['name']}: unknown tier {pol['tier']}")
    pol.setdefault("order", None)
    _normalise_hep_policy_flags(pol)
    pol.setdefault("selector", {})
    pol.setdefault("ingress", [])
    pol.setdefault("egress", [])
    if "types" not in pol:
        # Calico's default: egress when there are egress rules; ingress when there are ingress rules
        # or no egress rules at all.
        pol["types"] = (["ingress"] if pol["ingress"] or not pol["egress"] else []) + (
            ["egress"] if pol["egress"] else [])
    for rule in pol["ingress"] + pol["egress"]:
        normalise_rule(pol['name'], rule)


def normalise_rule(owner: str, rule: dict) -> dict:
    """Fill in a rule's optional fields in place (owner names the policy in errors); returns the rule."""
    rule.setdefault("action", "allow")
    if rule["action"] not in ACTIONS:
        raise ScenarioError(f"{owner}: unknown action {rule['action']}")
    for side in ("src", "dst"):
        peer = rule.setdefault(side, {})
        for key in ("nets", "not_nets"):
            peer[key] = [str(ipaddress.IPv4Network(n, strict=False)) for n in peer.get(key, [])]
        for key in ("ports", "not_ports"):
            peer[key] = [parse_port(p) for p in peer.get(key, [])]
        peer["named_ports"] = [str(n) for n in peer.get("named_ports", [])]
    # The brief's shorthand `dst_ports`/`src_ports` at rule level.
    for side in ("src", "dst"):
        short = rule.pop(f"{side}_ports", None)
        if short:
            rule[side]["ports"] += [parse_port(p) for p in short]
    for side in ("src", "dst"):
        peer = rule[side]
        if peer["named_ports"] and (len(peer["named_ports"]) > 1 or peer["ports"]):
            # Felix ORs numeric and named ports (match blocks over several sets); the lab renders
            # the common case only: one named port, alone on its side.
            raise ScenarioError(f"{owner}: {side}.named_ports: one name, without numeric {side}.ports")
        if peer["named_ports"] and proto_name(rule.get("protocol")) not in ("tcp", "udp"):
            raise ScenarioError(f"{owner}: named ports need protocol tcp or udp")
    if (rule["src"]["ports"] or rule["dst"]["ports"] or rule["src"]["not_ports"]
            or rule["dst"]["not_ports"]) and proto_name(rule.get("protocol")) not in ("tcp", "udp", "sctp"):
        raise ScenarioError(f"{owner}: ports need protocol tcp, udp or sctp")
    if rule.get("icmp") and proto_name(rule.get("protocol")) != "icmp":
        raise ScenarioError(f"{owner}: icmp match needs protocol icmp")
    return rule


def parse_port(p) -> list[int]:
    """80 -> [80, 80]; "1000:2000" -> [1000, 2000]; already-parsed pairs pass through."""
    if isinstance(p, list):
        return [int(p[0]), int(p[1])]
    if isinstance(p, int):
        return [p, p]
    lo, _, hi = str(p).partition(":")
    return [int(lo), int(hi or lo)]


def proto_name(proto) -> str | None:
    """Protocol as Calico renders it: a name for the four well-known ones, else the number as a string."""
    if proto is None:
        return None
    if isinstance(proto, int) or str(proto).isdigit():
        num = int(proto)
        for name, n in PROTO_NUMBERS.items():
            if n == num:
                return name
        return str(num)
    return str(proto).lower()


def proto_number(proto) -> int | None:
    name = proto_name(proto)
    if name is None:
        return None
    return PROTO_NUMBERS.get(name, int(name) if name.isdigit() else None)


# --------------------------------------------------------------------------------------------
# Host endpoints (Calico HostEndpoint + the GlobalNetworkPolicy flags that only host endpoints honour)
#
# A host endpoint names one node interface (`interface`; Calico's interfaceName, no `*` wildcard here)
# and is selected, like a pod, by the labels of a gnp's `selector` (np/knp never select host
# endpoints). Felix renders per interface: filter `cali-fh-<if>`/`cali-th-<if>` (to and from the host
# itself: INPUT/OUTPUT), `cali-fhfw-<if>`/`cali-thfw-<if>` (forwarded traffic, only policies with
# `apply_on_forward`; no such policy = allow), mangle `cali-fh-<if>` (`pre_dnat` policies, ingress
# only), raw `cali-fh-<if>`/`cali-th-<if>` (`do_not_track` policies; allow = NOTRACK + accept).

# Felix's default FailsafeInboundHostPorts / FailsafeOutboundHostPorts (config_params.go).
DEFAULT_FAILSAFE_INBOUND = [("tcp", 22), ("udp", 68), ("tcp", 179), ("tcp", 2379), ("tcp", 2380),
                            ("tcp", 5473), ("tcp", 6443), ("tcp", 6666), ("tcp", 6667)]
DEFAULT_FAILSAFE_OUTBOUND = [("udp", 53), ("udp", 67), ("tcp", 179), ("tcp", 2379), ("tcp", 2380),
                             ("tcp", 5473), ("tcp", 6443), ("tcp", 6666), ("tcp", 6667)]
HEP_POLICY_FLAGS = ("apply_on_forward", "pre_dnat", "do_not_track")


def _normalise_host_endpoints(sc: dict) -> None:
    seen = set()
    for hep in sc.setdefault("host_endpoints", []):
        if "name" not in hep or "interface" not in hep:
            raise ScenarioError(f"host endpoint {hep!r}: needs name and interface")
        if hep["interface"] in seen or "*" in hep["interface"] or hep["interface"].startswith("cali"):
            raise ScenarioError(f"host endpoint {hep['name']}: interface {hep['interface']!r} must be a "
                                "distinct node interface (no wildcard, not a cali* workload veth)")
        seen.add(hep["interface"])
        hep.setdefault("labels", {})
        hep["expected_ips"] = [str(ipaddress.IPv4Address(ip)) for ip in hep.get("expected_ips", [])]
        hep.setdefault("profiles", [])
    for key, default in (("failsafe_inbound", DEFAULT_FAILSAFE_INBOUND),
                         ("failsafe_outbound", DEFAULT_FAILSAFE_OUTBOUND)):
        entries = sc.setdefault(key, [{"protocol": p, "port": n} for p, n in default])
        for e in entries:
            e["protocol"] = proto_name(e.get("protocol", "tcp"))
            if e["protocol"] not in ("tcp", "udp") or not 0 < int(e.get("port", 0)) < 65536:
                raise ScenarioError(f"{key}: {e!r}: want protocol tcp|udp and a port")
            e["port"] = int(e["port"])
            if e.get("net"):
                e["net"] = str(ipaddress.IPv4Network(e["net"], strict=False))


def _normalise_hep_policy_flags(pol: dict) -> None:
    """Calico's validation: the three flags are gnp-only; pre_dnat and do_not_track each need
    apply_on_forward, exclude each other, and pre_dnat policies are ingress-only."""
    for flag in HEP_POLICY_FLAGS:
        pol[flag] = bool(pol.get(flag, False))
    if not any(pol[f] for f in HEP_POLICY_FLAGS):
        return
    if pol["kind"] != "gnp":
        raise ScenarioError(f"policy {pol['name']}: apply_on_forward/pre_dnat/do_not_track need kind gnp")
    if (pol["pre_dnat"] or pol["do_not_track"]) and not pol["apply_on_forward"]:
        raise ScenarioError(f"policy {pol['name']}: pre_dnat and do_not_track need apply_on_forward")
    if pol["pre_dnat"] and pol["do_not_track"]:
        raise ScenarioError(f"policy {pol['name']}: pre_dnat and do_not_track exclude each other")
    if pol["pre_dnat"] and (pol.get("egress") or "egress" in pol.get("types", [])):
        raise ScenarioError(f"policy {pol['name']}: pre_dnat policies are ingress only")


def hep_policy_class(pol: dict) -> str:
    """Where a policy lands on a host endpoint: untracked (raw), pre_dnat (mangle), forward (filter
    cali-fh*/th* and cali-fhfw/thfw), normal (filter cali-fh/th only)."""
    if pol["do_not_track"]:
        return "untracked"
    if pol["pre_dnat"]:
        return "pre_dnat"
    return "forward" if pol["apply_on_forward"] else "normal"


def policy_applies_to_hep(pol: dict, hep: dict) -> bool:
    return pol["kind"] == "gnp" and labels_match(pol["selector"], hep["labels"])


def hep_for_interface(sc: dict, iface: str) -> dict | None:
    return next((h for h in sc.get("host_endpoints", []) if h["interface"] == iface), None)


def hep_selector_members(sc: dict, sel: dict) -> list[str]:
    """Expected IPs of host endpoints a peer selector matches (only unscoped, gnp-style selectors:
    host endpoints carry no namespace)."""
    if sel["namespace"] is not None or sel["namespace_selector"] is not None:
        return []
    return [ip for h in sc.get("host_endpoints", []) if labels_match(sel["labels"], h["labels"])
            for ip in h["expected_ips"]]


# --------------------------------------------------------------------------------------------
# Ordering


def tier_of(sc: dict, name: str) -> dict:
    return next(t for t in sc["tiers"] if t["name"] == name)


def policy_sort_key(pol: dict):
    """Calico: lower order first, policies without order last, then by name."""
    order = pol["order"]
    return (order is None, order if order is not None else 0, policy_v1_name(pol))


def policies_in_tier(sc: dict, tier: str) -> list[dict]:
    return sorted((p for p in sc["policies"] if p["tier"] == tier), key=policy_sort_key)


# --------------------------------------------------------------------------------------------
# Selectors


def labels_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def namespace_labels(sc: dict, name: str) -> dict:
    return next(n["labels"] for n in sc["namespaces"] if n["name"] == name)


def policy_applies_to(sc: dict, pol: dict, pod: dict) -> bool:
    if pol["kind"] != "gnp" and pod["namespace"] != pol["namespace"]:
        return False
    return labels_match(pol["selector"], pod["labels"])


def peer_selector(pol: dict, peer: dict, negated: bool = False) -> dict | None:
    """The effective peer selector of a rule side, or None when the side has no selector at all.

    Returns {"namespace": ns-or-None, "namespace_selector": dict-or-None, "labels": dict}.
    Calico scopes a bare selector (and a not_selector) of a namespaced policy to its namespace.
    """
    labels = peer.get("not_selector") if negated else peer.get("selector")
    ns_sel = None if negated else peer.get("namespace_selector")
    if labels is None and ns_sel is None:
        return None
    scoped_ns = pol.get("namespace") if ns_sel is None and pol["kind"] != "gnp" else None
    return {"namespace": scoped_ns, "namespace_selector": ns_sel, "labels": labels or {}}


def selector_expression(sel: dict) -> str:
    """A Calico selector string for the effective selector; it names the IP set (hashed), like Felix."""
    parts = []
    if sel["namespace"] is not None:
        parts.append(f'projectcalico.org/namespace == "{sel["namespace"]}"')
    for k, v in sorted((sel["namespace_selector"] or {}).items()):
        parts.append(f'pcns.{k} == "{v}"')
    for k, v in sorted(sel["labels"].items()):
        parts.append(f'{k} == "{v}"')
    return " && ".join(parts) if parts else "all()"


def selector_members(sc: dict, sel: dict) -> list[str]:
    """Pod IPs matched by an effective selector, sorted."""
    out = []
    for pod in sc["pods"]:
        if sel["namespace"] is not None and pod["namespace"] != sel["namespace"]:
            continue
        if sel["namespace_selector"] is not None and not labels_match(
                sel["namespace_selector"], namespace_labels(sc, pod["namespace"])):
            continue
        if labels_match(sel["labels"], pod["labels"]):
            out.append(pod["ip"])
    out += [ip for ip in hep_selector_members(sc, sel) if ip not in out]
    return sorted(out, key=ipaddress.IPv4Address)


def selector_ipset_id(expr: str) -> str:
    """Felix IP-set ID of a selector: "s:" + base64url(sha224("s:" + selector)) (MakeUniqueID)."""
    digest = hashlib.sha224(f"s:{expr}".encode()).digest()
    return "s:" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def ipset_name(set_id: str) -> str:
    """Main IP set name: "cali40" + ID, truncated to 31 chars (ipset's name limit, as Felix does)."""
    return ("cali40" + set_id)[:31]


def named_port_ipset_id(sel: dict | None, proto: str, name: str) -> str:
    """Felix IP-set ID of a named port: "n:" + base64url(sha224("n:" + <selector's ID>,<proto>,<name>))
    (rule_scanner.go IPSetData.UniqueID; no selector = all())."""
    sel_id = selector_ipset_id(selector_expression(sel) if sel else "all()")
    digest = hashlib.sha224(f"n:{sel_id},{proto},{name}".encode()).digest()
    return "n:" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def named_port_members(sc: dict, sel: dict | None, proto: str, name: str) -> list[tuple[str, str, int]]:
    """(ip, proto, port) of every pod the selector matches (every pod without one) whose `serve`
    names that port for that protocol, as Felix fills a named-port IP set."""
    ips = set(selector_members(sc, sel)) if sel else None
    out = []
    for pod in sc["pods"]:
        if ips is not None and pod["ip"] not in ips:
            continue
        for s in pod["serve"]:
            if s.get("name") == name and s["proto"] == proto:
                out.append((pod["ip"], proto, int(s["port"])))
    return sorted(set(out), key=lambda m: (ipaddress.IPv4Address(m[0]), m[1], m[2]))


def pods_for_service(sc: dict, svc: dict) -> list[dict]:
    return [p for p in sc["pods"] if p["namespace"] == svc["namespace"] and svc["selector"]
            and labels_match(svc["selector"], p["labels"])]
