#!/usr/bin/env python3
"""The seed walkthrough on the lab's eBPF node (v3.30 and v3.32), with the kernel as the judge.

For each version:
  1. lab up --dataplane ebpf tests/lab/scenarios/seed.json
  2. from client: HTTP GET to frontend via its service IP and directly -> "HTTP/1.1 404 Not Found"
  3. from client: TCP to management-ui:9001 (service IP and direct) times out
  4. the oracle on the denied flow: DROPPED_BY_POLICY moved on the client's interface at tc ingress
     (its egress policy), the deciding rule is tier default's end-of-tier deny (manifest), and it is
     the only rule counter that moved; on the allowed flow ACCEPTED_BY_POLICY moved at client tc
     ingress (rule allow-stars 0) and at frontend tc egress
  5. `lab exec N --mnt --` sees the pinned maps in the lab's bpffs; the host's /sys/fs/bpf does not
  6. with --dpinspect: `dpinspect inspect --dataplane ebpf` on the denied flow (in the lab's mount
     namespace and node netns) exits 1 and reads "end-of-tier implicit deny in tier default, egress
     of" the client's workload, naming the client's egress policy program (p4E_<iface>) and the rule
     id the kernel recorded
  7. with --dpinspect: `inspect --counters --interval` on the denied flow while the client sends
     SENT real SYNs of it (once dpinspect said the first read is done): the deciding rule's
     counter moved by exactly SENT, as the kernel's cali_rule_ctrs2 entry (read by the oracle)
     says, and so did the client's tc ingress DROPPED_BY_POLICY (cali_counters*); with --rule-counters-probe, LoadedDataplane::read_rule_counters (read twice through one
     loaded node) lists that rule id with the same packets, attributed to tier default's end of
     tier in the client's egress program
  8. with --dpinspect: `watch --source counters -o json` (polling every 0.2 s) while the client
     sends SENT denied SYNs and one allowed HTTP request, stopped with SIGINT: the deciding rule id's
     deltas sum to SENT, attributed to the end of the tier the oracle names (deny, client egress,
     tc ingress hook) with that hook's DROPPED_BY_POLICY moving by SENT too, no allow line, and the
     summary ranks it by SENT packets; with --all the
     allowed request shows as allow-stars rule 0; as nobody it exits 4; while watch runs, the lab
     re-creates cali_rule_ctrs2 as Felix does (a new map at the pin, the programs loaded again):
     one 'map re-created: baseline reset' notice with both ids, SENT packets before it and the
     later SYNs after it, never a reset or negative delta
  9. after `lab down`: no dpl- netns, no bpf mount left, /sys/fs/bpf as before

Usage: test_ebpf_walkthrough.py [--ebpf-attach build/bpf/dpl-ebpf-attach] [--dpinspect build/cli/dpinspect]
       [--rule-counters-probe build/tests/ebpf_backend/dpinspect_rule_counters_probe]
       (root; exit 77 = skipped)
"""

from __future__ import annotations

import argparse
import os
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import labnet  # noqa: E402
import oracle  # noqa: E402
from test_differential_ebpf import host_state  # noqa: E402
from test_seed_walkthrough import Checks, connect_times_out, flow, http_status_line, service_ip  # noqa: E402

SKIP = 77
CLIENT, FRONTEND, MGMT = "client/client", "stars/frontend", "management-ui/management-ui"


def dpinspect_denied_text(c: Checks, lab: labnet.Lab, dpinspect: str, mg_ip: str, client_if: str,
                          rule_id: int | None) -> None:
    """The seed's denied flow as dpinspect explains it on the eBPF node (text report)."""
    import ebpfnode
    info = lab.info["ebpf"]
    argv = [dpinspect, "inspect", "--dataplane", "ebpf", "--bpffs", info["globals"],
            "--policy-debug-dir", info["policy_dir"], "--src", lab.pod(CLIENT)["ip"], "--dst", mg_ip,
            "--proto", "tcp", "--dport", "9001", "--ct", "new"]
    cp = subprocess.run(ebpfnode.in_node_argv(lab.name, argv), capture_output=True, text=True, timeout=60)
    text = cp.stdout
    c.check(cp.returncode == 1, "dpinspect: the denied flow exits 1 (deny)", f"exit {cp.returncode} {cp.stderr.strip()}")
    c.check(f"end-of-tier implicit deny in tier default, egress of workload {client_if}" in text
            or ("end-of-tier implicit deny in tier default, egress of" in text and client_if in text),
            "dpinspect: the denied flow reads 'end-of-tier implicit deny in tier default, egress of' the client",
            text[:600])
    prog = f"p4E_{client_if}"[:15]
    c.check(prog in text, f"dpinspect: the denied flow names the client's egress policy program {prog}", text[:600])
    ids = [] if rule_id is None else [f"rule id {rule_id:#x}", f"rule id {rule_id}"]
    c.check(any(i in text for i in ids), f"dpinspect: the denied flow names the rule id the kernel recorded ({ids})",
            text[:600])


