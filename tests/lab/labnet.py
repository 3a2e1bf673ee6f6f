"""Network-namespace plumbing for the dpinspect lab: a Calico-shaped node built from netns + veths.

Layout of one lab called N (every name starts with PREFIX so `lab down --all` finds them all):

    dpl-N-remote  eth0 remote_ip/prefix  --veth--  eth0 node_ip/prefix  dpl-N-node
    (answers for every address                     caliXXXX (ee:ee:..)  --veth--  eth0 pod_ip/32  dpl-N-p<i>
     not on the node's side)

The node namespace is where the rendered ruleset lives and where dpinspect and the kernel oracle look.
Pods reach the node the way Calico wires them: a /32 on eth0 and a default route via 169.254.1.1,
which the node answers by proxy ARP on the cali interface. The node routes each pod IP with a /32
`scope link` route to its cali interface. The "remote" namespace stands for everything beyond the
node's uplink (other nodes, the internet), so remote->pod flows enter through eth0 like real ones.

State of lab N lives in /run/dpinspect-lab/N/ (lab.json, rendered rules, server pids and logs).
Nothing here touches the root namespace: every command runs with `nsenter --net=/run/netns/...`
or inside `ip netns`/`ip -n` on our own namespaces.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

PREFIX = "dpl-"
STATE_ROOT = Path("/run/dpinspect-lab")
NETNS_DIR = Path("/run/netns")
HERE = Path(__file__).resolve().parent
CALICO_GW = "169.254.1.1"          # Calico's fake next hop inside every pod
CALICO_HOST_MAC = "ee:ee:ee:ee:ee:ee"  # Felix gives every host-side workload veth this MAC
LAB_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,23}$")  # no '-': keeps "dpl-<N>-" prefixes unambiguous
LAYOUTS = ("nftables", "iptables-nft")  # rule layouts (render.py); the kernel reads them with nft trace
EBPF = "ebpf"  # Calico's eBPF dataplane: maps + BPF programs (ebpfnode.py), no Calico chains
DATAPLANES = (*LAYOUTS, EBPF)

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class LabError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------
# Running things inside a namespace


def netns_path(ns: str) -> str:
    return str(NETNS_DIR / ns)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def in_netns(ns: str):
    """Switch the calling thread into netns `ns` for the block, then back.

    Sockets keep the namespace they were created in, so the oracle opens its probe sockets in
    the source pod this way without spawning a process per flow. Only this thread moves.
    """
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns_path(ns), os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(orig)
    finally:
        os.close(target)
        os.close(orig)


def ns_argv(ns: str | None, argv: list[str]) -> list[str]:
    # nsenter --net only switches the network namespace (unlike `ip netns exec`, which also
    # remounts /sys); that is all nft/iptables/ipset need, and it is cheaper per call.
    return ["nsenter", f"--net={netns_path(ns)}", *argv] if ns else list(argv)


def run(argv: list[str], ns: str | None = None, input: str | None = None, check: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess:
    cp = subprocess.run(ns_argv(ns, argv), input=input, capture_output=True, text=True, timeout=timeout)
    if check and cp.returncode != 0:
        where = f" (in {ns})" if ns else ""
        raise LabError(f"{' '.join(argv)}{where} failed ({cp.returncode}): {cp.stderr.strip() or cp.stdout.strip()}")
    return cp


class Nft:
    """libnftables in this process (ctypes, no package needed), for nft commands run many times in
    one namespace: the oracle's per-flow trace table and rule counters. Each call would otherwise be
    an `nsenter` + `nft` process whose start-up costs more CPU than the command.

    Every command runs with the calling thread inside `ns` (in_netns): the context's netlink socket
    is opened in nft_ctx_new and reopened by libnftables on some errors, and either must happen in
    the node's namespace, never in the root one. Use as a context manager (frees the context).
    Calls are serialised: libnftables keeps some global state, and labs may run in threads."""

    _OUTPUT_JSON = 1 << 4  # NFT_CTX_OUTPUT_JSON
    _lib = None
    _lock = threading.Lock()

    def __init__(self, ns: str):
        if Nft._lib is None:
            lib = ctypes.CDLL("libnftables.so.1", use_errno=True)
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
            for fn in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
                getattr(lib, fn).argtypes = [ctypes.c_void_p]
            for fn in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
                getattr(lib, fn).argtypes = [ctypes.c_void_p]
                getattr(lib, fn).restype = ctypes.c_char_p
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            Nft._lib = lib
        self.ns = ns
        with Nft._lock, in_netns(ns):
            self.ctx = Nft._lib.nft_ctx_new(0)
        if not self.ctx:
            raise LabError(f"nft_ctx_new in {ns} failed")
        Nft._lib.nft_ctx_buffer_output(self.ctx)
        Nft._lib.nft_ctx_buffer_error(self.ctx)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self.ctx:
            with Nft._lock:
                Nft._lib.nft_ctx_free(self.ctx)
            self.ctx = None

    def cmd(self, text: str, json_output: bool = False, check: bool = True) -> str:
        """Run nft command(s) `text` (what `nft -f -` reads, or `nft [-j] ARGS`); return the output."""
        lib = Nft._lib
        with Nft._lock, in_netns(self.ns):
            lib.nft_ctx_output_set_flags(self.ctx, Nft._OUTPUT_JSON if json_output else 0)
            rc = lib.nft_run_cmd_from_buffer(self.ctx, text.encode())
            out = (lib.nft_ctx_get_output_buffer(self.ctx) or b"").decode()
            err = (lib.nft_ctx_get_error_buffer(self.ctx) or b"").decode()
        if check and rc != 0:
            raise LabError(f"nft {text.strip()!r} (in {self.ns}) failed ({rc}): {err.strip() or out.strip()}")
        return out


def ip_batch(ns: str, *commands: tuple[str, ...], v6: bool = False) -> None:
    """`ip [-6]` commands in ns, in order, in one process (`ip -batch`; it stops at the first that
    fails): a lab is a few hundred of them, and an `ip` process costs more CPU to start than its
    command. A batch line takes no options: v6 gives the whole batch `-6`."""
    run(["ip", "-n", ns, *(["-6"] if v6 else []), "-batch", "-"],
        input="".join(" ".join(cmd) + "\n" for cmd in commands))


def sysctl(ns: str, key: str, value: str | int) -> None:
    # /proc/sys/net resolves against the caller's netns, so writing it from inside in_netns
    # sets the namespace's value without a subprocess.
    with in_netns(ns):
        Path("/proc/sys", *key.split(".")).write_text(f"{value}\n")


# --------------------------------------------------------------------------------------------
# Names


def node_ns(lab: str) -> str:
    return f"{PREFIX}{lab}-node"


def remote_ns(lab: str) -> str:
    return f"{PREFIX}{lab}-remote"


def pod_ns(lab: str, index: int) -> str:
    return f"{PREFIX}{lab}-p{index}"


def lab_namespaces(lab: str) -> list[str]:
    """Every existing netns belonging to lab `lab` (or to every lab when lab is None)."""
    if not NETNS_DIR.is_dir():
        return []
    prefix = f"{PREFIX}{lab}-" if lab else PREFIX
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


def state_dir(lab: str) -> Path:
    return STATE_ROOT / lab


def check_lab_name(lab: str) -> None:
    if not LAB_NAME_RE.match(lab):
        raise LabError(f"lab name {lab!r}: use 1-24 of [a-z0-9_], starting with a letter or digit")


# --------------------------------------------------------------------------------------------
# Building the topology


def netns_unusable() -> str | None:
    """None when this machine lets us create network namespaces, else one line saying why not
    (kernel tests print it and skip)."""
    probe = f"{PREFIX}probe{os.getpid()}"
    try:
        cp = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return f"cannot run `ip netns add`: {e}"
    if cp.returncode != 0:
        return f"network namespaces unusable (`ip netns add` failed: {cp.stderr.strip() or cp.returncode})"
    cp = subprocess.run(["ip", "netns", "exec", probe, "true"], capture_output=True, text=True, timeout=30)
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True, timeout=30)
    if cp.returncode != 0:
        return f"network namespaces unusable (`ip netns exec` failed: {cp.stderr.strip() or cp.returncode})"
    return None


def _add_netns(ns: str) -> None:
    """The namespace only: its `link set lo up` goes into its first ip_batch."""
    run(["ip", "netns", "add", ns])


LO_UP = ("link", "set", "lo", "up")


# A refused probe is told by an ICMP error; the kernel's per-destination rate limit (1 s, burst 6)
# would turn some of them into timeouts, depending on how fast earlier flows ran; the per-netns
# global one (burst 50) could when many probes run at once (oracle.probe_fates).
NO_ICMP_RATELIMIT = (("net.ipv4.icmp_ratelimit", 0), ("net.ipv4.icmp_msgs_burst", 1000))


def build_node(lab: str, node: dict) -> None:
    """Node netns + remote netns joined by the uplink veth; forwarding on, rp_filter off.

    rp_filter is off because a reverse-path drop happens in routing, after prerouting, and
    would show up in the trace as a packet that simply vanished; Calico's own RPF check is a
    rule in raw PREROUTING and is traced like any other rule.
    """
    nns, rns = node_ns(lab), remote_ns(lab)
    uplink = node.get("uplink") or "eth0"
    _add_netns(nns)
    _add_netns(rns)
    # onlink: works even when the scenario puts remote_ip outside the node's prefix.
    ip_batch(nns, LO_UP, ("link", "add", uplink, "type", "veth", "peer", "name", "eth0", "netns", rns),
             ("addr", "add", f"{node['ip']}/{node['prefix']}", "dev", uplink), ("link", "set", uplink, "up"),
             ("route", "add", "default", "via", node["remote_ip"], "dev", uplink, "onlink"))
    ip_batch(rns, LO_UP, ("addr", "add", f"{node['remote_ip']}/{node['prefix']}", "dev", "eth0"),
             ("link", "set", "eth0", "up"), ("route", "add", "default", "via", node["ip"], "dev", "eth0", "onlink"))
    for key, value in (("net.ipv4.ip_forward", 1), ("net.ipv4.conf.all.rp_filter", 0),
                       ("net.ipv4.conf.default.rp_filter", 0), (f"net.ipv4.conf.{uplink}.rp_filter", 0),
                       *NO_ICMP_RATELIMIT):
        sysctl(nns, key, value)


def build_pod(lab: str, index: int, pod: dict) -> None:
    """One workload: veth caliXXXX (node) <-> eth0 (pod), wired exactly as Calico's CNI does."""
    nns, pns, iface = node_ns(lab), pod_ns(lab, index), pod["iface"]
    _add_netns(pns)
    # The /32 route needs the cali interface up (administratively), not its peer.
    ip_batch(nns, ("link", "add", iface, "type", "veth", "peer", "name", "eth0", "netns", pns),
             ("link", "set", iface, "address", CALICO_HOST_MAC), ("link", "set", iface, "up"),
             ("route", "add", f"{pod['ip']}/32", "dev", iface, "scope", "link"))
    ip_batch(pns, LO_UP, ("link", "set", "eth0", "up"), ("addr", "add", f"{pod['ip']}/32", "dev", "eth0"),
             ("route", "add", CALICO_GW, "dev", "eth0", "scope", "link"),
             ("route", "add", "default", "via", CALICO_GW, "dev", "eth0"))
    # proxy_arp answers the pod's ARP for 169.254.1.1; proxy_delay 0 avoids the default random
    # delay of up to 0.8 s on the first reply (Felix sets both).
    sysctl(nns, f"net.ipv4.conf.{iface}.proxy_arp", 1)
    sysctl(nns, f"net.ipv4.neigh.{iface}.proxy_delay", 0)
    sysctl(nns, f"net.ipv4.conf.{iface}.rp_filter", 0)
    for key, value in NO_ICMP_RATELIMIT:
        sysctl(pns, key, value)


