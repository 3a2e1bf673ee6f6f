#!/usr/bin/env python3
"""The seed walkthrough on a real (namespaced) node, in both layouts, with the kernel as the judge.

For nftables and iptables-nft:
  1. lab up tests/lab/scenarios/seed.json
  2. from client: HTTP GET to frontend via its service IP and directly -> "HTTP/1.1 404 Not Found"
  3. from client: TCP to management-ui:9001 times out
  4. dpinspect: client->frontend:80 allow, client->management-ui:9001 deny with
     decided_by.kind == end_of_tier_deny; both decided_by rules equal the kernel's deciding rule
  5. sending the denied flow again moves, among all drop rules, exactly the counter of the rule
     dpinspect named, by one packet
Then seed-platform.json (iptables-nft): a client flow the kernel drops right after
`log prefix "DPE|platform"`; dpinspect names that drop rule and its summary mentions tier platform.

Usage: test_seed_walkthrough.py --dpinspect build/cli/dpinspect   (root; exit 77 = skipped)
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import differential  # noqa: E402
import labnet  # noqa: E402
import oracle  # noqa: E402

SKIP = 77
CLIENT, FRONTEND, MGMT = "client/client", "stars/frontend", "management-ui/management-ui"


class Checks:
    """Collects failures so one run reports every broken step, not just the first."""

    def __init__(self):
        self.failures: list[str] = []

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}" + (f"\n       {detail}" if detail and not ok else ""),
              flush=True)
        if not ok:
            self.failures.append(what)
        return ok


# --------------------------------------------------------------------------------------------
# Client-side probes from inside a pod


def http_status_line(ns: str, ip: str, port: int, timeout: float = 3.0) -> str:
    """First line of the answer to a plain HTTP GET (what `curl -i` would print first)."""
    with labnet.in_netns(ns):
        sock = socket.socket()
    with sock:
        sock.settimeout(timeout)
        sock.connect((ip, port))
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def connect_times_out(ns: str, ip: str, port: int, timeout: float = 1.5) -> bool:
    with labnet.in_netns(ns):
        sock = socket.socket()
    with sock:
        sock.settimeout(timeout)
        try:
            sock.connect((ip, port))
        except socket.timeout:
            return True
        except OSError:
            return False
    return False


# --------------------------------------------------------------------------------------------
# Ruleset helpers


def drop_rules(ns: str) -> set[tuple]:
    """(family, table, chain, handle) of every rule ending in drop or reject."""
    found = set()
    for obj in oracle.list_ruleset(ns):
        rule = obj.get("rule")
        if rule and any(isinstance(e, dict) and ("drop" in e or "reject" in e) for e in rule.get("expr", [])):
            found.add((rule["family"], rule["table"], rule["chain"], rule["handle"]))
    return found


def previous_rule(ns: str, ref: tuple) -> dict | None:
    """The rule just before `ref` in its chain (nft -j lists rules in chain order)."""
    prev = None
    for obj in oracle.list_ruleset(ns):
        rule = obj.get("rule")
        if not rule or (rule["family"], rule["table"], rule["chain"]) != ref[:3]:
            continue
        if rule["handle"] == ref[3]:
            return prev
        prev = rule
    return None


def log_prefix(rule: dict | None) -> str | None:
    for e in (rule or {}).get("expr", []):
        if isinstance(e, dict) and isinstance(e.get("log"), dict):
            return e["log"].get("prefix")
    return None


def flow(lab: labnet.Lab, src_pod: str, dst_ip: str, port: int, to: str) -> dict:
    return {"src": lab.pod(src_pod)["ip"], "dst": dst_ip, "proto": "tcp", "dport": port,
            "from": f"pod:{src_pod}", "to": to}


def service_ip(lab: labnet.Lab, key: str) -> str:
    ns, name = key.split("/")
    for svc in lab.topology["services"]:
        if svc["namespace"] == ns and svc["name"] == name:
            return svc["cluster_ip"]
    raise labnet.LabError(f"no service {key}")


def serve_port(lab: labnet.Lab, key: str) -> int:
    return int(lab.pod(key)["serve"][0]["port"])


def dp_explain(c: Checks, dpinspect: str, lab: labnet.Lab, f: dict, kernel: dict, want: str) -> dict:
    """Ask dpinspect about f; check verdict `want` and that its rule is the kernel's deciding rule."""
    dp = differential.run_dpinspect(dpinspect, lab.node_ns, f, kernel.get("sport"))
    doc = dp["json"] or {}
    what = f"{f['src']} -> {f['dst']}:{f['dport']}"
    c.check(doc.get("verdict") == want, f"dpinspect says {want} for {what}",
            f"got {doc.get('verdict')} (exit {dp['exit']}) reason={doc.get('indeterminate_reason')!r} "
            f"{dp['stderr'][-300:]}")
    c.check(differential.same_rule(differential.kernel_rule(kernel), differential.dp_rule(doc)),
            f"dpinspect's decided_by rule is the kernel's deciding rule for {what}",
            f"dpinspect {differential.dp_rule(doc)} vs kernel {differential.kernel_rule(kernel)}")
    return doc


# --------------------------------------------------------------------------------------------
# The walkthrough


