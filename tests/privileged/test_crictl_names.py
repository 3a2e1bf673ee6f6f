#!/usr/bin/env python3
"""Pod names from the container runtime, through the real binary on a live node.

A private, unnamed network namespace (`unshare -n`, gone when the command ends) stands for the
seed's node1: the cali* interfaces Felix would have made for client/client and stars/frontend
(veth pairs) and the host routes through them. A fake `crictl` on PATH (tests/fixtures/crictl)
replays what crictl printed on node1. `dpinspect inspect` is run live in that namespace (no
--netns: this node), and must:
  - take --src client/client by its interface, and name both pods from the runtime;
  - with inspectp failing (names, no addresses), still name both addresses through the Felix hash
    of their host routes' interfaces, and say why the addresses are missing;
  - without crictl on PATH, or with --no-crictl, name nothing (the former says so).

    test_crictl_names.py --dpinspect build/cli/dpinspect      (root; exit 77 = skipped)
"""
import argparse
import json
import os
import subprocess
import sys

SKIP = 77
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAKE = os.path.join(TOP, "tests", "fixtures", "crictl")

NODE = """
ip link set lo up
ip link add cali0de30c97d63 type veth peer name wl-client
ip link add calif881a007510 type veth peer name wl-frontend
for i in cali0de30c97d63 calif881a007510 wl-client wl-frontend; do ip link set "$i" up; done
ip route add 10.65.0.2/32 dev cali0de30c97d63
ip route add 10.65.0.3/32 dev calif881a007510
"""

FLOW = ["--dst", "10.65.0.3", "--dport", "80", "--dataplane", "nftables", "-o", "json"]

# name, environment, arguments after `inspect`, src_name, dst_name, assumption prefixes wanted,
# and a word no assumption may contain
CASES = [
    ("the runtime names the pods; --src by its interface", {"PATH": f"{FAKE}:/usr/sbin:/usr/bin:/sbin:/bin"},
     ["--src", "client/client"], "client/client", "stars/frontend",
     ["--src pod client/client is 10.65.0.2 (interface cali0de30c97d63 on this node)",
      "pod names from the container runtime (crictl, 5 pods on this node)"], None),
    ("inspectp fails: the interface hash still names them",
     {"PATH": f"{FAKE}:/usr/sbin:/usr/bin:/sbin:/bin", "FAKE_CRICTL": "no-inspectp"},
     ["--src", "10.65.0.2"], "client/client", "stars/frontend",
     ["pod names from the container runtime (crictl, 5 pods on this node)",
      "pods of the container runtime without addresses"], None),
    ("no crictl on PATH", {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, ["--src", "10.65.0.2"], None, None,
     ["no pod names from the container runtime: crictl is not on PATH"], None),
    ("--no-crictl", {"PATH": f"{FAKE}:/usr/sbin:/usr/bin:/sbin:/bin"}, ["--src", "10.65.0.2", "--no-crictl"],
     None, None, [], "crictl"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dpinspect", required=True)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("skipped: needs root (unshare -n, ip link)")
        return SKIP
    failed = 0
    for name, env, argv, src_name, dst_name, wanted, banned in CASES:
        cmd = " ".join(["inspect", *argv, *FLOW])
        script = NODE + f'exec "{args.dpinspect}" {cmd}\n'
        p = subprocess.run(["unshare", "-n", "sh", "-ec", script], capture_output=True, text=True,
                           timeout=60, env={**env, "LC_ALL": "C"})
        problems = []
        try:
            rep = json.loads(p.stdout)
        except ValueError:
            print(f"FAIL {name}: exit {p.returncode}, no report: {p.stderr.strip()[:400]}")
            failed += 1
            continue
        if p.returncode != 0:
            problems.append(f"exit {p.returncode}, want 0 (an empty ruleset accepts)")
        flow = rep.get("flow", {})
        for key, want in (("src_name", src_name), ("dst_name", dst_name)):
            if flow.get(key) != want:
                problems.append(f"{key} {flow.get(key)!r}, want {want!r}")
        lines = rep.get("assumptions", [])
        for w in wanted:
            if not any(line.startswith(w) for line in lines):
                problems.append(f"no assumption {w!r}")
        if banned and any(banned in line for line in lines):
            problems.append(f"an assumption mentions {banned!r}")
        if problems:
            failed += 1
            print(f"FAIL {name}: {'; '.join(problems)}\n     assumptions: {lines}")
        else:
            print(f"ok   {name}")
    print(f"{len(CASES) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