REMOTE_OUT_TABLE = "100"


# --------------------------------------------------------------------------------------------
# IPv6 (dual-stack scenarios), on top of the v4 wiring above, as Calico's CNI and Felix set it up:
# the pod gets its address as a /128 on eth0 and a default route via the link-local address of
# the host-side veth, fe80::ecee:eeff:feee:eeee (the EUI-64 address of ee:ee:ee:ee:ee:ee; the CNI
# plugin reads it from the host veth); the node routes each pod's /128 to its cali interface and
# has proxy_ndp on it (Felix). DAD is off on both veth ends (the CNI plugin turns it off too), so
# the link-local address answers at once. The remote namespace answers every v6 address, like v4.

CALICO_GW6 = "fe80::ecee:eeff:feee:eeee"
NO_ICMP6_RATELIMIT = (("net.ipv6.icmp.ratelimit", 0),)


def build_v6(lab: str, topo: dict) -> None:
    nns, rns, node = node_ns(lab), remote_ns(lab), topo["node"]
    uplink = node.get("uplink") or "eth0"
    prefix = node.get("prefix6", 64)
    for ns in (nns, rns):
        for key, value in (("net.ipv6.conf.all.disable_ipv6", 0), *NO_ICMP6_RATELIMIT):
            sysctl(ns, key, value)
    sysctl(nns, "net.ipv6.conf.all.forwarding", 1)
    node_cmds = [("addr", "add", f"{node['ip6']}/{prefix}", "dev", uplink, "nodad"),
                 ("route", "add", "default", "via", node["remote_ip6"], "dev", uplink)]
    v6_pods = [(pod_ns(lab, i), pod) for i, pod in enumerate(topo["pods"]) if pod.get("ip6")]
    for pns, pod in v6_pods:
        iface = pod["iface"]
        sysctl(nns, f"net.ipv6.conf.{iface}.accept_dad", 0)
        sysctl(nns, f"net.ipv6.conf.{iface}.accept_ra", 0)
        sysctl(nns, f"net.ipv6.conf.{iface}.proxy_ndp", 1)
        for key, value in (("net.ipv6.conf.eth0.accept_dad", 0), *NO_ICMP6_RATELIMIT):
            sysctl(pns, key, value)
        # The link-local address came up tentative (DAD was on then): replace it by a valid one.
        node_cmds += [("addr", "flush", "dev", iface, "scope", "link"),
                      ("addr", "add", f"{CALICO_GW6}/64", "dev", iface, "nodad"),
                      ("route", "add", f"{pod['ip6']}/128", "dev", iface)]
    ip_batch(nns, *node_cmds, v6=True)
    for pns, pod in v6_pods:
        ip_batch(pns, ("addr", "add", f"{pod['ip6']}/128", "dev", "eth0", "nodad"),
                 ("route", "add", "default", "via", CALICO_GW6, "dev", "eth0"), v6=True)
    # The world beyond the uplink, as route_world does for v4.
    node_side = {node["ip6"]} | {p["ip6"] for p in topo["pods"] if p.get("ip6")} | {
        s["cluster_ip6"] for s in topo.get("services", []) if s.get("cluster_ip6")}
    ip_batch(rns, ("addr", "add", f"{node['remote_ip6']}/{prefix}", "dev", "eth0", "nodad"),
             *(("route", "add", "table", REMOTE_OUT_TABLE, f"{addr}/128", "via", node["ip6"], "dev", "eth0")
               for addr in sorted(node_side)),
             ("rule", "add", "pref", "10", "iif", "lo", "lookup", REMOTE_OUT_TABLE),
             ("rule", "add", "pref", "100", "lookup", "local"), ("rule", "del", "pref", "0"),
             ("route", "add", "table", "local", "local", "::/0", "dev", "lo"), v6=True)