def walkthrough(c: Checks, scenario: Path, layout: str, dpinspect: str) -> None:
    print(f"== seed walkthrough, {layout}", flush=True)
    with labnet.Lab.up(f"wt{os.getpid()}{layout[0]}", scenario, layout, owner_pid=os.getpid()) as lab:
        client_ns = lab.endpoint_ns(f"pod:{CLIENT}")
        fe_ip, fe_port = lab.pod(FRONTEND)["ip"], serve_port(lab, FRONTEND)
        mg_ip, mg_port = lab.pod(MGMT)["ip"], serve_port(lab, MGMT)
        svc_ip = service_ip(lab, FRONTEND)
        for ip in (svc_ip, fe_ip):
            try:
                status = http_status_line(client_ns, ip, fe_port)
            except OSError as e:
                status = f"error: {e}"
            c.check(status == "HTTP/1.1 404 Not Found", f"client GET http://{ip}:{fe_port}/ -> 404", status)
        c.check(connect_times_out(client_ns, mg_ip, mg_port), f"client -> {mg_ip}:{mg_port} times out")

        allowed = flow(lab, CLIENT, fe_ip, fe_port, f"pod:{FRONTEND}")
        denied = flow(lab, CLIENT, mg_ip, mg_port, f"pod:{MGMT}")
        with oracle.Oracle(lab, counters=True) as orc:
            k_allow = orc.run_flow(allowed)
            k_deny = orc.run_flow(denied)
            c.check(k_allow["verdict"] == "ACCEPT" and k_deny["verdict"] == "DROP",
                    "kernel: allowed flow ACCEPT, denied flow DROP", f"{k_allow['verdict']} / {k_deny['verdict']}")
            dp_explain(c, dpinspect, lab, allowed, k_allow, "allow")
            doc = dp_explain(c, dpinspect, lab, denied, k_deny, "deny")
            kind = (doc.get("decided_by") or {}).get("kind")
            c.check(kind == "end_of_tier_deny", "deny decided_by.kind == end_of_tier_deny", f"got {kind}")

            named = differential.dp_rule(doc)
            # Pods by name resolve through the veths the lab named as Felix does: the same answer.
            dp = differential.run_dpinspect(dpinspect, lab.node_ns, dict(denied, src=CLIENT, dst=MGMT),
                                            k_deny.get("sport"))
            ndoc = dp["json"] or {}
            c.check(ndoc.get("verdict") == "deny" and differential.dp_rule(ndoc) == named,
                    f"--src {CLIENT} --dst {MGMT}: the same verdict and rule as by address",
                    f"exit {dp['exit']} {dp['stderr']} {ndoc.get('verdict')} {differential.dp_rule(ndoc)}")
            again = orc.run_flow(denied)
            drops = drop_rules(lab.node_ns)
            moved = {(m["family"], m["table"], m["chain"], m["handle"]): m["packets"] for m in again["counters"]}
            moved_drops = {k: v for k, v in moved.items() if k in drops}
            ok = named is not None and list(moved_drops) == [(named[0] or "ip", *named[1:])] and \
                list(moved_drops.values()) == [1]
            c.check(ok, "resending the denied flow moves exactly dpinspect's drop rule counter (by 1)",
                     f"dpinspect named {named}; drop counters moved: {moved_drops}")


def platform(c: Checks, scenario: Path, dpinspect: str) -> None:
    print("== seed-platform, iptables-nft", flush=True)
    with labnet.Lab.up(f"wt{os.getpid()}p", scenario, "iptables-nft", owner_pid=os.getpid()) as lab:
        candidates = [flow(lab, CLIENT, p["ip"], int(s["port"]), f"pod:{p['namespace']}/{p['name']}")
                      for p in lab.topology["pods"] if f"{p['namespace']}/{p['name']}" != CLIENT
                      for s in p.get("serve", []) if s.get("proto", "tcp") == "tcp"]
        found = []
        with oracle.Oracle(lab, counters=False) as orc:
            for f in candidates:
                k = orc.run_flow(f)
                ref = differential.kernel_rule(k)
                if k["verdict"] == "DROP" and log_prefix(previous_rule(lab.node_ns, ref)) == "DPE|platform":
                    found.append((f, k))
        if not c.check(bool(found), "some client flow is dropped right after log prefix \"DPE|platform\"",
                       f"kernel verdicts for {len(candidates)} client flows showed none"):
            return
        for f, k in found:
            doc = dp_explain(c, dpinspect, lab, f, k, "deny")
            named = differential.dp_rule(doc)
            prev = previous_rule(lab.node_ns, (named[0] or "ip", *named[1:])) if named else None
            c.check(log_prefix(prev) == "DPE|platform",
                    f"dpinspect's rule follows log prefix \"DPE|platform\" ({f['dst']}:{f['dport']})",
                    f"rule {named}, previous rule's log prefix {log_prefix(prev)!r}")
            summary = (doc.get("decided_by") or {}).get("summary") or ""
            c.check("platform" in summary, "decided_by.summary mentions tier platform", summary)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dpinspect", required=True)
    ap.add_argument("--scenarios", type=Path, default=HERE / "scenarios")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: test_seed_walkthrough needs root (network namespaces, nftables)")
        return SKIP
    if why := labnet.netns_unusable():
        print(f"SKIP: test_seed_walkthrough: {why}")
        return SKIP
    # A SIGTERM (ctest timeout, Ctrl-C in a wrapper) must still run the labs' teardown.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    labnet.reap_stale()
    c = Checks()
    for layout in labnet.LAYOUTS:
        walkthrough(c, args.scenarios / "seed.json", layout, args.dpinspect)
    platform(c, args.scenarios / "seed-platform.json", args.dpinspect)
    print(f"{'FAILED: ' + '; '.join(c.failures) if c.failures else 'all walkthrough checks passed'}")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
