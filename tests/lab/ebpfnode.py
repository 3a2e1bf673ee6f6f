"""The lab's eBPF node: Calico's pinned maps, policy programs and the tc program, in a private bpffs.

A lab built with `--dataplane ebpf` has the same namespaces, veths, routes and pod servers as the
nftables node, but no Calico chains: policy runs in BPF. On top of labnet's topology this module

  1. creates a persistent mount namespace for the lab, private to it, bound to a file
     (`unshare --mount=<labdir>/ns/mnt --propagation private`; <labdir>/ns is a private bind mount
     of itself so the binding can neither propagate nor loop), and mounts a bpffs at
     <labdir>/bpffs inside it only: nothing is ever pinned in the host's /sys/fs/bpf;
  2. inside that mount namespace and the node netns, runs tests/lab/ebpf/node.py populate (every
     map of the chosen Calico version under <bpffs>/tc/globals, routes, ifstate, IP sets, NAT,
     the policy programs in the jump maps, the policy-debug JSON in <labdir>/policy, standing in for
     /var/run/calico/bpf/policy, and <labdir>/manifest.json),
  3. then dpl-ebpf-attach (bpf/attach), which loads bpf/calico_tc.bpf.c over those maps and attaches
     it to tc ingress and egress of every cali* interface, and of the uplink when the scenario makes
     it a host endpoint (calico_from_hep / calico_to_hep).

Teardown (labnet.down, on every exit path): deleting the node netns detaches the programs;
unmounting the mount-namespace file frees the namespace, its bpffs and every map.

Map access from the host mount namespace (the oracle): `map_fds()` asks a short-lived helper inside
the lab's mount namespace to open the pinned maps and pass the fds back over a socketpair. An fd
works whatever mount namespace its holder lives in.
"""

from __future__ import annotations

import array
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import labnet

HERE = Path(__file__).resolve().parent
NODE_PY = Path(os.environ.get("DPL_LAB_NODE_PY") or HERE / "ebpf" / "node.py")  # env: development stand-in
VERSIONS = ("3.30", "3.32")
DEFAULT_VERSION = "3.32"
ATTACH_NAME = "dpl-ebpf-attach"


def find_attach_tool() -> str:
    """dpl-ebpf-attach: $DPL_EBPF_ATTACH, a build directory of this checkout, or $PATH."""
    env = os.environ.get("DPL_EBPF_ATTACH")
    if env:
        return os.path.abspath(env)  # it runs under nsenter --mount, from another directory
    top = HERE.parent.parent
    for build in sorted(top.glob("build*")):
        cand = build / "bpf" / ATTACH_NAME
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which(ATTACH_NAME)
    if found:
        return found
    raise labnet.LabError(f"{ATTACH_NAME} not found: build it (cmake --build build --target {ATTACH_NAME}) "
                          f"or set DPL_EBPF_ATTACH")


# --------------------------------------------------------------------------------------------
# Paths of one lab


def ns_dir(lab: str) -> Path:
    return labnet.state_dir(lab) / "ns"


def mntns_file(lab: str) -> Path:
    return ns_dir(lab) / "mnt"


def bpffs_dir(lab: str) -> Path:
    return labnet.state_dir(lab) / "bpffs"


def globals_dir(lab: str) -> Path:
    return bpffs_dir(lab) / "tc" / "globals"


def policy_dir(lab: str) -> Path:
    return labnet.state_dir(lab) / "policy"


def manifest_path(lab: str) -> Path:
    return labnet.state_dir(lab) / "manifest.json"


def in_node_argv(lab: str, argv: list[str]) -> list[str]:
    """argv run inside the lab's private mount namespace and its node netns."""
    return ["nsenter", f"--mount={mntns_file(lab)}", f"--net={labnet.netns_path(labnet.node_ns(lab))}", *argv]


