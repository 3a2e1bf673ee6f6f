#!/usr/bin/env python3
"""Live evidence against the kernel: `inspect --counters` and `trace`.

Counters: a node namespace sends UDP to itself over lo through an output chain whose rules drop
by destination port, one with a counter and one without. `inspect --counters` must report a delta
equal to the packets sent during its interval, say so when the deciding rule has no counter,
refuse a file source (exit 3) and exit 4 without privileges.

Trace: the seed lab (tests/lab/scenarios/seed.json, nftables layout). For the seed's allowed and
denied flows, `trace` waits, the client sends one real connection attempt, and the kernel's
verdict and path must agree with the static prediction (exit 0 / 1); the temporary table exists
while trace waits and is gone after `kill -9`; a trace nobody answers times out with exit 2;
unprivileged, exit 4. Nothing runs in the root namespace.

    test_live_evidence.py --dpinspect build/cli/dpinspect      (root; exit 77 = skipped)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lab"))

SKIP = 77
NODE = f"dpi-live-{os.getpid()}"
SENT = 7

RULESET = """
table ip t {
	chain out {
		type filter hook output priority 0; policy accept;
		udp dport 9001 counter drop comment "counted"
		udp dport 9002 drop comment "uncounted"
	}
}
table ip6 t6 {
	chain out {
		type filter hook output priority 0; policy accept;
		udp dport 9001 counter drop comment "counted6"
	}
}
"""

SEND = """
import socket, sys
dst = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[2])):
    try:
        s.sendto(b"x", (dst, int(sys.argv[1])))
    except OSError:
        pass  # EPERM: the output chain dropped it, which is the point