SENT = 5  # SYNs sent during the --counters interval


def send_syns(ns: str, ip: str, port: int, n: int) -> None:
    """n connection attempts, one SYN each: closed before the first retransmission (1 s), and a
    socket closed in SYN_SENT sends no RST, so exactly n packets of the flow leave the client."""
    with labnet.in_netns(ns):
        socks = [socket.socket() for _ in range(n)]
    for sock in socks:
        sock.setblocking(False)
        sock.connect_ex((ip, port))
    for sock in socks:
        sock.close()


def dpinspect_counters(c: Checks, lab: labnet.Lab, dpinspect: str, probe: str | None, mg_ip: str,
                       rule_id: int | None) -> None:
    """inspect --counters on the seed's denied flow counts the SYNs the client sends."""
    import ebpfnode
    info = lab.info["ebpf"]
    where = ["--bpffs", info["globals"], "--policy-debug-dir", info["policy_dir"]]
    client_ns = lab.endpoint_ns(f"pod:{CLIENT}")
    argv = [dpinspect, "inspect", "--dataplane", "ebpf", *where, "--src", lab.pod(CLIENT)["ip"], "--dst", mg_ip,
            "--proto", "tcp", "--dport", "9001", "--ct", "new", "--counters", "--interval", "1.5", "-o", "json"]
    with oracle.for_lab(lab, timeout=1.0) as orc:
        p = subprocess.Popen(ebpfnode.in_node_argv(lab.name, argv), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        ready = p.stderr.readline()  # the first read is done: the interval starts
        if "counter read" in ready:
            send_syns(client_ns, mg_ip, 9001, SENT)
        out, err = p.communicate(timeout=60)
        kernel = orc.rule_counters().get(rule_id) if rule_id is not None else None
        probed = None
        if probe:
            cp = subprocess.run(ebpfnode.in_node_argv(lab.name, [probe, *where, "--reads", "2"]),
                                capture_output=True, text=True, timeout=60)
            lines = [json.loads(line) for line in cp.stdout.splitlines() if line.strip()]
            probed = (cp.returncode, cp.stderr.strip(), lines)
    try:
        cnt = json.loads(out).get("counters") or {}
    except json.JSONDecodeError:
        cnt = {}
    rule = cnt.get("rule") or {}
    want_id = f"{rule_id:#x}" if rule_id is not None else None
    c.check(p.returncode == 1 and "counter read" in ready and (cnt.get("delta") or {}).get("packets") == SENT,
            f"dpinspect --counters: the deciding rule's delta equals the {SENT} SYNs sent",
            f"exit {p.returncode}, stderr {ready.strip()} {err.strip()[-300:]}, counters {cnt}")
    c.check(rule.get("calico_rule_id") == want_id and (cnt.get("after") or {}).get("packets") == kernel
            and (cnt.get("delta") or {}).get("bytes") is None and cnt.get("note") is None,
            "dpinspect --counters: rule id the kernel recorded, `after` = the kernel's cali_rule_ctrs2 sum, "
            "no bytes (eBPF rule counters count packets)", f"want {want_id} = {kernel}, got {cnt}")
    client_if = lab.pod(CLIENT)["iface"]
    related = {r.get("counter"): r.get("delta") for r in cnt.get("related") or []}
    accepted = related.pop(f"tc ingress {client_if} ACCEPTED_BY_POLICY", None)
    c.check(related == {f"tc ingress {client_if} DROPPED_BY_POLICY": SENT} and isinstance(accepted, int),
            "dpinspect --counters: the client's tc ingress DROPPED_BY_POLICY moved by the same SENT "
            "(and ACCEPTED_BY_POLICY is read)", str(cnt.get("related")))
    if probed is None:
        return
    rc, perr, lines = probed
    mine = [e for e in lines if (e.get("rule") or {}).get("calico_rule_id") == want_id]
    c.check(rc == 0 and [e["read"] for e in mine] == [0, 1] and all(e["packets"] == kernel for e in mine)
            and all(e["bytes"] is None for e in mine),
            "read_rule_counters: the deciding rule id with the kernel's packets, on two reads of one load",
            f"exit {rc} {perr[-300:]}, want {want_id} = {kernel}, got {mine}")
    text = (mine[0]["rule"].get("text") or "") if mine else ""
    prog = f"p4E_{lab.pod(CLIENT)['iface']}"[:15]
    c.check(text.startswith(f"rule id {want_id}: end of tier default") and prog in text,
            "read_rule_counters: the id is attributed to tier default's end of tier in the client's egress "
            "program", text)


def run_watch(lab: labnet.Lab, dpinspect: str, extra: list[str], send) -> tuple[int, str, list[dict]]:
    """`watch --source counters -o json` in the node while `send()` runs, stopped with SIGINT after
    the next polls: (exit code, stderr, JSON lines)."""
    import ebpfnode
    info = lab.info["ebpf"]
    argv = [dpinspect, "watch", "--source", "counters", "--bpffs", info["globals"], "--policy-debug-dir",
            info["policy_dir"], "--interval", "0.2", "-o", "json", *extra]
    # nsenter execs dpinspect (no --fork): the signal reaches it.
    p = subprocess.Popen(ebpfnode.in_node_argv(lab.name, argv), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    ready = p.stderr.readline()  # after the baseline read
    if "watching the rule counters" in ready:
        send()
        time.sleep(1.0)  # several polls after the traffic
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    lines = []
    for line in out.splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            lines.append({"unparsable": line})
    return p.returncode, ready + err, lines


def dpinspect_watch(c: Checks, lab: labnet.Lab, dpinspect: str, mg_ip: str, fe_ip: str, rule_id: int | None,
                    tier: str | None) -> None:
    """watch --source counters reports the denied SYNs against the deciding rule, and the allowed
    flow only with --all."""
    import ebpfnode
    client_ns = lab.endpoint_ns(f"pod:{CLIENT}")
    client_if = lab.pod(CLIENT)["iface"]
    want_id = f"{rule_id:#x}" if rule_id is not None else None

    def traffic():
        send_syns(client_ns, mg_ip, 9001, SENT)
        http_status_line(client_ns, fe_ip, 80)

    rc, err, lines = run_watch(lab, dpinspect, [], traffic)
    events = [e for e in lines if e.get("type") == "event"]
    mine = [e for e in events if (e.get("counter") or {}).get("rule_id") == want_id]
    moved = sum((e["counter"].get("packets") or 0) for e in mine)
    c.check(rc == 0 and moved == SENT and all(e["counter"]["change"] == "moved" for e in mine),
            f"watch counters: the deciding rule id's deltas sum to the {SENT} SYNs sent",
            f"exit {rc} {err.strip()[-300:]}, want {want_id}, got {lines}")
    dropped = sum(h.get("delta") or 0 for e in mine for h in e["counter"].get("hook_counters") or []
                  if h.get("counter") == f"tc ingress {client_if} DROPPED_BY_POLICY")
    c.check(dropped == SENT, f"watch counters: the client's tc ingress DROPPED_BY_POLICY moved by the same {SENT}",
            str([e["counter"].get("hook_counters") for e in mine]))
    expl = (mine[0].get("explanation") or {}) if mine else {}
    c.check(bool(mine) and mine[0].get("verdict") == "deny" and expl.get("kind") == "end_of_tier_deny"
            and expl.get("tier") == tier and expl.get("direction") == "egress"
            and expl.get("endpoint") == client_if
            and mine[0]["counter"].get("hook") == f"tc ingress {client_if}",
            f"watch counters: attributed to the end of tier {tier} in the client's egress program (tc ingress)",
            str(mine[:1]))
    c.check(bool(mine) and not any(e.get("verdict") in ("allow", "pass") for e in events),
            "watch counters: no allow line without --all (the allowed request was sent too)", str(events))
    summary = lines[-1] if lines else {}
    top = (summary.get("top_counted") or [{}])[0]
    c.check(summary.get("type") == "summary" and top.get("packets") == SENT
            and f"end of tier {tier}" in (top.get("reason") or ""),
            f"watch counters: the summary's top rule counted {SENT} packets", str(summary))

    rc, err, lines = run_watch(lab, dpinspect, ["--all"], lambda: http_status_line(client_ns, fe_ip, 80))
    allows = [e for e in lines if e.get("type") == "event" and e.get("verdict") == "allow"]
    client_allow = [e for e in allows if (e.get("explanation") or {}).get("endpoint") == client_if]
    ex = (client_allow[0].get("explanation") or {}) if client_allow else {}
    c.check(rc == 0 and len(client_allow) == 1 and "allow-stars" in (ex.get("policy") or "")
            and ex.get("rule_index") == 0 and client_allow[0]["counter"].get("packets") == 1,
            "watch counters --all: the allowed request is one packet of allow-stars rule 0 (client egress)",
            f"exit {rc} {err.strip()[-300:]}, got {lines}")

    info = lab.info["ebpf"]
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
            dpinspect, "watch", "--source", "counters", "--bpffs", info["globals"], "--policy-debug-dir",
            info["policy_dir"], "--timeout", "1"]
    cp = subprocess.run(ebpfnode.in_node_argv(lab.name, argv), capture_output=True, text=True, timeout=30)
    c.check(cp.returncode == 4 and "watch needs root" in cp.stderr,
            "watch counters without privileges exits 4 saying what it needs",
            f"exit {cp.returncode} {cp.stderr.strip()[-300:]}")


def recreate_rule_counters(lab: labnet.Lab) -> tuple[int, int]:
    """What Felix does on a restart or a resize: a new cali_rule_ctrs2 of the same layout pinned at
    the same path (created beside it, renamed over it: the pin is never missing), and the tc
    programs loaded again over the pins (dpl-ebpf-attach, as the lab built them), so that only the
    new map counts from now on. Returns (old id, new id)."""
    import ebpfnode
    info = lab.info["ebpf"]
    path = os.path.join(info["globals"], "cali_rule_ctrs2")
    tmp = os.path.join(info["globals"], "dpl_new_ctrs")

    def show(p: str) -> dict:
        return json.loads(ebpfnode.run_in_node(lab.name, ["bpftool", "-j", "map", "show", "pinned", p]).stdout)

    old = show(path)
    ebpfnode.run_in_node(lab.name, ["bpftool", "map", "create", tmp, "type", old["type"], "key",
                                    str(old["bytes_key"]), "value", str(old["bytes_value"]), "entries",
                                    str(old["max_entries"]), "name", old["name"]])
    ebpfnode.run_in_node(lab.name, ["mv", "-f", tmp, path])
    progs = info["tc_programs"]
    argv = [ebpfnode.find_attach_tool(), "--globals", info["globals"], "--version", info["calico_version"],
            "--host-ip", lab.topology["node"]["ip"]]
    for iface in progs["ifaces"]:
        argv += ["--iface", iface]
    for iface in progs["heps"]:
        argv += ["--hep", iface]
    ebpfnode.run_in_node(lab.name, argv)
    return old["id"], show(path)["id"]


def dpinspect_watch_recreated(c: Checks, lab: labnet.Lab, dpinspect: str, mg_ip: str, rule_id: int | None) -> None:
    """Felix re-creates cali_rule_ctrs2 while watch runs: watch says so once with both map ids, takes
    the new map as its baseline (no reset, no negative delta) and counts the SYNs sent after it."""
    client_ns = lab.endpoint_ns(f"pod:{CLIENT}")
    client_if = lab.pod(CLIENT)["iface"]
    want_id = f"{rule_id:#x}" if rule_id is not None else None
    after_n = 3
    ids: list = []

    def traffic():
        send_syns(client_ns, mg_ip, 9001, SENT)
        time.sleep(0.6)  # counted in the old map, read by the next polls
        try:
            ids.extend(recreate_rule_counters(lab))
        except labnet.LabError as e:
            ids.append(str(e))
        time.sleep(0.6)  # the re-created map found and read as the baseline
        send_syns(client_ns, mg_ip, 9001, after_n)

    rc, err, lines = run_watch(lab, dpinspect, [], traffic)
    c.check(len(ids) == 2 and ids[0] != ids[1], "watch counters re-created: the lab replaced cali_rule_ctrs2",
            str(ids))
    notices = [i for i, e in enumerate(lines) if e.get("type") == "notice"]
    recreated = [i for i in notices if lines[i].get("kind") == "map_recreated"]
    n = lines[recreated[0]] if recreated else {}
    c.check(len(notices) == 1 and len(recreated) == 1 and n.get("map", "").endswith("/cali_rule_ctrs2")
            and [n.get("old_id"), n.get("new_id")] == ids
            and "map re-created: baseline reset" in n.get("message", ""),
            "watch counters re-created: one 'map re-created: baseline reset' notice with the old and new map ids",
            f"exit {rc} {err.strip()[-300:]}, ids {ids}, got {[lines[i] for i in notices]}")
    cut = recreated[0] if recreated else len(lines)
    mine = [(i, e) for i, e in enumerate(lines) if e.get("type") == "event"
            and (e.get("counter") or {}).get("rule_id") == want_id]
    before = sum(e["counter"].get("packets") or 0 for i, e in mine if i < cut)
    after = sum(e["counter"].get("packets") or 0 for i, e in mine if i > cut)
    c.check(rc == 0 and before == SENT and after == after_n and all(e["counter"]["change"] == "moved" for _, e in mine),
            f"watch counters re-created: {SENT} packets before the notice, {after_n} after, all moved "
            "(no reset, no negative delta)", f"before {before} after {after}: {[e for _, e in mine]}")
    dropped = sum(h.get("delta") or 0 for _, e in mine for h in e["counter"].get("hook_counters") or []
                  if h.get("counter") == f"tc ingress {client_if} DROPPED_BY_POLICY")
    c.check(dropped == SENT + after_n,
            "watch counters re-created: the hook's DROPPED_BY_POLICY (its map kept) moved by all the SYNs",
            str([e["counter"].get("hook_counters") for _, e in mine]))
    summary = lines[-1] if lines else {}
    c.check(summary.get("type") == "summary"
            and [x.get("kind") for x in summary.get("notices") or []] == ["map_recreated"],
            "watch counters re-created: the summary lists the notice", str(summary))


def walkthrough(c: Checks, seed: Path, version: str, dpinspect: str | None = None,
                probe: str | None = None) -> None:
    name = f"ew{os.getpid() % 100000}{version.replace('.', '')}"
    print(f"== seed.json, eBPF node v{version} (lab {name})", flush=True)
    with labnet.Lab.up(name, seed, labnet.EBPF, owner_pid=os.getpid(), calico_version=version) as lab:
        client_ns = lab.endpoint_ns(f"pod:{CLIENT}")
        fe_ip, fe_svc = lab.pod(FRONTEND)["ip"], service_ip(lab, FRONTEND)
        mg_ip, mg_svc = lab.pod(MGMT)["ip"], service_ip(lab, MGMT)
        for ip in (fe_svc, fe_ip):
            try:
                status = http_status_line(client_ns, ip, 80)
            except OSError as e:
                status = f"error {e}"
            c.check(status == "HTTP/1.1 404 Not Found", f"client -> frontend {ip}:80 answers 404", status)
        for ip in (mg_svc, mg_ip):
            c.check(connect_times_out(client_ns, ip, 9001), f"client -> management-ui {ip}:9001 times out")

        client_if = lab.pod(CLIENT)["iface"]
        fe_if = lab.pod(FRONTEND)["iface"]
        with oracle.for_lab(lab, timeout=1.0) as orc:
            denied = orc.run_flow(flow(lab, CLIENT, mg_ip, 9001, f"pod:{MGMT}"))
            allowed = orc.run_flow(flow(lab, CLIENT, fe_svc, 80, f"service:{FRONTEND}"))
        moves = [(m["iface"], m["hook"], m["reason"]) for m in denied["counters"]]
        c.check(not denied["delivered"] and moves == [(client_if, "tc ingress", "dropped_by_policy")],
                "denied flow: only DROPPED_BY_POLICY at the client's tc ingress moved", str(moves))
        rule = (denied.get("deciding_rule") or {}).get("rule") or {}
        c.check(rule.get("end_of_tier") and rule.get("tier") == "default" and rule.get("action") == "deny",
                "denied flow: decided by tier default's end-of-tier deny", str(rule))
        c.check(len(denied["rule_counters"]) == 1 and not denied["problems"],
                "denied flow: that rule's counter is the only one that moved",
                f"{denied['rule_counters']} {denied['problems']}")
        if dpinspect:
            rule_id = (denied.get("deciding_rule") or {}).get("rule_id")
            dpinspect_denied_text(c, lab, dpinspect, mg_ip, client_if, rule_id)
            dpinspect_counters(c, lab, dpinspect, probe, mg_ip, rule_id)
            dpinspect_watch(c, lab, dpinspect, mg_ip, fe_ip, rule_id, rule.get("tier"))
            dpinspect_watch_recreated(c, lab, dpinspect, mg_ip, rule_id)
        moves = sorted((m["iface"], m["hook"], m["reason"]) for m in allowed["counters"])
        want = sorted([(client_if, "tc ingress", "accepted_by_policy"), (fe_if, "tc egress", "accepted_by_policy")])
        c.check(allowed["delivered"] and moves == want,
                "allowed flow via the service: ACCEPTED_BY_POLICY at client tc ingress and frontend tc egress",
                str(moves))
        egress = next((d for d in allowed["decisions"] if d["hook"] == "tc ingress"), {})
        r = egress.get("rule") or {}
        c.check(r.get("name") == "allow-stars" and r.get("rule_index") == 0 and r.get("action") == "allow",
                "allowed flow: client egress decided by allow-stars rule 0", str(r))

        globals_dir = lab.info["ebpf"]["globals"]
        cp = subprocess.run([sys.executable, str(HERE / "lab"), "exec", name, "--mnt", "--", "ls", globals_dir],
                            capture_output=True, text=True)
        c.check(cp.returncode == 0 and "cali_iface4" in cp.stdout.split(),
                "lab exec --mnt sees the pinned maps", cp.stderr.strip() or cp.stdout[:200])
        c.check(not os.path.exists(os.path.join(globals_dir, "cali_iface4")) and
                not any("cali_" in p for p in host_state()["/sys/fs/bpf"]),
                "the host mount namespace sees none of them")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ebpf-attach", help="dpl-ebpf-attach binary (default: found by ebpfnode.py)")
    ap.add_argument("--scenarios", type=Path, default=HERE / "scenarios")
    ap.add_argument("--versions", type=lambda s: s.split(","), default=["3.30", "3.32"])
    ap.add_argument("--dpinspect", help="also check dpinspect's text and --counters for the denied flow")
    ap.add_argument("--rule-counters-probe", help="with --dpinspect: also check read_rule_counters "
                                                  "(tests/ebpf_backend/rule_counters_probe.cpp)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: test_ebpf_walkthrough needs root (network namespaces, BPF)")
        return SKIP
    import ebpfnode
    if why := labnet.netns_unusable() or ebpfnode.unusable():
        print(f"SKIP: test_ebpf_walkthrough: {why}")
        return SKIP
    if args.ebpf_attach:
        os.environ["DPL_EBPF_ATTACH"] = args.ebpf_attach
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    labnet.reap_stale()
    before = host_state(f"{labnet.PREFIX}ew{os.getpid() % 100000}")
    c = Checks()
    for version in args.versions:
        try:
            walkthrough(c, args.scenarios / "seed.json", version, args.dpinspect, args.rule_counters_probe)
        except labnet.LabError as e:
            c.check(False, f"eBPF node v{version} builds and runs", str(e))
    after = host_state(f"{labnet.PREFIX}ew{os.getpid() % 100000}")
    c.check(before == after, "host unchanged after lab down (/sys/fs/bpf, bpf mounts, ip netns list)",
            f"before {before}\n       after  {after}")
    print(f"{'FAILED: ' + '; '.join(c.failures) if c.failures else 'all eBPF walkthrough checks passed'}")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
