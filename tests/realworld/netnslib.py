"""Shared by the realworld tests: root-only command line, commands in a namespace, and private
namespaces (bare, or shaped like a fixture's node) that are removed on exit even on failure."""
import argparse
import os
import subprocess

SKIP = 77  # ctest SKIP_RETURN_CODE


def root_args(description):
    """--dpinspect and --fixtures; None (after printing SKIP) when not root."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--dpinspect", required=True)
    ap.add_argument("--fixtures", required=True)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root to build network namespaces")
        return None
    return a


def sh(*args, ns=None, stdin=None, check=True):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=check)


class Netns:
    """A private namespace dpi-<tag>-<pid>; never the root namespace."""

    def __init__(self, tag):
        self.ns = f"dpi-{tag}-{os.getpid()}"

    def __enter__(self):
        sh("ip", "netns", "add", self.ns)
        return self

    def __exit__(self, *exc):
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


class Node(Netns):
    """A node namespace with a dump's topology (meta.json): uplink with its address and default
    route, one veth per workload with its /32 route."""

    def __init__(self, name, meta):
        super().__init__(f"rw-{name[-7:]}")
        self.meta = meta

    def __enter__(self):
        super().__enter__()
        try:
            topo = self.meta["topology"]
            up = topo["uplink"]
            self.link(up["name"], up["node_ip"])
            sh("ip", "route", "add", "default", "via", up["peer_ip"].split("/")[0], ns=self.ns)
            for wl in topo["workloads"]:
                self.link(wl["iface"], None)
                sh("ip", "route", "add", wl["ip"] + "/32", "dev", wl["iface"], "scope", "link", ns=self.ns)
        except BaseException:
            super().__exit__()
            raise
        return self

    def link(self, name, addr):
        peer = "p" + name[-10:]
        sh("ip", "link", "add", name, "type", "veth", "peer", "name", peer, ns=self.ns)
        for dev in (name, peer):
            sh("ip", "link", "set", dev, "up", ns=self.ns)
        if addr:
            sh("ip", "addr", "add", addr, "dev", name, ns=self.ns)

    def load(self, ipsets, rules):
        if os.path.exists(ipsets):  # the deny dump references no sets
            with open(ipsets) as f:
                sh("ipset", "restore", ns=self.ns, stdin=f.read())
        with open(rules) as f:
            sh("iptables-nft-restore", ns=self.ns, stdin=f.read())