def route_world(lab: str, topo: dict) -> None:
    """Make the remote namespace stand for the whole world beyond the node's uplink.

    Received packets: `local 0.0.0.0/0` (AnyIP) in the local table makes every destination local,
    so a probe to "the internet" (or to a service IP that kube-proxy left un-NATed and the node
    sent to its default gateway) is answered at once (RST, port unreachable, echo reply) instead
    of timing out. Sent packets (rule `iif lo`, looked up before the local table): the node's IP,
    its pods and its service IPs go out through the uplink, so remote flows and every answer to a
    pod reach the node. Remote flows may use any source address.
    """
    rns, node = remote_ns(lab), topo["node"]
    node_side = {node["ip"]} | {p["ip"] for p in topo["pods"]} | {s["cluster_ip"] for s in topo.get("services", [])}
    ip_batch(rns, *(("route", "add", "table", REMOTE_OUT_TABLE, f"{addr}/32", "via", node["ip"], "dev", "eth0",
                     "onlink") for addr in sorted(node_side)),
             ("rule", "add", "pref", "10", "iif", "lo", "lookup", REMOTE_OUT_TABLE),
             ("rule", "add", "pref", "100", "lookup", "local"), ("rule", "del", "pref", "0"),
             ("route", "add", "table", "local", "local", "0.0.0.0/0", "dev", "lo"))
    sysctl(rns, "net.ipv4.conf.all.rp_filter", 0)
    sysctl(rns, "net.ipv4.conf.eth0.rp_filter", 0)


