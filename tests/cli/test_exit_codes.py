#!/usr/bin/env python3
"""The CLI contract (docs/inspect.md, docs/report-schema.md): exit code 0 allowed, 1 denied,
2 indeterminate, 3 bad input; on bad input nothing on stdout and one line on stderr that names the
file (or option) and the place; never a crash or a hang; `-o json` carries the schema name and
exactly the documented top-level keys.

    test_exit_codes.py --dpinspect build/cli/dpinspect
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
SEED = ["--ruleset", "examples/seed/nftables.json", "--node", "examples/seed/node.json"]
CLI = "tests/fixtures/cli"
FWD = ["--iif", "eth0", "--oif", "eth1", "--src", "10.0.0.1", "--dst", "10.0.0.2", "--proto", "tcp",
       "--dport", "80"]
CLIENT = ["--src", "10.65.0.2"]
TIMEOUT = 30  # seconds for one run; none should come close


class Check:
    def __init__(self, dpinspect):
        self.dpinspect = dpinspect
        self.failed = 0
        self.passed = 0
        self.known = 0

    def run(self, args, stdin=None, input=None, timeout=TIMEOUT):
        t0 = time.monotonic()
        try:
            p = subprocess.run([self.dpinspect] + args, cwd=TOP, capture_output=True, text=True,
                               timeout=timeout, stdin=stdin, input=input)
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - t0
        return p, time.monotonic() - t0

    def result(self, name, problems, p, args, known=None):
        """known: a problem reported and not fixed yet. It is shown but does not fail the test;
        once the problem is gone the test fails until known= is removed (so it stays checked)."""
        if known and problems:
            self.known += 1
            print(f"KNOWN {name}: {'; '.join(problems)} ({known})")
            return
        if known:
            self.failed += 1
            print(f"FAIL {name}: passes now; remove known={known!r} from tests/cli/test_exit_codes.py")
            return
        if problems:
            self.failed += 1
            print(f"FAIL {name}: {'; '.join(problems)}")
            print(f"     $ dpinspect {' '.join(args)}")
            if p is not None:
                print(f"     exit {p.returncode}, stderr: {p.stderr.strip()!r}, stdout: {p.stdout[:200]!r}")
        else:
            self.passed += 1
            print(f"ok   {name}")

    def verdict(self, name, args, want, known=None, input=None):
        p, _ = self.run(args, input=input)
        problems = []
        if p is None:
            problems.append(f"no answer in {TIMEOUT}s")
        elif p.returncode != want:
            problems.append(f"exit {p.returncode}, want {want}")
        self.result(name, problems, p, args, known)
        return p

    def bad_input(self, name, args, names, where=None, max_seconds=5, stdin=None, known=None):
        """Exit 3, empty stdout, one stderr line starting with 'dpinspect: ' that contains every
        string in names and matches the regular expression where (the position) if given. An
        option value the command-line parser (CLI11) refuses is followed by a second line,
        "Run `dpinspect CMD --help` for more information."."""
        timeout = max(10, 3 * max_seconds)
        p, secs = self.run(args, stdin=stdin, timeout=timeout)
        problems = []
        if p is None:
            problems.append(f"no answer in {timeout}s (hang)")
        else:
            if p.returncode < 0:
                problems.append(f"killed by signal {-p.returncode} (crash)")
            elif p.returncode != 3:
                problems.append(f"exit {p.returncode}, want 3")
            if p.stdout:
                problems.append("something on stdout")
            lines = p.stderr.strip("\n").split("\n")
            parser = len(lines) == 2 and re.fullmatch(r"Run `dpinspect( \w+)? --help` for more information\.",
                                                      lines[1])
            if len(lines) != 1 and not parser:
                problems.append(f"{len(lines)} lines on stderr, want 1")
            msg = lines[0]
            if not msg.startswith("dpinspect: "):
                problems.append("stderr does not start with 'dpinspect: '")
            for n in names:
                if n not in msg:
                    problems.append(f"message does not name {n!r}")
            if where and not re.search(where, msg):
                problems.append(f"message has no position (/{where}/)")
            if secs > max_seconds:
                problems.append(f"took {secs:.1f}s, want under {max_seconds}s")
        self.result(name, problems, p, args, known)


def documented_top_level_keys():
    """The field names of the 'Top level' table of docs/report-schema.md, and those of them the
    table marks as **only present** in some reports (e.g. `layers`, with two dataplane layers)."""
    text = open(os.path.join(TOP, "docs", "report-schema.md")).read()
    section = text.split("## Top level", 1)[1].split("\n#", 1)[0]
    keys = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))
    optional = set(re.findall(r"^\| `([a-z_]+)` \|[^\n]*\*\*only present\*\*", section, re.M))
    return keys, optional


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dpinspect", required=True)
    a = ap.parse_args()
    c = Check(os.path.abspath(a.dpinspect))

    # Verdicts.
    c.verdict("allowed: client -> frontend tcp 80 exits 0",
              ["inspect"] + SEED + CLIENT + ["--dst", "10.65.0.3", "--proto", "tcp", "--dport", "80"], 0)
    c.verdict("denied: client -> management-ui tcp 9001 exits 1",
              ["inspect"] + SEED + CLIENT + ["--dst", "10.65.0.5", "--proto", "tcp", "--dport", "9001"], 1)
    c.verdict("pods by name: client/client -> stars/frontend tcp 80 exits 0",
              ["inspect"] + SEED + ["--src", "client/client", "--dst", "stars/frontend", "--proto", "tcp",
                                    "--dport", "80"], 0)
    c.verdict("pods by name: client/client -> management-ui/management-ui tcp 9001 exits 1",
              ["inspect"] + SEED + ["--src", "client/client", "--dst", "management-ui/management-ui",
                                    "--proto", "tcp", "--dport", "9001"], 1)
    p = c.verdict("indeterminate: a rule with an unsupported expression exits 2",
                  ["inspect", "--ruleset", f"{CLI}/unsupported-expression.json"] + FWD, 2)
    if p is not None and p.returncode == 2:
        c.result("indeterminate: the report names the expression",
                 [] if "meta cpu" in p.stdout else ["'meta cpu' not in the report"], p, [])

    # The JSON report.
    args = ["inspect"] + SEED + CLIENT + ["--dst", "10.65.0.5", "--proto", "tcp", "--dport", "9001",
                                          "-o", "json"]
    p, _ = c.run(args)
    problems = []
    try:
        rep = json.loads(p.stdout)
        if rep.get("schema") != "dpinspect.report/v1":
            problems.append(f"schema is {rep.get('schema')!r}")
        documented, optional = documented_top_level_keys()
        if len(documented) < 5:
            problems.append("cannot read the top-level table of docs/report-schema.md")
        if set(rep) - documented:
            problems.append(f"undocumented top-level keys {sorted(set(rep) - documented)}")
        if documented - optional - set(rep):
            problems.append(f"documented keys missing {sorted(documented - optional - set(rep))}")
        if rep.get("verdict") != "deny":
            problems.append(f"verdict {rep.get('verdict')!r}, want 'deny'")
    except (ValueError, AttributeError) as e:
        problems.append(f"stdout is not JSON: {e}")
    c.result("-o json: schema dpinspect.report/v1 and the documented top-level keys", problems, p, args)
    # A comment that is not UTF-8 (Latin-1 "café" in iptables-save text) still gives a JSON report.
    args = ["inspect", "--iptables-save", f"{CLI}/latin1-comment.rules"] + FWD + ["-o", "json"]
    p, _ = c.run(args)
    problems = []
    if p is None or p.returncode != 1:
        problems.append(f"exit {None if p is None else p.returncode}, want 1 (denied)")
    else:
        try:
            json.loads(p.stdout)
        except ValueError as e:
            problems.append(f"stdout is not JSON: {e}")
    c.result("-o json with a comment that is not UTF-8", problems, p, args)
    for rs in ["examples/seed/nftables.json", "examples/seed/iptables-nft.json", "tests/fixtures/nft/exprs.json"]:
        args = ["detect", "--ruleset", rs, "-o", "json"]
        p, _ = c.run(args)
        problems = []
        if p is None or p.returncode != 0:
            problems.append(f"exit {None if p is None else p.returncode}, want 0")
        else:
            try:
                if json.loads(p.stdout).get("schema") != "dpinspect.detect/v1":
                    problems.append("schema is not dpinspect.detect/v1")
            except ValueError as e:
                problems.append(f"stdout is not JSON: {e}")
        c.result(f"detect -o json on {rs} exits 0 with schema dpinspect.detect/v1", problems, p, args)

    # What a newcomer types: every message starts "dpinspect: " and says what to do.
    for name, args, names in [
        ("unknown command", ["frobnicate"],
         ["unknown command 'frobnicate'; commands: inspect, detect, snapshot, compare, trace"]),
        ("no command", [], ["a command is required: inspect, detect, snapshot, compare, trace"]),
        ("a required option (--dst)", ["inspect", "--src", "10.65.0.2"], ["--dst is required"]),
        ("a required option (--before)", ["compare", "--after", "live"], ["--before is required"]),
        ("an option the command does not have", ["detect", "--frob"], ["--frob"]),
        ("a value the parser refuses", ["detect", "-o", "yaml"], ["--output", "yaml"]),
        ("a value out of range", ["inspect", "--max-input-mb", "0"], ["--max-input-mb"]),
    ]:
        c.bad_input(f"command line: {name}", args, names)
    # What a report says, table-driven: (name, args, exit code, strings stdout must hold).
    for name, args, want, says in [
        ("an iptables-nft `nft -j` file says what carries the xt parameters",
         ["inspect", "--ruleset", "examples/seed/iptables-nft.json", "--node", "examples/seed/node.json",
          "--src", "10.65.0.2", "--dst", "10.65.0.5", "--proto", "tcp", "--dport", "9001"], 2,
         ["its parameters are not in nft's JSON output", "a live read", "`dpinspect snapshot`"]),
        ("an allowed flow: the policy rules first, then the final accept",
         ["inspect"] + SEED + CLIENT + ["--dst", "10.65.0.3", "--proto", "tcp", "--dport", "80"], 0,
         ["  rule:   ip calico filter-cali-po-default/client/default.allow-stars handle ",
          "  final:  ip calico filter-FORWARD handle 99\n",
          "rule numbers count a policy's (or profile's) ingress or egress rules from 0"]),
        ("detect: what was looked for and not found",
         ["detect", "--ruleset", "examples/seed/nftables.json"], 0,
         ["ebpf:      not found: examples/seed/nftables.json: not a snapshot, so no eBPF maps"]),
        ("detect on a ruleset without Calico: what was looked for",
         ["detect", "--ruleset", f"{CLI}/unsupported-expression.json"], 0,
         ["dataplane: none", "nftables:  not found: looked for Calico's chains", "ebpf:      not found: "]),
    ]:
        p, _ = c.run(args)
        problems = []
        if p is None or p.returncode != want:
            problems.append(f"exit {None if p is None else p.returncode}, want {want}")
        else:
            problems += [f"stdout lacks {s!r}" for s in says if s not in p.stdout]
        c.result(f"says: {name}", problems, p, args)

    # Bad input: exit 3 and one clear line.
    def bad_file(name, fixture, where, *extra, known=None):
        path = f"{CLI}/{fixture}"
        c.bad_input(name, ["inspect", "--ruleset", path] + FWD, [path] + list(extra), where, known=known)

    bad_file("not JSON", "not-json.json", r"not-json\.json:3:\d+: ")
    bad_file("wrong shape (nftables is not a list)", "wrong-shape.json", r"top level")
    bad_file("jump to a missing chain", "jump-missing-chain.json", r"nftables\[2\]", "nowhere")
    bad_file("jump loop", "jump-loop.json", r"a -> b -> a", "loop")
    bad_file("unknown family", "unknown-family.json", r"nftables\[0\]", "ip4")
    bad_file("IPv4 flow, ip6-only ruleset", "ip6-only.json", None, "IPv4")
    bad_file("a field of the wrong type (log group is a string)", "wrong-field-type.json", r"nftables\[2\]")
    c.bad_input("a directory as the ruleset", ["inspect", "--ruleset", "tests"] + FWD, ["tests", "irectory"])
    bad_file("a number too large for a double (1e400)", "number-overflow.json", r"1e400")
    c.bad_input("snapshot with a field of the wrong type (xt family is a number)",
                ["inspect", "--ruleset", f"{CLI}/snapshot-wrong-type.json"] + FWD,
                [f"{CLI}/snapshot-wrong-type.json", "xt[0]"])
    bad_file("control characters in a name are escaped, not printed", "jump-control-chars.json",
             r"no\\x1b\[2Jwhere\\x0anext")
    c.bad_input("--node that is not JSON", ["inspect", "--ruleset", "examples/seed/nftables.json", "--node",
                                            f"{CLI}/node-not-json.json"] + FWD,
                [f"{CLI}/node-not-json.json"], r"node-not-json\.json:3:\d+: ")
    c.bad_input("a directory as --node", ["inspect", "--ruleset", "examples/seed/nftables.json", "--node", "tests"] + FWD,
                ["tests", "irectory"])
    c.bad_input("a directory as --iptables-save", ["inspect", "--iptables-save", "tests"] + FWD,
                ["tests", "irectory"])
    c.bad_input("a pod that is not on this node", ["inspect"] + SEED + ["--src", "client/elsewhere", "--dst",
                                                                     "10.65.0.3", "--dport", "80"],
                ["--src", "client/elsewhere", "no interface cali"])
    c.bad_input("a pod name without node information",
                ["inspect", "--ruleset", "examples/seed/nftables.json", "--iif", "eth0", "--src", "client/client",
                 "--dst", "10.65.0.3", "--dport", "80"], ["client/client", "--node"])
    # --k8s: names from a recorded kubectl List (tests/fixtures/k8s/seed.json).
    K8S = ["--k8s", "tests/fixtures/k8s/seed.json"]
    for name, args, names in [
        ("--k8s: a pod on another node names that node", ["--src", "client/client", "--dst", "stars/backend-remote",
                                                          "--dport", "6379"],
         ["--dst", "stars/backend-remote", "node node2", "10.65.1.7"]),
        ("--k8s: a pod on no node yet", ["--src", "stars/pending", "--dst", "10.65.0.3", "--dport", "80"],
         ["--src", "stars/pending", "no interface cali"]),
        ("--k8s: a service port it does not have", ["--src", "client/client", "--dst", "stars/frontend:81"],
         ["stars/frontend:81", "no port 81", "80/TCP"]),
        ("--k8s: a service with several ports and no --dport", ["--src", "client/client", "--dst", "stars/multi"],
         ["stars/multi", "2 ports", "--dport"]),
        ("--k8s: a headless service", ["--src", "client/client", "--dst", "stars/headless:80"],
         ["stars/headless", "headless"]),
        ("--k8s: ns/svc:port of no service", ["--src", "client/client", "--dst", "stars/nope:80"],
         ["stars/nope:80", "no service"]),
    ]:
        c.bad_input(name, ["inspect"] + SEED + K8S + args, names)
    c.bad_input("ns/svc:port without --k8s", ["inspect"] + SEED + ["--src", "client/client", "--dst",
                                                                   "stars/frontend:80"],
                ["stars/frontend:80", "--k8s"])
    c.bad_input("--k8s file that is not JSON", ["inspect"] + SEED + ["--k8s", "README.md"] + CLIENT +
                ["--dst", "10.65.0.3", "--dport", "80"], ["--k8s", "README.md", "not JSON"])
    c.bad_input("neither an address nor namespace/pod", ["inspect"] + SEED + ["--src", "Client", "--dst",
                                                                             "10.65.0.3", "--dport", "80"],
                ["--src", "Client", "namespace/name"])
    CMP = ["compare", "--before", "examples/seed/nftables.json", "--node", "examples/seed/node.json", "--after",
           "examples/seed/iptables-nft.snapshot.json"]
    c.verdict("compare: every verdict kept exits 0", CMP + ["--port", "tcp/80"], 0)
    c.verdict("compare: a verdict changed exits 1",
              ["compare", "--before", "examples/seed/nftables.json", "--node", "examples/seed/node.json", "--after",
               "tests/fixtures/compare/seed-allow-stars-removed.json", "--port", "tcp/80"], 1)
    c.verdict("compare: an indeterminate side exits 2",
              ["compare", "--before", "examples/seed/nftables.json", "--node", "examples/seed/node.json", "--after",
               "examples/seed/iptables-nft.json", "--port", "tcp/80"], 2)
    c.bad_input("compare without flows", CMP, ["--flows", "--port"])
    c.bad_input("compare with a bad --port", CMP + ["--port", "tcp/http"], ["--port", "tcp/http"])
    c.bad_input("compare: an --output-file that cannot be written",
                CMP + ["--port", "tcp/80", "-o", "html", "--output-file", "no-such-dir/compare.html"],
                ["no-such-dir/compare.html", "cannot write"])
    with tempfile.TemporaryDirectory() as tmp:
        flows = os.path.join(tmp, "flows.jsonl")
        with open(flows, "w") as f:
            f.write('{"src": "10.65.0.2", "dst": "10.65.0.3", "dport": 80}\n\n{"src": "10.65.0.2", "dprt": 80}\n')
        c.bad_input("compare: a flows file line with an unknown key", CMP + ["--flows", flows],
                    [flows, "dprt"], r"flows\.jsonl:3: ")
        with open(flows, "w") as f:
            f.write('{"src": "client/nowhere", "dst": "10.65.0.3", "dport": 80}\n')
        c.bad_input("compare: a flows file pod not on the node", CMP + ["--flows", flows],
                    [flows, "client/nowhere"], r"flows\.jsonl:1: ")
        with open(flows, "w") as f:
            f.write('{"src": "client/client", "dst": "stars/backend-remote", "dport": 6379}\n')
        c.bad_input("compare --k8s: a flows file pod on another node names that node",
                    CMP + ["--flows", flows] + K8S, [flows, "stars/backend-remote", "node node2"],
                    r"flows\.jsonl:1: ")
    c.bad_input("missing file", ["inspect", "--ruleset", "does-not-exist.json"] + FWD,
                ["does-not-exist.json", "No such file"])
    c.bad_input("missing network namespace", ["inspect", "--netns", "does-not-exist"] + FWD[4:],
                ["does-not-exist"])
    c.bad_input("missing network namespace (detect)", ["detect", "--netns", "does-not-exist"],
                ["does-not-exist"])
    c.bad_input("bad --proto", ["inspect"] + SEED + CLIENT + ["--dst", "10.65.0.3", "--proto", "tcpx"],
                ["--proto", "tcpx"])
    c.bad_input("bad --src", ["inspect"] + SEED + ["--src", "10.65.0.300", "--dst", "10.65.0.3", "--dport", "80"],
                ["--src", "10.65.0.300"])
    c.bad_input("bad --dport", ["inspect"] + SEED + CLIENT + ["--dst", "10.65.0.3", "--dport", "70000"],
                ["--dport", "70000", "65535"])
    c.bad_input("--max-input-mb 0", ["inspect", "--max-input-mb", "0", "--ruleset", f"{CLI}/jump-loop.json"] + FWD,
                ["--max-input-mb"])
    c.bad_input("--max-input-mb too large to count in bytes",
                ["inspect", "--max-input-mb", "17592186044416", "--ruleset", f"{CLI}/jump-loop.json"] + FWD,
                ["--max-input-mb"])
    c.bad_input("--ebpf dataplane", ["inspect", "--dataplane", "ebpf"] + FWD, ["ebpf"])
    with tempfile.TemporaryDirectory() as tmp:
        huge = os.path.join(tmp, "huge.json")
        with open(huge, "wb") as f:
            f.truncate(500 << 20)  # sparse: no disk used
        c.bad_input("huge ruleset file (500 MB, sparse) fails fast", ["inspect", "--ruleset", huge] + FWD,
                    [huge, "MiB"], max_seconds=2)
        c.bad_input("huge ruleset file with detect", ["detect", "--ruleset", huge], [huge, "MiB"], max_seconds=2)
        with open(huge, "rb") as f:
            c.bad_input("huge ruleset on stdin fails fast", ["inspect", "--ruleset", "-"] + FWD, ["stdin", "MiB"],
                        max_seconds=2, stdin=f)
        with open(huge, "rb") as f:
            c.bad_input("huge iptables-save text on stdin fails fast", ["inspect", "--iptables-save", "-"] + FWD,
                        ["stdin", "MiB"], max_seconds=2, stdin=f)
    seed = open(os.path.join(TOP, "examples/seed/nftables.json")).read()
    c.verdict("a ruleset from a pipe (--ruleset <(nft -j list ruleset))",
              ["inspect", "--ruleset", "/dev/stdin", "--node", "examples/seed/node.json"] + CLIENT +
              ["--dst", "10.65.0.3", "--dport", "80"], 0, input=seed)
    rules = open(os.path.join(TOP, CLI, "latin1-comment.rules"), encoding="latin-1").read()
    p, _ = c.run(["inspect", "--iptables-save", "/dev/stdin"] + FWD, input=rules)
    c.result("iptables-save text from a pipe (--iptables-save <(iptables-save))",
             [] if p is not None and p.returncode == 1 else [f"exit {None if p is None else p.returncode}, want 1"],
             p, ["inspect", "--iptables-save", "/dev/stdin"] + FWD)

    # --flows: one report a flow, each equal to the single-flow report, exit code of the worst.
    batch = [
        ({"src": "10.65.0.2", "dst": "10.65.0.3", "proto": "tcp", "dport": 80},
         CLIENT + ["--dst", "10.65.0.3", "--proto", "tcp", "--dport", "80"]),
        ({"src": "client/client", "dst": "management-ui/management-ui", "dport": 9001, "sport": 41000},
         ["--src", "client/client", "--dst", "management-ui/management-ui", "--dport", "9001", "--sport", "41000"]),
        ({"src": "10.65.0.2", "dst": "10.65.0.5", "proto": "icmp", "ct": "established"},
         CLIENT + ["--dst", "10.65.0.5", "--proto", "icmp", "--ct", "established"]),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        flows = os.path.join(tmp, "flows.jsonl")
        with open(flows, "w") as f:
            f.write("# seed flows\n\n" + "".join(json.dumps(line) + "\n" for line, _ in batch))
        args = ["inspect"] + SEED + ["--flows", flows, "-o", "json"]
        p = c.verdict("--flows with an allowed and a denied flow exits 1 (the worst)", args, 1)
        problems = []
        lines = p.stdout.splitlines() if p is not None else []
        if len(lines) != len(batch):
            problems.append(f"{len(lines)} lines on stdout, want {len(batch)} (one report a line)")
        for i, ((_, single), line) in enumerate(zip(batch, lines)):
            one, _ = c.run(["inspect"] + SEED + single + ["-o", "json"])
            try:
                if json.loads(line) != json.loads(one.stdout):
                    problems.append(f"line {i + 1} differs from `inspect {' '.join(single)} -o json`")
            except (json.JSONDecodeError, AttributeError) as e:
                problems.append(f"line {i + 1}: {e}")
        c.result("--flows -o json: each line equals the single-flow report", problems, p, args)
        text, _ = c.run(["inspect"] + SEED + ["--flows", flows])
        singles = "\n".join(c.run(["inspect"] + SEED + single)[0].stdout for _, single in batch)
        c.result("--flows text: the single-flow reports, a blank line between them",
                 [] if text is not None and text.stdout == singles else ["text differs"], text, [])
        with open(flows, "w") as f:
            f.write(json.dumps(batch[0][0]) + "\n" + '{"src": "10.65.0.2", "dst": "nosuch/pod", "dport": 80}\n')
        c.bad_input("--flows: a pod not on the node names FILE:LINE, and no report is printed",
                    ["inspect"] + SEED + ["--flows", flows, "-o", "json"], ["flows.jsonl:2:", "nosuch/pod"])
        c.bad_input("--flows with --src is refused", ["inspect"] + SEED + ["--flows", flows] + CLIENT,
                    ["--flows", "--src"])
        c.bad_input("--flows with a flow option (--dport) is refused",
                    ["inspect"] + SEED + ["--flows", flows, "--dport", "80"], ["--flows", "--dport"])

    print(f"{c.passed} passed, {c.failed} failed, {c.known} known problems")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