def run_in_node(lab: str, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    cp = subprocess.run(in_node_argv(lab, argv), capture_output=True, text=True, timeout=timeout)
    if cp.returncode != 0:
        raise labnet.LabError(f"{' '.join(argv[:3])}... in the eBPF node of {lab} failed ({cp.returncode}): "
                              f"{(cp.stderr.strip() or cp.stdout.strip())[-2000:]}")
    return cp


# --------------------------------------------------------------------------------------------
# Build and teardown


def unusable() -> str | None:
    """None when this machine can give a lab a private mount namespace with a bpffs and load BPF,
    else one line saying why not (the eBPF kernel tests print it and skip)."""
    probe = "d=$(mktemp -d) && mount -t bpf bpf \"$d\" && umount \"$d\"; rc=$?; rmdir \"$d\"; exit $rc"
    try:
        cp = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", probe],
                            capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return f"cannot run unshare: {e}"
    if cp.returncode != 0:
        return f"no private bpffs: `unshare --mount` + `mount -t bpf` failed: {cp.stderr.strip() or cp.returncode}"
    return None



def _mount(*args: str) -> None:
    labnet.run(["mount", *args])


def create_mount_ns(lab: str) -> None:
    nsd = ns_dir(lab)
    nsd.mkdir(parents=True, exist_ok=True)
    _mount("--bind", str(nsd), str(nsd))
    _mount("--make-private", str(nsd))
    mntns_file(lab).touch()
    labnet.run(["unshare", f"--mount={mntns_file(lab)}", "--propagation", "private", "true"])
    bpffs_dir(lab).mkdir(exist_ok=True)
    labnet.run(["nsenter", f"--mount={mntns_file(lab)}", "mount", "-t", "bpf", "bpf", str(bpffs_dir(lab))])
    labnet.run(["nsenter", f"--mount={mntns_file(lab)}", "mkdir", "-p", str(globals_dir(lab))])


def iface_indexes(node_ns: str, names: list[str]) -> dict[str, int]:
    cp = labnet.run(["ip", "-j", "link", "show"], ns=node_ns)
    have = {link["ifname"]: link["ifindex"] for link in json.loads(cp.stdout)}
    missing = [n for n in names if n not in have]
    if missing:
        raise labnet.LabError(f"interfaces missing in {node_ns}: {', '.join(missing)}")
    return {n: have[n] for n in names}


def build(lab: str, scenario: Path, topo: dict, version: str) -> dict:
    """Mount namespace + bpffs, Calico's maps and policy programs, the tc program. Returns lab.json facts."""
    if version not in VERSIONS:
        raise labnet.LabError(f"--calico-version: the lab's eBPF node supports {', '.join(VERSIONS)}, not {version}")
    attach = find_attach_tool()
    create_mount_ns(lab)
    policy_dir(lab).mkdir(exist_ok=True)
    cali = [p["iface"] for p in topo["pods"]]
    uplink = topo["node"].get("uplink") or "eth0"
    ifaces = iface_indexes(labnet.node_ns(lab), cali + [uplink])
    cp = run_in_node(lab, [sys.executable, str(NODE_PY), "populate", "--scenario", str(scenario),
                           "--version", version, "--globals", str(globals_dir(lab)),
                           "--policy-dir", str(policy_dir(lab)), "--ifaces-json", json.dumps(ifaces)])
    if not manifest_path(lab).exists():
        manifest_path(lab).write_text(cp.stdout)
    argv = [attach, "--globals", str(globals_dir(lab)), "--version", version, "--host-ip", topo["node"]["ip"]]
    for iface in cali:
        argv += ["--iface", iface]
    # A host endpoint on the uplink (node.py loaded its programs): calico_from_hep / calico_to_hep.
    heps = [h["interface"] for h in json.loads(Path(scenario).read_text()).get("host_endpoints", [])]
    if uplink in heps:
        argv += ["--hep", uplink]
    attached = json.loads(run_in_node(lab, argv).stdout)
    return {"calico_version": version, "mntns": str(mntns_file(lab)), "bpffs": str(bpffs_dir(lab)),
            "globals": str(globals_dir(lab)), "policy_dir": str(policy_dir(lab)),
            "manifest": str(manifest_path(lab)), "ifindexes": ifaces, "tc_programs": attached}


def teardown(lab: str) -> None:
    """After the lab's netns are gone: free the mount namespace (and with it the bpffs and maps)."""
    mnt, nsd = mntns_file(lab), ns_dir(lab)
    if mnt.exists():
        subprocess.run(["umount", str(mnt)], capture_output=True)
    if nsd.exists():
        subprocess.run(["umount", str(nsd)], capture_output=True)


# --------------------------------------------------------------------------------------------
# Map fds for the host side (the oracle)


def map_fds(lab: str, names: list[str]) -> dict[str, int]:
    """Open the lab's pinned maps `names` (from <bpffs>/tc/globals) and return fds owned by the caller."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with parent, child:
        helper = [sys.executable, str(Path(__file__).resolve()), "send-fds", str(child.fileno()),
                  str(globals_dir(lab)), *names]
        proc = subprocess.Popen(["nsenter", f"--mount={mntns_file(lab)}", *helper], pass_fds=(child.fileno(),),
                                stderr=subprocess.PIPE, text=True)
        child.close()
        msg, fds, _, _ = socket.recv_fds(parent, 4096, len(names))
        _, err = proc.communicate(timeout=30)
    if proc.returncode != 0 or len(fds) != len(names):
        for fd in fds:
            os.close(fd)
        raise labnet.LabError(f"opening the maps of lab {lab} failed: {err.strip() or msg.decode()}")
    return dict(zip(names, fds))


def _send_fds_main(argv: list[str]) -> int:
    sock_fd, gdir, names = int(argv[0]), argv[1], argv[2:]
    sys.path.insert(0, str(HERE / "ebpf"))
    import bpfsys  # noqa: E402  (the other half of the lab: tests/lab/ebpf)
    sock = socket.socket(fileno=sock_fd)
    fds = [bpfsys.obj_get(os.path.join(gdir, n)) for n in names]
    socket.send_fds(sock, [b"ok"], [int(f) for f in fds])
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "send-fds":
        sys.exit(_send_fds_main(sys.argv[2:]))
    sys.exit("usage: ebpfnode.py send-fds SOCKFD GLOBALS NAME... (internal; use tests/lab/lab)")
