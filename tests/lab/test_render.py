#!/usr/bin/env python3
"""Self-check for render.py/generate.py: render scenarios in both layouts and load each into a throwaway netns.

    python3 tests/lab/test_render.py

Scenarios: scenarios/seed.json, scenarios/seed-platform.json (also as calico_version 3.32), generated
seeds 1, 2, 3, scenarios/hostendpoints.json and generated seed 1 with --host-endpoints. Each is rendered
as nftables and iptables-nft and loaded with `nft -f` / `ipset restore` + `iptables-nft-restore` inside a
namespace created for that check (`rt-<pid>-<n>`), deleted afterwards. The root namespace is never touched.
Also checks the seed-platform end-of-tier pair as `nft list ruleset` prints it, that generation is
deterministic, the service shapes (generated multi-endpoint services, kube-proxy's random choice in both
layouts, `shape` validation), named ports (sets and matches in both layouts, members, validation) and
the differential's rule for random endpoints on made-up answers. Needs root; without it, prints a
message and exits 0. Ends with "N passed, M failed".
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate  # noqa: E402
import render  # noqa: E402
import scenario as scn  # noqa: E402

SEED_PAIR = [
    'meta mark & 0x00020000 == 0x00000000 counter packets 0 bytes 0 log prefix "DPE|platform" group 2 snaplen 80',
    "meta mark & 0x00020000 == 0x00000000 counter packets 0 bytes 0 drop",
]

_namespaces: list[str] = []


def _cleanup() -> None:
    for ns in _namespaces:
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


atexit.register(_cleanup)


class Netns:
    """A throwaway network namespace; `run` executes a command inside it."""

    counter = 0

    def __enter__(self):
        Netns.counter += 1
        self.name = f"rt-{os.getpid()}-{Netns.counter}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        _namespaces.append(self.name)
        return self

    def run(self, argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name] + argv, input=stdin, text=True,
                              capture_output=True)

    def __exit__(self, *exc):
        subprocess.run(["ip", "netns", "del", self.name], check=False)
        _namespaces.remove(self.name)


def load(out: Path, layout: str) -> tuple[bool, str, str]:
    """Load rendered files into a fresh netns; returns (ok, error text, `nft list ruleset`)."""
    with Netns() as ns:
        if layout == "nftables":
            steps = [(["nft", "-f", str(out / "ruleset.nft")], None)]
        else:
            steps = [(["ipset", "restore"], (out / "ipsets.restore").read_text()),
                     (["iptables-nft-restore"], (out / "iptables.rules").read_text())]
        for argv, stdin in steps:
            res = ns.run(argv, stdin)
            if res.returncode != 0:
                return False, f"{' '.join(argv)}: {res.stderr.strip()[:2000]}", ""
        listing = ns.run(["nft", "list", "ruleset"])
        return listing.returncode == 0, listing.stderr, listing.stdout


def scenarios(tmp: Path) -> list[tuple[str, Path]]:
    out = [("seed", HERE / "scenarios" / "seed.json"),
           ("seed-platform", HERE / "scenarios" / "seed-platform.json")]
    # The same seed with v3.32+ naming (`cali-pi-np/ns/name`, `APE0|np/ns/name`).
    v332 = json.loads((HERE / "scenarios" / "seed-platform.json").read_text())
    v332["calico_version"] = "3.32"
    (tmp / "seed-platform-v332.json").write_text(json.dumps(v332))
    out.append(("seed-platform-v3.32", tmp / "seed-platform-v332.json"))
    for seed in (1, 2, 3):
        path = tmp / f"gen-{seed}.json"
        path.write_text(json.dumps(generate.ScenarioGen(seed, 8, 6).build(), indent=2))
        out.append((f"gen-{seed}", path))
    out.append(("hostendpoints", HERE / "scenarios" / "hostendpoints.json"))
    path = tmp / "gen-1-hep.json"
    path.write_text(json.dumps(generate.ScenarioGen(1, 8, 6, host_endpoints=True).build(), indent=2))
    out.append(("gen-1-hep", path))
    return out


def check_host_endpoints() -> str | None:
    """Calico's validation of the HEP policy flags, where each class renders, and that
    --host-endpoints only adds to a generated scenario."""
    base = {"pods": [{"namespace": "a", "name": "p", "ip": "10.65.0.2"}],
            "host_endpoints": [{"name": "h", "interface": "eth0", "labels": {"hep": "x"}}]}
    bad = [{"kind": "gnp", "name": "b1", "pre_dnat": True},
           {"kind": "gnp", "name": "b2", "apply_on_forward": True, "pre_dnat": True, "do_not_track": True},
           {"kind": "gnp", "name": "b3", "apply_on_forward": True, "pre_dnat": True, "egress": [{}]},
           {"kind": "np", "namespace": "a", "name": "b4", "apply_on_forward": True}]
    for pol in bad:
        try:
            scn.normalise({**base, "policies": [pol]})
            return f"policy {pol['name']} was accepted: {pol}"
        except scn.ScenarioError:
            pass
    sc = scn.load(HERE / "scenarios" / "hostendpoints.json")
    model = render.FelixModel(sc, nft=True)
    where = {t: sorted(c for c in model.tables[t] if "cali-pi-" in c or "cali-po-" in c) for t in ("raw", "mangle")}
    if where["raw"] != ["cali-pi-hosts/hosts.host-untracked", "cali-po-hosts/hosts.host-untracked"]:
        return f"raw policy chains {where['raw']}"
    if "cali-pi-hosts/hosts.host-prednat" not in where["mangle"]:
        return f"mangle policy chains {where['mangle']}"
    # With all() selectors the pre-DNAT and untracked policies select the pods too: Felix still
    # gives them to host endpoints only.
    raw = json.loads((HERE / "scenarios" / "hostendpoints.json").read_text())
    for pol in raw["policies"]:
        pol["selector"] = {}
    everything = render.FelixModel(scn.normalise(raw), nft=True)
    chains = everything.tables["filter"]

    def jumps(name: str) -> list[str]:
        out = [r.action[1] for r in chains[name].rules if r.action and r.action[0] == "jump"]
        return out + [t for g in out if g.startswith(("cali-gi-", "cali-go-")) for t in jumps(g)]

    pod_chains = [t for name in chains if name.startswith(("cali-tw-", "cali-fw-")) for t in jumps(name)]
    if not any("host-normal" in t for t in pod_chains):
        return f"all() host-normal policy missing from the workload chains: {pod_chains}"
    if any("untracked" in t or "prednat" in t for t in pod_chains):
        return f"an untracked or pre-DNAT policy reached a workload chain: {pod_chains}"
    fwd = model.tables["filter"]["cali-fhfw-eth0"].rules
    if not any(r.action == ("jump", "cali-pi-hosts/hosts.host-forward") for r in fwd):
        return "cali-fhfw-eth0 does not jump to host-forward"
    plain = generate.ScenarioGen(1, 8, 6).build()
    hep = generate.ScenarioGen(1, 8, 6, host_endpoints=True).build()
    extra = [p for p in hep["policies"] if p["name"].startswith("hep-")]
    if [p for p in hep["policies"] if not p["name"].startswith("hep-")] != plain["policies"] or \
            hep["pods"] != plain["pods"] or not extra or not hep["host_endpoints"]:
        return "--host-endpoints changed the rest of the scenario, or added nothing"
    classes = {scn.hep_policy_class(scn.normalise(dict(hep))["policies"][hep["policies"].index(p)]) for p in extra}
    if classes != {"normal", "forward", "pre_dnat", "untracked"}:
        return f"generated host-endpoint policy classes {classes}"
    return None


def check_seed_pair(listing: str) -> str | None:
    lines = [line.strip() for line in listing.splitlines()]
    for i in range(len(lines) - 1):
        if lines[i] == SEED_PAIR[0] and lines[i + 1] == SEED_PAIR[1]:
            return None
    return "end-of-tier NFLOG/drop pair for tier platform not found in `nft list ruleset`"


def check_deterministic(tmp: Path) -> str | None:
    a = json.dumps(generate.ScenarioGen(7, 8, 6).build(), sort_keys=True)
    b = json.dumps(generate.ScenarioGen(7, 8, 6).build(), sort_keys=True)
    if a != b:
        return "generate.py is not deterministic for one seed"
    sc = scn.normalise(json.loads(a))
    f1 = generate.FlowGen(sc, 3).flows(50)
    if f1 != generate.FlowGen(sc, 3).flows(50):
        return "flow generation is not deterministic"
    if not any(f["to"].startswith("pod:") for f in f1):
        return "no pod flows generated"
    return None


def check_service_shapes(tmp: Path) -> str | None:
    multi = [(seed, svc) for seed in (1, 2, 3) for svc in generate.ScenarioGen(seed, 8, 6).build()["services"]
             if svc["shape"] == "multi-endpoint"]
    if not multi:
        return "generated seeds 1-3 have no multi-endpoint service"
    single = generate.ScenarioGen(1, 8, 6, single_endpoint=True).build()
    if any(s["shape"] != "single-endpoint" for s in single["services"]):
        return "--single-endpoint-services gave a multi-endpoint service"
    seed, name = multi[0][0], multi[0][1]["name"]
    sc = scn.normalise(generate.ScenarioGen(seed, 8, 6).build())
    svc = next(s for s in sc["services"] if s["name"] == name)
    n = len(scn.pods_for_service(sc, svc))
    if not 2 <= n <= 4:
        return f"gen-{seed} {svc['name']}: {n} endpoints"
    nft = render.kube_nft(sc)
    if f"numgen random mod {n} vmap" not in nft:
        return f"gen-{seed} {svc['name']}: no `numgen random mod {n}` in kube-proxy's nft table"
    rules = "\n".join(render.kube_iptables(sc)["nat"]["rules"])
    probs = [f"--probability {1 / k:.10f}" for k in range(n, 1, -1)]
    if not all(p in rules for p in probs):
        return f"gen-{seed} {svc['name']}: kube-proxy iptables chain lacks {probs}"
    bad = json.loads(json.dumps(sc))
    bad["services"][sc["services"].index(svc)]["shape"] = "single-endpoint"
    try:
        scn.normalise(bad)
        return "shape single-endpoint accepted for a service with several endpoints"
    except scn.ScenarioError:
        pass
    return None


def check_named_ports() -> str | None:
    sc = scn.normalise(generate.ScenarioGen(2, 8, 6).build())
    rules = [r for p in sc["policies"] for r in p["ingress"] + p["egress"] if r["dst"]["named_ports"]]
    if not rules:
        return "generated seed 2 has no named-port rule"
    nft = render.NftRenderer(render.FelixModel(sc, nft=True)).render()
    ipt = render.IptRenderer(render.FelixModel(sc, nft=False))
    if "type ipv4_addr . inet_proto . inet_service" not in nft or \
            "ip daddr . meta l4proto . th dport @cali40n-" not in nft:
        return "nftables layout: no named-port set or match"
    if "hash:ip,port" not in ipt.ipsets() or " dst,dst" not in ipt.render(render.kube_iptables(sc)):
        return "iptables-nft layout: no hash:ip,port ipset or dst,dst match"
    # Members: a hand-made scenario, two pods naming "web" differently, one selected.
    hand = scn.normalise({"pods": [
        {"namespace": "a", "name": "p1", "ip": "10.65.0.2", "labels": {"r": "x"},
         "serve": [{"proto": "tcp", "port": 80, "name": "web"}]},
        {"namespace": "a", "name": "p2", "ip": "10.65.0.3", "labels": {"r": "y"},
         "serve": [{"proto": "tcp", "port": 8080, "name": "web"}, {"proto": "udp", "port": 53, "name": "web"}]}]})
    everyone = scn.named_port_members(hand, None, "tcp", "web")
    if everyone != [("10.65.0.2", "tcp", 80), ("10.65.0.3", "tcp", 8080)]:
        return f"named_port_members without selector: {everyone}"
    sel = {"namespace": "a", "namespace_selector": None, "labels": {"r": "y"}}
    if scn.named_port_members(hand, sel, "udp", "web") != [("10.65.0.3", "udp", 53)]:
        return "named_port_members with a selector and udp"
    for bad in ({"protocol": "tcp", "dst": {"named_ports": ["web"], "ports": [80]}},
                {"protocol": "tcp", "dst": {"named_ports": ["web", "tls"]}},
                {"protocol": "icmp", "dst": {"named_ports": ["web"]}}):
        try:
            scn.normalise_rule("t", bad)
            return f"rule accepted: {bad}"
        except scn.ScenarioError:
            pass
    return None


def check_random_compare() -> str | None:
    """differential.compare_random on made-up kernel picks and dpinspect outcomes."""
    import differential
    rule = {"family": "ip", "table": "filter", "chain": "cali-tw-x", "handle": 7}
    other = {**rule, "handle": 9}

    def outcome(ep, verdict, r):
        return {"choice": "", "verdict": verdict, "rule": r, "summary": "",
                "nat": [{"kind": "dnat", "hook": "prerouting", "to": ep, "rule": {}}]}

    def pick(ep, verdict, r, sport=20000):
        return {"sport": sport, "endpoint": ep, "verdict": verdict, "deciding_rule": r}

    doc = {"verdict": "indeterminate", "indeterminate_reason": {"why": "cannot decide: the verdict depends on "
           "a random choice (load balancing); see outcomes", "expression": "numgen", "rule": {}},
           "outcomes": [outcome("10.65.0.2:80", "allow", rule), outcome("10.65.0.3:80", "deny", other)]}
    both = [pick("10.65.0.2:80", "ACCEPT", rule), pick("10.65.0.3:80", "DROP", other, 20001)]
    cases = [
        ("both endpoints as outcomes", both, doc, ""),
        ("an outcome never picked", both[:1], doc, "verdict"),
        ("a pick with another rule", [both[0], pick("10.65.0.3:80", "DROP", rule)], doc, "rule"),
        ("a pick with another verdict", [both[0], pick("10.65.0.3:80", "ACCEPT", other)], doc, "verdict"),
        ("an undecided outcome", both, {**doc, "outcomes": [doc["outcomes"][0],
                                                            outcome("10.65.0.3:80", "indeterminate", None)]},
         "indeterminate"),
    ]
    for name, picks, answer, want in cases:
        got = differential.compare_random({"picks": picks}, answer).problem.split(":")[0]
        if got != want:
            return f"{name}: problem {got!r}, want {want!r}"
    return None


def main() -> int:
    if os.geteuid() != 0:
        print("test_render.py: needs root (network namespaces); skipped")
        return 0
    passed = failed = 0

    def report(name: str, error: str | None) -> None:
        nonlocal passed, failed
        if error:
            failed += 1
            print(f"FAIL {name}: {error}")
        else:
            passed += 1
            print(f"ok   {name}")

    with tempfile.TemporaryDirectory(prefix="dpl-render-") as tmpdir:
        tmp = Path(tmpdir)
        report("generate: deterministic", check_deterministic(tmp))
        report("service shapes", check_service_shapes(tmp))
        report("named ports", check_named_ports())
        report("differential: random endpoints", check_random_compare())
        report("host endpoints", check_host_endpoints())
        for name, path in scenarios(tmp):
            sc = scn.load(path)
            for layout in render.LAYOUTS:
                out = tmp / f"{name}-{layout}"
                try:
                    render.render(sc, layout, out)
                except Exception as e:  # a renderer bug must fail the check, not abort the run
                    report(f"{name} {layout}: render", f"{type(e).__name__}: {e}")
                    continue
                ok, err, listing = load(out, layout)
                report(f"{name} {layout}: load", None if ok else err)
                if ok and name.startswith("seed-platform") and layout == "iptables-nft":
                    report(f"{name} {layout}: seed NFLOG/drop pair", check_seed_pair(listing))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