"""

failed = 0


def check(ok, what):
    global failed
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    failed += not ok


def sh(*args, ns=None, check=True, stdin=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, check=check, input=stdin)


def send(port, n, dst="127.0.0.1"):
    sh(sys.executable, "-c", SEND, str(port), str(n), dst, ns=NODE)


def flow(port):
    return ["--src", "127.0.0.1", "--dst", "127.0.0.1", "--proto", "udp", "--dport", str(port)]


def unprivileged(binary, *args):
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           "--inh-caps=-all", binary, *args], capture_output=True, text=True)


def test_counters(binary):
    send(9001, 3)  # counted before the interval: not part of the delta
    p = subprocess.Popen([binary, "inspect", "--netns", NODE, *flow(9001), "--counters",
                          "--interval", "2", "-o", "json"], stdout=subprocess.PIPE, text=True)
    time.sleep(1)  # the ruleset is read and the first counter read done well within a second
    send(9001, SENT)
    out, _ = p.communicate(timeout=30)
    rep = json.loads(out)
    c = rep.get("counters") or {}
    check(p.returncode == 1 and (c.get("delta") or {}).get("packets") == SENT and
          (c.get("before") or {}).get("packets") == 3 and c.get("rule", {}).get("comment") == "counted",
          f"--counters: delta {c.get('delta')} (sent {SENT}), before {c.get('before')}, exit {p.returncode}")

    text = subprocess.run([binary, "inspect", "--netns", NODE, *flow(9001), "--counters",
                           "--interval", "0.2"], capture_output=True, text=True)
    check("counter:  +0 packets, +0 bytes in 0.2 s" in text.stdout,
          "--counters text: the quiet interval's line")

    p = subprocess.run([binary, "inspect", "--netns", NODE, *flow(9002), "--counters", "--interval",
                        "0.2", "-o", "json"], capture_output=True, text=True)
    c = json.loads(p.stdout).get("counters") or {}
    check(c.get("note") == "the deciding rule has no counter" and c.get("delta") is None,
          f"--counters on a rule without a counter: {c.get('note')}")

    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        f.write(sh("nft", "-j", "list", "ruleset", ns=NODE).stdout)
        f.flush()
        p = subprocess.run([binary, "inspect", "--ruleset", f.name, *flow(9001), "--counters"],
                           capture_output=True, text=True)
    check(p.returncode == 3 and "live" in p.stderr, f"--counters with --ruleset: exit {p.returncode} {p.stderr.strip()}")

    p = unprivileged(binary, "inspect", "--netns", NODE, *flow(9001), "--counters")
    check(p.returncode == 4, f"unprivileged --counters --netns: exit {p.returncode} {p.stderr.strip()}")

    # IPv6: the trace table is `ip6` and the kernel's drop is the ip6 table's rule.
    p = subprocess.Popen([binary, "trace", "--netns", NODE, "--src", "::1", "--dst", "::1", "--proto", "udp",
                          "--dport", "9001", "--timeout", "5", "-o", "json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stderr.readline()  # waiting: the table is in place
    send(9001, 1, "::1")
    out, _ = p.communicate(timeout=30)
    doc = json.loads(out) if out.strip() else {}
    events = (doc.get("kernel") or {}).get("events", [])
    check(p.returncode == 1 and doc.get("agrees") is True and
          [(e["family"], e["table"], e["verdict"]) for e in events] == [("ip6", "t6", "drop")],
          f"trace IPv6 over lo: exit {p.returncode}, events {events}")


def trace_tables(ns):
    return [line for line in sh("nft", "list", "tables", ns=ns).stdout.splitlines() if "dpinspect_trace_" in line]


def start_trace(binary, ns, src, dst, port, *extra):
    """A running `trace`, returned once it said it is waiting (its table is in place)."""
    p = subprocess.Popen([binary, "trace", "--netns", ns, "--src", src, "--dst", dst, "--proto", "tcp",
                          "--dport", str(port), "-o", "json", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    return p, line


def connect(ns, ip, port):
    code = ("import socket\n"
            "s = socket.socket()\n"
            "s.settimeout(0.5)\n"
            "try:\n"
            f"    s.connect(('{ip}', {port}))\n"
            "except OSError:\n"
            "    pass\n")
    sh(sys.executable, "-c", code, ns=ns, check=False)


def test_trace(binary):
    import labnet
    with labnet.Lab.up(f"tr{os.getpid()}", HERE.parent / "lab" / "scenarios" / "seed.json", "nftables",
                       owner_pid=os.getpid()) as lab:
        client = lab.endpoint_ns("pod:client/client")
        src = lab.pod("client/client")["ip"]
        flows = [("allowed", lab.pod("stars/frontend")["ip"], 80, 0, "allow"),
                 ("denied", lab.pod("management-ui/management-ui")["ip"], 9001, 1, "deny")]
        for what, dst, port, code, verdict in flows:
            p, ready = start_trace(binary, lab.node_ns, src, dst, port, "--timeout", "5")
            connect(client, dst, port)
            out, err = p.communicate(timeout=30)
            doc = json.loads(out) if out.strip() else {}
            k = doc.get("kernel") or {}
            pred = doc.get("prediction") or {}
            check(p.returncode == code and k.get("verdict") == verdict and pred.get("verdict") == verdict
                  and doc.get("agrees") is True and doc.get("differences") == [],
                  f"trace {what} seed flow -> {dst}:{port}: exit {p.returncode}, kernel {k.get('verdict')}, "
                  f"prediction {pred.get('verdict')}, differences {doc.get('differences')} {err.strip()}")
            rule = (pred.get("decided_by") or {}).get("rule") or {}
            met = [e for e in k.get("events", []) if e["kind"] == "rule" and
                   (e["table"], e["chain"], e["handle"]) == (rule.get("table"), rule.get("chain"), rule.get("handle"))]
            check(bool(met), f"trace {what}: the kernel's path holds the predicted rule {rule.get('chain')} "
                  f"handle {rule.get('handle')}")
        check(trace_tables(lab.node_ns) == [], "no trace table left after trace exits")

        p, ready = start_trace(binary, lab.node_ns, src, flows[1][1], 9001, "--timeout", "30")
        during = trace_tables(lab.node_ns)
        owner = bool(during) and "flags owner" in sh("nft", "list", "table", *during[0].split()[1:],
                                                      ns=lab.node_ns).stdout
        p.kill()  # SIGKILL: no destructor runs; the kernel removes the owner's table
        p.wait()
        time.sleep(0.2)
        after = trace_tables(lab.node_ns)
        check(len(during) == 1 and owner and after == [],
              f"trace table present while waiting ({during}, flags owner: {owner}), gone after kill -9 ({after})")

        p = subprocess.run([binary, "trace", "--netns", lab.node_ns, "--src", src, "--dst", flows[1][1], "--proto",
                            "tcp", "--dport", "9001", "--timeout", "0.3"], capture_output=True, text=True)
        check(p.returncode == 2 and "no packet of this flow within 0.3 s" in p.stderr,
              f"trace with no traffic: exit {p.returncode} {p.stderr.strip().splitlines()[-1:]}")

        p = unprivileged(binary, "trace", "--netns", lab.node_ns, "--src", src, "--dst", flows[1][1], "--proto",
                         "tcp", "--dport", "9001", "--timeout", "1")
        check(p.returncode == 4, f"unprivileged trace: exit {p.returncode} {p.stderr.strip()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dpinspect", required=True)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root to build network namespaces")
        return SKIP
    try:
        sh("ip", "netns", "add", NODE)
        sh("ip", "link", "set", "lo", "up", ns=NODE)
        sh("nft", "-f", "-", ns=NODE, stdin=RULESET)
        test_counters(a.dpinspect)
    finally:
        subprocess.run(["ip", "netns", "del", NODE], capture_output=True)
    test_trace(a.dpinspect)
    print("failed" if failed else "all passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