# --------------------------------------------------------------------------------------------
# Rules


def render(scenario: Path, layout: str, out: Path) -> None:
    # DPL_LAB_RENDER: another renderer with the same contract (development, debugging).
    renderer = Path(os.environ.get("DPL_LAB_RENDER") or HERE / "render.py")
    if not renderer.exists():
        raise LabError(f"{renderer} is missing; pass --rendered DIR with a pre-rendered topology")
    out.mkdir(parents=True, exist_ok=True)
    run([sys.executable, str(renderer), str(scenario), "--layout", layout, "--out", str(out)])


def detect_layout(rendered: Path) -> str:
    if (rendered / "ruleset.nft").exists():
        return "nftables"
    if (rendered / "iptables.rules").exists():
        return "iptables-nft"
    raise LabError(f"{rendered}: neither ruleset.nft nor iptables.rules")


def load_rules(lab: str, rendered: Path, layout: str) -> None:
    nns = node_ns(lab)
    if layout == "nftables":
        run(["nft", "-f", str(rendered / "ruleset.nft")], ns=nns)
        return
    ipsets = rendered / "ipsets.restore"
    if ipsets.exists() and ipsets.stat().st_size:
        run(["ipset", "restore"], ns=nns, input=ipsets.read_text())
    run(["iptables-nft-restore"], ns=nns, input=(rendered / "iptables.rules").read_text())
    if (rendered / "ip6tables.rules").exists():
        run(["ip6tables-nft-restore"], ns=nns, input=(rendered / "ip6tables.rules").read_text())


