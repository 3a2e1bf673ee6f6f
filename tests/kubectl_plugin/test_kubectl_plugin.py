#!/usr/bin/env python3
"""kubectl-dpinspect (plugin/kubectl-dpinspect, docs/kubectl-plugin.md) against a fake kubectl
(fake_kubectl.py) that answers from a recorded cluster (tests/fixtures/kubectl/cluster.json) and
records every call, and a fake node: `kubectl exec` runs the command here, where `chroot` and the
host's `dpinspect` are fakes that record which node they ran on and replay a report or a snapshot.

Each case checks the exit code, stdout, stderr, the kubectl calls (which node, which pod, what
command), the dpinspect runs (node, chroot, arguments) and the files written; and that no
debugging pod is left behind.

    test_kubectl_plugin.py --plugin plugin/kubectl-dpinspect
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(TOP, "tests", "fixtures", "kubectl")
REPORT = open(os.path.join(FIXTURES, "report-denied.txt")).read()

# The node's side: chroot (busybox's messages) maps the host's / to the fake host root; the host's
# dpinspect records its run and replays $FAKE_REPORT / $FAKE_RC, or a snapshot naming the node.
FAKE_CHROOT = r"""#!/bin/sh
root=$1 prog=$2
shift 2
export FAKE_CHROOT="$root"
path=
case "$prog" in
/*) path="$FAKE_HOST_ROOT$prog" ;;
*) for d in /usr/local/bin /usr/bin /bin; do
     if [ -x "$FAKE_HOST_ROOT$d/$prog" ]; then path="$FAKE_HOST_ROOT$d/$prog"; break; fi
   done ;;
esac
if [ -z "$path" ] || [ ! -x "$path" ]; then
  echo "chroot: can't execute '$prog': No such file or directory" >&2
  exit 127
fi
exec "$path" "$@"
"""

FAKE_DPINSPECT = r"""#!/bin/sh
{ echo RUN; echo "$FAKE_NODE"; echo "${FAKE_CHROOT-none}"; for a in "$@"; do echo "$a"; done; echo END; } >>"$FAKE_DPINSPECT_LOG"
if [ "$1" = snapshot ]; then
  case ",$FAKE_SNAPSHOT_FAIL," in *",$FAKE_NODE,"*)
    echo "dpinspect: reading the nftables ruleset needs CAP_NET_ADMIN" >&2
    exit 4 ;;
  esac
  printf '{"schema": "dpinspect.snapshot/v2", "source": "live", "fake_node": "%s"}\n' "$FAKE_NODE"
  exit 0
fi
cat "$FAKE_REPORT"
exit "${FAKE_RC:-0}"
"""

DENIED = {"FAKE_RC": "1"}


def debug_calls(node, image="busybox", ns=()):
    """The calls that run dpinspect on NODE through a debugging pod, before `exec`."""
    pod = f"node-debugger-{node}-q7x2m"
    return [["debug", *ns, f"node/{node}", f"--image={image}", "--profile=sysadmin", "--", "sleep", "3600"],
            ["wait", *ns, "--for=condition=Ready", f"pod/{pod}", "--timeout=120s"]]


def exec_call(pod, argv, ns=(), chroot=("chroot", "/host")):
    return ["exec", *ns, pod, "--", "sh", "-c", '"$@"; echo "kubectl-dpinspect-exit-status: $?" >&2',
            "kubectl-dpinspect", *chroot, *argv]


def delete_call(pod, ns=()):
    return ["delete", "pod", *ns, pod, "--wait=false"]


GET_CLIENT = ["get", "pod", "-n", "client", "client", "-o",
              "jsonpath={.spec.nodeName}|{.status.podIP}|{.status.phase}"]


def get_pod(ns, name):
    return ["get", "pod", "-n", ns, name, "-o", "jsonpath={.spec.nodeName}|{.status.podIP}|{.status.phase}"]


def get_svc(ns, name):
    return ["get", "service", "-n", ns, name, "-o",
            "jsonpath={.spec.type}|{.spec.clusterIP}|{range .spec.ports[*]}{.port}/{.protocol}/{.name} {end}"]


DBG1 = "node-debugger-node1-q7x2m"
INSPECT_MUI = ["dpinspect", "inspect", "--src", "10.65.0.2", "--dst", "10.65.0.5", "--dport", "9001"]

# name, plugin arguments, extra environment, expected: rc, stdout (exact, or a regex with re:),
# stderr regexes, kubectl calls (exact list, in order), dpinspect runs (node, chroot, argv),
# files written under the case's directory {name: regex of content}.
CASES = [
    dict(name="node lookup: debug pod on the source pod's node, report and exit code passed through",
         args=["inspect", "--src", "client/client", "--dst", "management-ui/management-ui", "--dport", "9001"],
         env=DENIED, rc=1, stdout=REPORT,
         stderr=[r"source pod client/client is 10\.65\.0\.2 on node node1",
                 r"destination pod management-ui/management-ui is 10\.65\.0\.5 on node node1",
                 r"debugging pod node-debugger-node1-q7x2m on node node1"],
         calls=[GET_CLIENT, get_pod("management-ui", "management-ui"), *debug_calls("node1"),
                exec_call(DBG1, INSPECT_MUI), delete_call(DBG1)],
         runs=[("node1", "/host", INSPECT_MUI[1:])]),
    dict(name="other options pass through to dpinspect inspect; allowed is 0",
         args=["inspect", "--src=client/client", "--dst", "stars/frontend-6c9b4:80", "-o", "json",
               "--ct", "established", "-v"],
         rc=0, stdout=REPORT,
         runs=[("node1", "/host", ["inspect", "--src", "10.65.0.2", "--dst", "10.65.0.3", "--dport", "80",
                                   "-o", "json", "--ct", "established", "-v"])]),
    dict(name="indeterminate (2) passes through",
         args=["inspect", "--src", "client/client", "--dst", "10.65.0.4", "--dport", "6379"],
         env={"FAKE_RC": "2"}, rc=2, stdout=REPORT,
         runs=[("node1", "/host", ["inspect", "--src", "10.65.0.2", "--dst", "10.65.0.4", "--dport", "6379"])]),
    dict(name="source pod not found",
         args=["inspect", "--src", "client/nope", "--dst", "stars/frontend:80"],
         rc=3, stdout="",
         stderr=[r"^kubectl-dpinspect: --src client/nope: pod not found in namespace client \(kubectl get pods -n client\)$"],
         calls=[get_pod("client", "nope")], runs=[]),
    dict(name="source pod on no node yet",
         args=["inspect", "--src", "client/batch-6b8d4", "--dst", "stars/frontend:80"],
         rc=3, stdout="",
         stderr=[r"--src client/batch-6b8d4: the pod is not scheduled on a node yet \(phase Pending\); "
                 r"dpinspect runs on the source pod's node"],
         calls=[get_pod("client", "batch-6b8d4")], runs=[]),
    dict(name="--via: exec in the given pod on the source pod's node, no debugging pod",
         args=["inspect", "--via", "kube-system/node-shell-n1", "--src", "client/client",
               "--dst", "management-ui/management-ui:9001"],
         env=DENIED, rc=1, stdout=REPORT,
         calls=[GET_CLIENT, get_pod("management-ui", "management-ui"), get_pod("kube-system", "node-shell-n1"),
                exec_call("node-shell-n1", INSPECT_MUI, ns=("-n", "kube-system"))],
         runs=[("node1", "/host", INSPECT_MUI[1:])]),
    dict(name="--via a pod on another node than the source pod",
         args=["inspect", "--via", "kube-system/node-shell-n2", "--src", "client/client",
               "--dst", "management-ui/management-ui:9001"],
         rc=3, stdout="",
         stderr=[r"--via kube-system/node-shell-n2 runs on node node2, but the flow starts on node node1"],
         runs=[]),
    dict(name="--via a pod that does not exist",
         args=["inspect", "--via", "kube-system/nope", "--src", "client/client", "--dst", "10.65.0.5",
               "--dport", "9001"],
         rc=3, stdout="", stderr=[r"--via kube-system/nope: pod not found"], runs=[]),
    dict(name="service destination: ClusterIP, port by name, protocol from the service",
         args=["inspect", "--src", "client/client", "--dst", "stars/frontend:http"],
         rc=0, stdout=REPORT,
         stderr=[r"destination service stars/frontend is 10\.96\.0\.10 port 80/tcp"],
         calls=[GET_CLIENT, get_pod("stars", "frontend"), get_svc("stars", "frontend"), *debug_calls("node1"),
                exec_call(DBG1, ["dpinspect", "inspect", "--src", "10.65.0.2", "--dst", "10.96.0.10",
                                 "--proto", "tcp", "--dport", "80"]), delete_call(DBG1)],
         runs=[("node1", "/host", ["inspect", "--src", "10.65.0.2", "--dst", "10.96.0.10", "--proto", "tcp",
                                   "--dport", "80"])]),
    dict(name="service with one port: the port is implied",
         args=["inspect", "--src", "client/client", "--dst", "stars/backend"],
         rc=0, stdout=REPORT,
         runs=[("node1", "/host", ["inspect", "--src", "10.65.0.2", "--dst", "10.96.0.11", "--proto", "tcp",
                                   "--dport", "6379"])]),
    dict(name="service UDP port by name: --proto udp",
         args=["inspect", "--src", "client/client", "--dst", "stars/gateway:dns"],
         rc=0, stdout=REPORT,
         runs=[("node1", "/host", ["inspect", "--src", "10.65.0.2", "--dst", "10.96.0.20", "--proto", "udp",
                                   "--dport", "53"])]),
    dict(name="service port picked by --dport; --proto given wins",
         args=["inspect", "--src", "client/client", "--dst", "stars/gateway", "--dport", "443", "--proto", "sctp"],
         rc=0, stdout=REPORT,
         runs=[("node1", "/host", ["inspect", "--src", "10.65.0.2", "--dst", "10.96.0.20", "--proto", "sctp",
                                   "--dport", "443"])]),
    dict(name="service with several ports and none given",
         args=["inspect", "--src", "client/client", "--dst", "stars/gateway"],
         rc=3, stdout="",
         stderr=[r"--dst stars/gateway: the service has ports 80/TCP \(http\), 443/TCP \(https\), 53/UDP \(dns\); "
                 r"give NAMESPACE/SERVICE:PORT or --dport"], runs=[]),
    dict(name="a port the service does not have: warned, still asked",
         args=["inspect", "--src", "client/client", "--dst", "stars/frontend:8443"],
         rc=0, stdout=REPORT, stderr=[r"port 8443 is not a port of service stars/frontend \(its ports: 80/TCP \(http\)\)"],
         runs=[("node1", "/host", ["inspect", "--src", "10.65.0.2", "--dst", "10.96.0.10", "--dport", "8443"])]),
    dict(name="a port name the service does not have",
         args=["inspect", "--src", "client/client", "--dst", "stars/frontend:grpc"],
         rc=3, stdout="", stderr=[r"the service has no port named grpc \(its ports: 80/TCP \(http\)\)"], runs=[]),
    dict(name="headless service",
         args=["inspect", "--src", "client/client", "--dst", "stars/workers:8080"],
         rc=3, stdout="", stderr=[r"a headless service has no ClusterIP; name one of its pods"], runs=[]),
    dict(name="no pod or service of that name",
         args=["inspect", "--src", "client/client", "--dst", "stars/nothing:80"],
         rc=3, stdout="", stderr=[r"--dst stars/nothing:80: no pod or service nothing in namespace stars"], runs=[]),
    dict(name="destination pod on another node: still inspected on the source's node",
         args=["inspect", "--src", "client/client", "--dst", "stars/worker-7f9c2:8080"],
         env=DENIED, rc=1, stdout=REPORT, stderr=[r"destination pod stars/worker-7f9c2 is 10\.65\.1\.7 on node node2"],
         runs=[("node1", "/host", ["inspect", "--src", "10.65.0.2", "--dst", "10.65.1.7", "--dport", "8080"])]),
    dict(name="source address with --node",
         args=["inspect", "--src", "172.18.0.2", "--node", "node2", "--dst", "stars/worker-7f9c2:8080"],
         rc=0, stdout=REPORT,
         runs=[("node2", "/host", ["inspect", "--src", "172.18.0.2", "--dst", "10.65.1.7", "--dport", "8080"])]),
    dict(name="source address without --node",
         args=["inspect", "--src", "172.18.0.2", "--dst", "10.65.0.5", "--dport", "9001"],
         rc=3, stdout="", stderr=[r"--src 172\.18\.0\.2: an address needs --node NODE"], calls=[], runs=[]),
    dict(name="--dst missing",
         args=["inspect", "--src", "client/client"], rc=3, stdout="", stderr=[r"--dst is required"], calls=[]),
    dict(name="--dpinspect-path, --image, --debug-namespace, --context reach kubectl and the node",
         install=["/opt/dpinspect/bin/dpinspect"],
         args=["inspect", "--context", "prod", "--src", "client/client", "--dst", "management-ui/management-ui",
               "--dport", "9001", "--dpinspect-path", "/opt/dpinspect/bin/dpinspect", "--image", "registry.local/busybox:1.36",
               "--debug-namespace", "debug"],
         env=DENIED, rc=1, stdout=REPORT,
         calls=[["--context=prod", *GET_CLIENT], ["--context=prod", *get_pod("management-ui", "management-ui")],
                *[["--context=prod", *c] for c in debug_calls("node1", "registry.local/busybox:1.36", ("-n", "debug"))],
                ["--context=prod", *exec_call(DBG1, ["/opt/dpinspect/bin/dpinspect", *INSPECT_MUI[1:]], ns=("-n", "debug"))],
                ["--context=prod", *delete_call(DBG1, ("-n", "debug"))]],
         runs=[("node1", "/host", INSPECT_MUI[1:])]),
    dict(name="--chroot '': dpinspect from the --via pod's own image",
         args=["inspect", "--via", "kube-system/node-shell-n2", "--chroot", "", "--src", "stars/worker-7f9c2",
               "--dst", "stars/gateway:https"],
         install=["dpinspect"], rc=0, stdout=REPORT,
         calls=[get_pod("stars", "worker-7f9c2"), get_pod("stars", "gateway"), get_svc("stars", "gateway"),
                get_pod("kube-system", "node-shell-n2"),
                exec_call("node-shell-n2", ["dpinspect", "inspect", "--src", "10.65.1.7", "--dst", "10.96.0.20",
                                            "--proto", "tcp", "--dport", "443"], ns=("-n", "kube-system"), chroot=())],
         runs=[("node2", None, ["inspect", "--src", "10.65.1.7", "--dst", "10.96.0.20", "--proto", "tcp",
                                "--dport", "443"])]),
    dict(name="dpinspect not installed on the node",
         args=["inspect", "--src", "client/client", "--dst", "10.65.0.5", "--dport", "9001", "--dpinspect-path", "dpinspect-nope"],
         rc=127, stdout="",
         stderr=[r"chroot: can't execute 'dpinspect-nope'",
                 r"dpinspect could not be started on node node1: 'dpinspect-nope' not found or not executable under /host"],
         runs=[]),
    dict(name="creating the debugging pod is refused (Pod Security): exit 4",
         args=["inspect", "--src", "client/client", "--dst", "10.65.0.5", "--dport", "9001"],
         env={"FAKE_KUBECTL_FAIL": "debug-forbidden"}, rc=4, stdout="",
         stderr=[r"Error from server \(Forbidden\)", r"kubectl debug node/node1 failed \(exit 1\)"],
         calls=[GET_CLIENT, debug_calls("node1")[0]], runs=[]),
    dict(name="a kubectl without debug profiles: says so",
         args=["inspect", "--src", "client/client", "--dst", "10.65.0.5", "--dport", "9001"],
         env={"FAKE_KUBECTL_FAIL": "debug-no-profile"}, rc=5, stdout="",
         stderr=[r"kubectl debug --profile=sysadmin needs kubectl 1\.27 or later\): upgrade kubectl, or give --via"],
         runs=[]),
    dict(name="the debugging pod does not start: deleted, exit 5",
         args=["inspect", "--src", "client/client", "--dst", "10.65.0.5", "--dport", "9001"],
         env={"FAKE_KUBECTL_FAIL": "wait-timeout"}, rc=5, stdout="",
         stderr=[r"the debugging pod node-debugger-node1-q7x2m did not start within 120s"],
         calls=[GET_CLIENT, *debug_calls("node1"), delete_call(DBG1)], runs=[]),
    dict(name="kubectl exec fails: not taken for dpinspect's 1 (denied)",
         args=["inspect", "--src", "client/client", "--dst", "10.65.0.5", "--dport", "9001"],
         env={"FAKE_KUBECTL_FAIL": "exec-lost"}, rc=5, stdout="",
         stderr=[r"connection refused", r"failed \(exit 1\) before dpinspect reported its exit status"], runs=[]),
    dict(name="--keep-debug-pod keeps it and says how to reuse it",
         args=["inspect", "--keep-debug-pod", "--src", "client/client", "--dst", "10.65.0.5", "--dport", "9001"],
         rc=0, stdout=REPORT, keep=True,
         stderr=[r"kept the debugging pod; reuse it with --via default/node-debugger-node1-q7x2m"]),
    dict(name="--dry-run: lookups only, the node's commands printed",
         args=["inspect", "--dry-run", "--src", "client/client", "--dst", "stars/frontend:80"],
         rc=0,
         stdout="re:^kubectl debug node/node1 --image=busybox --profile=sysadmin -- sleep 3600\n"
                r"kubectl wait --for=condition=Ready pod/node-debugger-node1-XXXXX --timeout=120s\n"
                r"kubectl exec node-debugger-node1-XXXXX -- sh -c .*chroot /host dpinspect inspect --src 10\.65\.0\.2 "
                r"--dst 10\.96\.0\.10 --proto tcp --dport 80\n"
                r"kubectl delete pod node-debugger-node1-XXXXX --wait=false\n$",
         calls=[GET_CLIENT, get_pod("stars", "frontend"), get_svc("stars", "frontend")], runs=[]),
    dict(name="snapshot --all-nodes: one file per node, each from its own node",
         args=["snapshot", "--all-nodes", "-o", "{dir}/snaps"],
         rc=0, stdout="",
         stderr=[r"node node1: .*/snaps/node1\.snapshot\.json \(\d+ bytes\)", r"2 of 2 nodes written to"],
         calls=[["get", "nodes", "-o", "name"],
                *debug_calls("node1"), exec_call(DBG1, ["dpinspect", "snapshot"]), delete_call(DBG1),
                *debug_calls("node2"), exec_call("node-debugger-node2-q7x2m", ["dpinspect", "snapshot"]),
                delete_call("node-debugger-node2-q7x2m")],
         runs=[("node1", "/host", ["snapshot"]), ("node2", "/host", ["snapshot"])],
         files={"snaps/node1.snapshot.json": r'^\{"schema": "dpinspect.snapshot/v2", "source": "live", "fake_node": "node1"\}\n$',
                "snaps/node2.snapshot.json": r'"fake_node": "node2"'}),
    dict(name="snapshot --all-nodes with a failing node: the others written, its exit code",
         args=["snapshot", "--all-nodes", "-o", "{dir}/snaps", "--bpffs", "/sys/fs/bpf/tc/globals"],
         env={"FAKE_SNAPSHOT_FAIL": "node2"}, rc=4, stdout="",
         stderr=[r"dpinspect: reading the nftables ruleset needs CAP_NET_ADMIN", r"node node2: no snapshot \(exit 4\)",
                 r"1 of 2 nodes written to .*; failed: node2 \(exit 4\)"],
         runs=[("node1", "/host", ["snapshot", "--bpffs", "/sys/fs/bpf/tc/globals"]),
               ("node2", "/host", ["snapshot", "--bpffs", "/sys/fs/bpf/tc/globals"])],
         files={"snaps/node1.snapshot.json": r'"fake_node": "node1"', "snaps/node2.snapshot.json": None,
                "snaps/node2.snapshot.json.tmp": None}),
    dict(name="snapshot --via: the via pod's node only",
         args=["snapshot", "--via", "kube-system/node-shell-n2", "--output={dir}/snaps"],
         rc=0, stdout="",
         calls=[get_pod("kube-system", "node-shell-n2"),
                exec_call("node-shell-n2", ["dpinspect", "snapshot"], ns=("-n", "kube-system"))],
         runs=[("node2", "/host", ["snapshot"])],
         files={"snaps/node2.snapshot.json": r'"fake_node": "node2"', "snaps/node1.snapshot.json": None}),
    dict(name="snapshot --node of a node that does not exist",
         args=["snapshot", "--node", "node9", "-o", "{dir}/snaps"],
         rc=3, stdout="", stderr=[r'nodes "node9" not found', r"node node9: no snapshot \(exit 3\)"], runs=[]),
    dict(name="snapshot --via with --all-nodes",
         args=["snapshot", "--all-nodes", "--via", "kube-system/node-shell-n1"],
         rc=3, stdout="", stderr=[r"--via names one pod on one node"], runs=[]),
    dict(name="snapshot without nodes",
         args=["snapshot"], rc=3, stdout="", stderr=[r"which nodes\? give --all-nodes or --node NODE"], calls=[]),
    dict(name="unknown command", args=["frobnicate"], rc=3, stdout="",
         stderr=[r"unknown command 'frobnicate': inspect or snapshot"], calls=[]),
    dict(name="--help teaches", args=["--help"], rc=0,
         stdout=r"re:(?s)kubectl dpinspect inspect --src client/client --dst management-ui/management-ui --dport 9001"
                r".*Exit codes", calls=[]),
    dict(name="inspect --help lists the options", args=["inspect", "--help"], rc=0,
         stdout=r"re:(?s)--src NS/POD.*--dst DEST.*--via NS/POD.*--image IMG.*--dpinspect-path.*--dry-run", calls=[]),
    dict(name="snapshot --help", args=["snapshot", "--help"], rc=0,
         stdout=r"re:(?s)--all-nodes.*DIR/NODE\.snapshot\.json.*dpinspect compare", calls=[]),
]