# --------------------------------------------------------------------------------------------
# Servers inside pods (this file is also their entry point: `labnet.py serve ...`)


def start_servers(lab: str, spec: list[dict], sdir: Path) -> int | None:
    """Start the lab's one detached server process, for every `serve` entry of its pods and node;
    wait until all of them listen. Returns its pid. Each entry names the netns its socket is opened
    in ("ns"; the process itself runs in the node netns): one Python start-up per lab, not one per
    pod. An entry with "v6" (a dual-stack pod, wired by build_v6) is served on [::] too."""
    if not spec:
        return None
    ready = sdir / "servers.ready"
    ready.unlink(missing_ok=True)
    log = open(sdir / "servers.log", "w")
    argv = ns_argv(node_ns(lab), [sys.executable, str(Path(__file__).resolve()), "serve", "--lab", lab,
                                  "--ready", str(ready), "--spec", json.dumps(spec)])
    # start_new_session: the server outlives `lab up` and ignores the terminal's Ctrl-C;
    # `lab down` kills it by pid.
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 10
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            # The log goes away with the lab (`lab down` on this failure): quote it here.
            printed = (sdir / "servers.log").read_text(errors="replace").strip()[-1500:]
            state = f"exited with {proc.returncode}" if proc.poll() is not None else "not ready after 10 s"
            raise LabError(f"the servers of lab {lab} did not start ({state}); they printed: "
                           f"{printed or '(nothing)'}")
        time.sleep(0.02)
    return proc.pid


def server_spec(lab: str, topo: dict, v6: bool) -> list[dict]:
    """start_servers' entries: each pod's `serve` entries in its netns (v6: on [::] too for a
    dual-stack pod), and the node's own (`node.serve`, host-endpoint flows to the host) bound to the
    node IP so they answer only for it, like a host service listening on its node address."""
    spec = [dict(s, ns=pod_ns(lab, i), v6=v6 and bool(pod.get("ip6")))
            for i, pod in enumerate(topo["pods"]) for s in pod.get("serve", [])]
    return spec + [dict(s, ns=node_ns(lab), bind=topo["node"]["ip"]) for s in topo["node"].get("serve", [])]


def serve(spec: list[dict], ready: Path) -> None:
    """Run the lab's servers until killed: http404 / tcp accept / udp echo, one thread each, each
    listening in its entry's netns."""
    import http.server
    import socket
    import socketserver
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self):
            self.send_response(404, "Not Found")
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = _answer

        def log_message(self, fmt, *args):
            sys.stderr.write("http %s %s\n" % (self.client_address[0], fmt % args))

    class Accept(socketserver.BaseRequestHandler):
        def handle(self):
            # Hold the connection until the client closes (or 2 s), like a quiet TCP service.
            self.request.settimeout(2)
            with contextlib.suppress(OSError):
                while self.request.recv(4096):
                    pass

    class Echo(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            sock.sendto(data, self.client_address)  # the echo tells the oracle it was delivered

    class TCPServer(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
        request_queue_size = 128  # socketserver's 5 drops SYNs when probes arrive many at a time

    class HTTPServer(http.server.ThreadingHTTPServer):
        request_queue_size = 128
        def server_bind(self):
            # HTTPServer.server_bind asks socket.getfqdn() for a server name: a reverse DNS lookup
            # that times out on hosts whose /etc/hosts lacks their name. Nothing here needs it.
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = self.server_address[:2]

    class V6Only:
        """The same server on [::] for a dual-stack pod, beside the v4 one on the same port."""
        address_family = socket.AF_INET6

        def server_bind(self):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            super().server_bind()

    servers = []
    for entry in spec:
        addr = (entry.get("bind", "0.0.0.0"), int(entry["port"]))
        kind = entry.get("kind") or ("udp" if entry.get("proto") == "udp" else "tcp")
        if kind == "http404":
            cls, handler = HTTPServer, NotFound
        elif kind == "udp" or entry.get("proto") == "udp":
            cls, handler = socketserver.UDPServer, Echo
        else:
            cls, handler = TCPServer, Accept
        try:
            with in_netns(entry["ns"]):  # a socket stays in the netns it was created in
                servers.append(cls(addr, handler))
                if entry.get("v6"):
                    servers.append(type("V6" + cls.__name__, (V6Only, cls), {})(("::", addr[1]), handler))
        except OSError as e:
            raise LabError(f"serve {entry}: {e}") from e
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    ready.write_text(str(os.getpid()))
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


# --------------------------------------------------------------------------------------------
# Process cleanup


def _is_ours(pid: int, lab: str) -> bool:
    """True when pid is still one of lab's servers (pids get reused; never kill a stranger)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in cmd and lab.encode() in cmd


def kill_pid(pid: int, lab: str) -> None:
    if not _is_ours(pid, lab):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        if not _is_ours(pid, lab):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def pids_in_netns(namespaces: list[str]) -> list[int]:
    """Processes living in any of our namespaces (found by netns inode, not by name)."""
    inodes = set()
    for ns in namespaces:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(netns_path(ns)).st_ino)
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        with contextlib.suppress(OSError):
            if os.stat(entry / "ns" / "net").st_ino in inodes:
                found.append(int(entry.name))
    return found


# --------------------------------------------------------------------------------------------
# A lab: build, describe, tear down


class Lab:
    """One Calico-shaped node with its pods. Use as a context manager to guarantee teardown."""

    def __init__(self, name: str, info: dict):
        self.name = name
        self.info = info

    # -- construction --------------------------------------------------------------------

    @classmethod
    def up(cls, name: str, scenario: Path | None, layout: str | None, rendered: Path | None = None,
           owner_pid: int | None = None, calico_version: str | None = None) -> "Lab":
        """Build lab `name`. owner_pid: the lab belongs to that process (tests); once it is gone,
        reap_stale() removes the lab. Without it the lab lives until `lab down`.
        layout "ebpf": the eBPF node of `calico_version` (ebpfnode.py), from a scenario file only."""
        check_lab_name(name)
        if layout == EBPF and not scenario:
            raise LabError("the eBPF node is built from --scenario (node.py reads the scenario itself)")
        if lab_namespaces(name) or state_dir(name).exists():
            raise LabError(f"lab {name} already exists; run `lab down {name}` first")
        sdir = state_dir(name)
        sdir.mkdir(parents=True)
        lab = cls(name, {"name": name, "node_ns": node_ns(name), "remote_ns": remote_ns(name),
                         "scenario": str(scenario) if scenario else None, "pids": [], "owner_pid": owner_pid})
        try:
            lab._build(scenario, layout, rendered, sdir, calico_version)
        except BaseException:
            down(name)
            raise
        return lab

    def _build(self, scenario, layout, rendered, sdir: Path, calico_version: str | None = None) -> None:
        out = sdir / "render"
        if rendered:
            shutil.copytree(rendered, out)
        else:
            # The eBPF node takes only the topology from the renderer; its rules are never loaded.
            render(Path(scenario).resolve(), "nftables" if layout == EBPF else layout, out)
        layout = layout or detect_layout(out)
        topo = json.loads((out / "topology.json").read_text())
        self.info.update(layout=layout, rendered=str(out), topology=topo,
                         pods={f"{p['namespace']}/{p['name']}": pod_ns(self.name, i)
                               for i, p in enumerate(topo["pods"])})
        self.save()
        build_node(self.name, topo["node"])
        for i, pod in enumerate(topo["pods"]):
            build_pod(self.name, i, pod)
        route_world(self.name, topo)
        if any(p.get("ip6") for p in topo["pods"]) and layout != EBPF:
            build_v6(self.name, topo)  # the eBPF tests wire their own v6 (test_ebpf_ipv6.py)
        if layout == EBPF:
            import ebpfnode
            self.info["ebpf"] = ebpfnode.build(self.name, Path(scenario).resolve(), topo,
                                               calico_version or ebpfnode.DEFAULT_VERSION)
            self.save()
        else:
            load_rules(self.name, out, layout)
        pid = start_servers(self.name, server_spec(self.name, topo, v6=layout != EBPF), sdir)
        if pid:
            self.info["pids"].append(pid)
            self.save()

    @classmethod
    def load(cls, name: str) -> "Lab":
        path = state_dir(name) / "lab.json"
        if not path.exists():
            raise LabError(f"no lab {name} (no {path})")
        return cls(name, json.loads(path.read_text()))

    def save(self) -> None:
        path = state_dir(self.name) / "lab.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info, indent=1))
        tmp.replace(path)

    def down(self) -> None:
        down(self.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.down()

    # -- description ---------------------------------------------------------------------

    @property
    def node_ns(self) -> str:
        return self.info["node_ns"]

    @property
    def remote_ns(self) -> str:
        return self.info["remote_ns"]

    @property
    def layout(self) -> str:
        return self.info["layout"]

    @property
    def topology(self) -> dict:
        return self.info["topology"]

    def endpoint_ns(self, endpoint: str) -> str:
        """Netns of a flow endpoint: "pod:<ns>/<name>", "host" or "remote"."""
        if endpoint == "host":
            return self.node_ns
        if endpoint == "remote":
            return self.remote_ns
        if endpoint.startswith("pod:") and endpoint[4:] in self.info["pods"]:
            return self.info["pods"][endpoint[4:]]
        raise LabError(f"unknown endpoint {endpoint!r}")

    def pod(self, key: str) -> dict:
        """Topology entry of pod "<namespace>/<name>"."""
        for p in self.topology["pods"]:
            if f"{p['namespace']}/{p['name']}" == key:
                return p
        raise LabError(f"no pod {key}")


def down(name: str) -> None:
    """Remove lab `name`: kill its servers (and anything else in its namespaces), delete them all."""
    sdir = state_dir(name)
    info = {}
    with contextlib.suppress(OSError, ValueError):
        info = json.loads((sdir / "lab.json").read_text())
    for pid in info.get("pids", []):
        kill_pid(pid, name)
    namespaces = lab_namespaces(name)
    # Stragglers (a server whose pid was not recorded yet, a probe left behind): found by netns.
    for pid in pids_in_netns(namespaces):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for ns in namespaces:
        run(["ip", "netns", "delete", ns], check=False)
    import ebpfnode  # the eBPF node's mount namespace and bpffs, if any (after the netns: programs detached)
    ebpfnode.teardown(name)
    shutil.rmtree(sdir, ignore_errors=True)


def reap_stale() -> list[str]:
    """Remove labs whose owning test process died without cleaning up (e.g. killed by a timeout)."""
    reaped = []
    for sdir in STATE_ROOT.iterdir() if STATE_ROOT.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            owner = json.loads((sdir / "lab.json").read_text()).get("owner_pid")
            if owner and not Path(f"/proc/{owner}").exists():
                down(sdir.name)
                reaped.append(sdir.name)
    return reaped


def down_all() -> list[str]:
    names = {p.name for p in STATE_ROOT.iterdir() if p.is_dir()} if STATE_ROOT.is_dir() else set()
    for ns in lab_namespaces(None):
        m = re.match(rf"^{PREFIX}([a-z0-9_]+)-(node|remote|p\d+)$", ns)
        if m:
            names.add(m.group(1))
    for name in sorted(names):
        down(name)
    return sorted(names)


def _serve_main(argv: list[str]) -> None:
    import argparse
    ap = argparse.ArgumentParser(prog="labnet.py serve")
    ap.add_argument("--lab", required=True)  # only so `down` can recognise its own processes
    ap.add_argument("--ready", required=True, type=Path)
    ap.add_argument("--spec", required=True, help="JSON list of entries: pod serve entries plus ns, v6, bind")
    args = ap.parse_args(argv)
    serve(json.loads(args.spec), args.ready)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        _serve_main(sys.argv[2:])
    else:
        sys.exit("usage: labnet.py serve --lab N --ready FILE --spec JSON (use tests/lab/lab for the CLI)")