def write_exe(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_runs(path):
    """The fake dpinspect's log: RUN, node, chroot (none: not run through chroot), args..., END."""
    runs = []
    if os.path.exists(path):
        for rec in open(path).read().split("RUN\n")[1:]:
            lines = rec.split("\n")
            end = lines.index("END")
            runs.append((lines[0], None if lines[1] == "none" else lines[1], lines[2:end]))
    return runs


def run_case(plugin, case, tmp):
    work = tempfile.mkdtemp(dir=tmp)
    kbin = os.path.join(work, "kbin")
    node_bin = os.path.join(work, "node-bin")
    host = os.path.join(work, "host")
    state = os.path.join(work, "state")
    for d in (kbin, node_bin, os.path.join(host, "usr", "local", "bin"), state):
        os.makedirs(d)
    # This interpreter, not `env python3`: a pyenv shim on PATH costs a second a call.
    write_exe(os.path.join(kbin, "kubectl"),
              f'#!/bin/sh\nexec "{sys.executable}" -S "{os.path.join(HERE, "fake_kubectl.py")}" "$@"\n')
    write_exe(os.path.join(node_bin, "chroot"), FAKE_CHROOT)
    write_exe(os.path.join(host, "usr", "local", "bin", "dpinspect"), FAKE_DPINSPECT)
    for where in case.get("install", []):
        # dpinspect elsewhere: on the host (/host/...), or in the pod's own image (node-bin).
        path = os.path.join(host, where.lstrip("/")) if where.startswith("/") else os.path.join(node_bin, where)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_exe(path, FAKE_DPINSPECT)
    kubectl_log = os.path.join(work, "kubectl.log")
    dpinspect_log = os.path.join(work, "dpinspect.log")
    env = dict(os.environ, PATH=kbin + ":" + os.environ["PATH"], TMPDIR=work,
               FAKE_KUBECTL_LOG=kubectl_log, FAKE_KUBECTL_CLUSTER=os.path.join(FIXTURES, "cluster.json"),
               FAKE_KUBECTL_STATE=state, FAKE_BIN=node_bin, FAKE_HOST_ROOT=host,
               FAKE_DPINSPECT_LOG=dpinspect_log, FAKE_REPORT=os.path.join(FIXTURES, "report-denied.txt"))
    env.pop("KUBECTL", None)
    env.update(case.get("env", {}))
    args = [a.replace("{dir}", work) for a in case["args"]]
    p = subprocess.run(["bash", plugin, *args], capture_output=True, text=True, env=env, cwd=work, timeout=60)
    errors = []
    if p.returncode != case["rc"]:
        errors.append(f"exit code {p.returncode}, expected {case['rc']}")
    want = case.get("stdout")
    if want is not None:
        if want.startswith("re:"):
            if not re.search(want[3:], p.stdout, re.M):
                errors.append(f"stdout does not match {want[3:]!r}")
        elif p.stdout != want:
            errors.append("stdout differs from the expected text")
    for rx in case.get("stderr", []):
        if not re.search(rx, p.stderr, re.M):
            errors.append(f"stderr lacks {rx!r}")
    if "calls" in case:
        calls = read_lines(kubectl_log)
        if calls != case["calls"]:
            errors.append("kubectl calls differ:\n      got:  " + "\n            ".join(json.dumps(c) for c in calls)
                          + "\n      want: " + "\n            ".join(json.dumps(c) for c in case["calls"]))
    if "runs" in case:
        runs = read_runs(dpinspect_log)
        want_runs = [tuple(r) for r in case["runs"]]
        if runs != want_runs:
            errors.append(f"dpinspect runs {runs}, expected {want_runs}")
    for name, rx in case.get("files", {}).items():
        path = os.path.join(work, name)
        if rx is None:
            if os.path.exists(path):
                errors.append(f"{name} exists")
        elif not os.path.exists(path):
            errors.append(f"{name} not written")
        elif not re.search(rx, open(path).read()):
            errors.append(f"{name} does not match {rx!r}")
    left = []
    if os.path.exists(os.path.join(state, "debug-pods.json")):
        left = list(json.load(open(os.path.join(state, "debug-pods.json"))))
    if left and not case.get("keep"):
        errors.append(f"debugging pods left behind: {left}")
    if case.get("keep") and not left:
        errors.append("--keep-debug-pod: the debugging pod was deleted")
    if "Traceback" in p.stderr:
        errors.append("a fake crashed")
    if errors:
        errors.append(f"stdout:\n{p.stdout}stderr:\n{p.stderr}")
    return errors


# Operators run the plugin on their laptops: macOS ships bash 3.2, which has none of these.
BASH4 = [(r"declare -A|local -A|typeset -A", "associative arrays"), (r"\bmapfile\b|\breadarray\b", "mapfile"),
         (r"\$\{[A-Za-z_]+(,,|\^\^)", "case conversion ${x,,}"), (r"\[\[ -v ", "[[ -v ]]"),
         (r"&>>|\|&", "&>> or |&"), (r"^\s*set -[a-z]*u", "set -u (an empty \"${a[@]}\" fails in bash < 4.4)")]


def static_checks(plugin):
    errors = []
    # Comments may name what they avoid.
    text = "".join(re.sub(r"^\s*#.*", "", line) for line in open(plugin).readlines())
    for rx, what in BASH4:
        for m in re.finditer(rx, text, re.M):
            errors.append(f"line {text.count(chr(10), 0, m.start()) + 1}: {what} (not in bash 3.2)")
    p = subprocess.run(["bash", "-n", plugin], capture_output=True, text=True)
    if p.returncode:
        errors.append("bash -n: " + p.stderr)
    if shutil.which("shellcheck"):
        p = subprocess.run(["shellcheck", "-s", "bash", plugin], capture_output=True, text=True)
        if p.returncode:
            errors.append("shellcheck:\n" + p.stdout)
    else:
        print("note: shellcheck not installed, not run")
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plugin", default=os.path.join(TOP, "plugin", "kubectl-dpinspect"))
    a = ap.parse_args()
    if not shutil.which("bash"):
        print("SKIP: no bash")
        return 77
    failed = 0
    plugin = os.path.abspath(a.plugin)
    with tempfile.TemporaryDirectory(prefix="kubectl-plugin-") as tmp:
        # Cases are independent (a directory each); most of their time is process start-up.
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(lambda c: run_case(plugin, c, tmp), CASES))
        names = [c["name"] for c in CASES] + ["the script: bash 3.2 constructs only, bash -n, shellcheck"]
        results.append(static_checks(plugin))
        for name, errors in zip(names, results):
            print(("FAIL " if errors else "ok   ") + name)
            for e in errors:
                print("    " + e.replace("\n", "\n    "))
            failed += bool(errors)
    print(f"{len(names) - failed}/{len(names)} cases passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
