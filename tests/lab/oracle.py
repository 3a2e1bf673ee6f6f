"""The kernel as the oracle: send one real packet per flow and read `nft monitor trace`.

For each flow:
  1. flush the node's conntrack table (so a repeated 5-tuple is `ct state new` again, like dpinspect's
     `--ct new`),
  2. add `table ip dpl-trace` in the NODE netns: chains on prerouting and output at priority -350
     (before raw, -300) whose single rule matches the flow's first packet and sets `meta nftrace 1`,
  3. send that packet from the source namespace (TCP SYN through a non-blocking connect(), a UDP
     datagram, an ICMP packet on a raw socket), from a source port unique to this flow,
  4. wait until the probe has its answer (connected / refused / echo), or the trace shows a drop,
     or `timeout` passes,
  5. delete the trace table. One `nft -a monitor` process runs for the whole Oracle; the
     "delete table ip dpl-trace" event it prints marks the end of the flow's trace in its output,
     because ruleset events and trace events reach its netlink socket in the order they happened.

An IPv6 flow (dual-stack labs) is traced in `table ip6 dpl-trace` the same way (`ip6 saddr/daddr`,
ICMPv6 echo from a raw ICMPv6 socket, `icmpv6 id`).

The verdict and the deciding rule are read from the trace (definition shared with dpinspect):
  - dropped: the rule (or base-chain policy) whose verdict was drop;
  - accepted: the LAST accept (a rule, or a base-chain policy, handle null) issued on the policy hook:
    forward for routed traffic, input for traffic to the node, output for traffic the node sends.
"""

from __future__ import annotations

import errno
import json
import os
import re
import select
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import labnet

TRACE_TABLE = "dpl-trace"
TRACE_PRIORITY = -350  # before raw (-300), so every Calico table is traced, DNAT included
POLICY_HOOKS = ("forward", "input", "output")
SPORT_RANGE = (20000, 30000)  # below the ephemeral range: our ports never collide with the kernel's
RANDOM_ROUND = 3   # connections per endpoint in one round of a random-endpoint service flow
RANDOM_ROUNDS = 4  # at most this many rounds

# trace id 9e4a1c2b ip filter cali-fw-cali123 rule meta mark ... counter packets 0 bytes 0 drop # handle 41 (verdict drop)
TRACE_RE = re.compile(r"^trace id (?P<id>[0-9a-f]+) (?P<family>\S+) (?P<table>\S+) (?P<chain>\S+) (?P<rest>.*)$")
RULE_RE = re.compile(r"^rule (?P<text>.*?)(?: # handle (?P<handle>\d+))? \(verdict (?P<verdict>[^)]*)\)\s*$")
COUNTER_RE = re.compile(r"\bcounter packets \d+ bytes \d+")


def read_flows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


# --------------------------------------------------------------------------------------------
# The ruleset as `nft -j list ruleset` shows it: base-chain hooks and rule counters


def list_ruleset(nft: labnet.Nft | str) -> list[dict]:
    """nft: the node's in-process context, or its netns name (for one listing)."""
    if isinstance(nft, str):
        with labnet.Nft(nft) as ctx:
            return list_ruleset(ctx)
    return json.loads(nft.cmd("list ruleset", json_output=True)).get("nftables", [])


def base_chain_hooks(ruleset: list[dict]) -> dict[tuple, tuple[str, str]]:
    """(family, table, chain) -> (hook, chain type), for every base chain."""
    hooks = {}
    for obj in ruleset:
        chain = obj.get("chain")
        if chain and chain.get("hook"):
            hooks[(chain["family"], chain["table"], chain["name"])] = (chain["hook"], chain.get("type", "filter"))
    return hooks


def rule_counters(ruleset: list[dict]) -> dict[tuple, int]:
    """(family, table, chain, handle) -> packets, for every rule with a counter (trace table excluded)."""
    counts = {}
    for obj in ruleset:
        rule = obj.get("rule")
        if not rule or rule["table"] == TRACE_TABLE:
            continue
        for expr in rule.get("expr", []):
            if isinstance(expr, dict) and isinstance(expr.get("counter"), dict):
                counts[(rule["family"], rule["table"], rule["chain"], rule["handle"])] = expr["counter"]["packets"]
                break
    return counts


def counter_deltas(before: dict, after: dict) -> list[dict]:
    moved = []
    for key, packets in after.items():
        delta = packets - before.get(key, 0)
        if delta:
            family, table, chain, handle = key
            moved.append({"family": family, "table": table, "chain": chain, "handle": handle, "packets": delta})
    return moved


# --------------------------------------------------------------------------------------------
# Conntrack flush over ctnetlink (no conntrack(8) needed)

_NETLINK_NETFILTER = 12
_CT_DELETE = (1 << 8) | 2  # NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE; no attributes = flush
_NLM_F_REQUEST_ACK = 0x1 | 0x4


def flush_conntrack(ns: str) -> None:
    """Both families' tables (a dual-stack lab has IPv6 connections too)."""
    with labnet.in_netns(ns):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_NETFILTER)
    with sock:
        for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), 1):
            body = struct.pack("BBH", family, 0, 0)
            sock.send(struct.pack("=IHHII", 16 + len(body), _CT_DELETE, _NLM_F_REQUEST_ACK, seq, 0) + body)
            reply = sock.recv(4096)
            err = struct.unpack_from("=i", reply, 16)[0]
            if err not in (0, -errno.ENOENT):
                raise OSError(-err, f"conntrack flush in {ns}: {os.strerror(-err)}")


# --------------------------------------------------------------------------------------------
# nft monitor: one process per Oracle, read line by line without threads


class Monitor:
    def __init__(self, ns: str):
        self.proc = subprocess.Popen(labnet.ns_argv(ns, ["nft", "-a", "monitor"]), stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buf = b""

    def lines(self, timeout: float) -> list[str]:
        """Complete lines available within `timeout` seconds (possibly none)."""
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if ready:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                chunk = b""
            if not chunk and self.proc.poll() is not None:
                raise labnet.LabError("nft monitor exited")
            self.buf += chunk
        *complete, self.buf = self.buf.split(b"\n")
        return [c.decode(errors="replace") for c in complete]

    def wait_for(self, predicate, timeout: float) -> list[str]:
        """Read until a line satisfies predicate; return every line read (predicate line included)."""
        got, deadline = [], time.monotonic() + timeout
        while True:
            for line in self.lines(deadline - time.monotonic()):
                got.append(line)
                if predicate(line):
                    return got
            if time.monotonic() > deadline:
                raise labnet.LabError(f"nft monitor: no barrier line within {timeout}s; last lines: {got[-5:]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------------------------
# Trace parsing


@dataclass
class Event:
    trace_id: str
    family: str
    table: str
    chain: str
    kind: str            # packet | rule | policy | verdict
    verdict: str = ""    # accept, drop, continue, return, jump X, goto X
    handle: int | None = None
    text: str = ""
    hook: str | None = None
    chain_type: str | None = None  # of the base chain this event runs under: filter, nat, route


def parse_trace_line(line: str) -> Event | None:
    m = TRACE_RE.match(line)
    if not m:
        return None
    base = dict(trace_id=m["id"], family=m["family"], table=m["table"], chain=m["chain"])
    rest = m["rest"]
    if rest.startswith("packet:"):
        return Event(kind="packet", text=rest[len("packet: "):].strip(), **base)
    if rest.startswith("policy "):
        return Event(kind="policy", verdict=rest.split()[1], text=f"policy {rest.split()[1]}", **base)
    if rest.startswith("verdict "):
        return Event(kind="verdict", verdict=rest[len("verdict "):].strip(), **base)
    r = RULE_RE.match(rest) if rest.startswith("rule ") else None
    if r:
        text = COUNTER_RE.sub("counter", r["text"]).strip()
        return Event(kind="rule", verdict=r["verdict"], handle=int(r["handle"]) if r["handle"] else None,
                     text=text, **base)
    return None  # "unknown rule handle N": a table nft had not cached (only ours)


def assign_hooks(events: list[Event], hooks: dict[tuple, tuple[str, str]]) -> None:
    """Label each event with its hook and chain type; regular chains inherit their base chain's."""
    current = (None, None)
    for ev in events:
        current = hooks.get((ev.family, ev.table, ev.chain), current)
        ev.hook, ev.chain_type = current


def rule_ref(ev: Event) -> dict:
    return {"family": ev.family, "table": ev.table, "chain": ev.chain, "handle": ev.handle,
            "rule": ev.text, "verdict": ev.verdict, "hook": ev.hook, "chain_type": ev.chain_type}


def expected_policy_hook(flow: dict) -> str:
    if flow.get("from") == "host":
        return "output"
    if flow.get("to") == "host":
        return "input"
    return "forward"


def decide(events: list[Event], flow: dict, hooked: set[str]) -> dict:
    """Verdict, deciding rule and policy hook from the (hook-labelled) trace of one packet.

    `hooked` = the hooks that have at least one filter (or route) base chain in the ruleset.

    Accepts from `type nat` chains do not count: such chains see only a connection's first packet,
    to pick a NAT binding, and their accept filters nothing. (The kernel also runs them at the NAT
    core's priority, -100 on output and +100 on input, whatever priority they declare; so their
    policy accept is often literally the last accept on the hook.) Drops count from any chain.
    """
    steps = [e for e in events if e.kind in ("rule", "policy")]
    drop = next((e for e in steps if e.verdict == "drop"), None)
    seen = [e.hook for e in steps]
    policy_hook = next((h for h in POLICY_HOOKS if h in seen), expected_policy_hook(flow))
    if drop:
        return {"verdict": "DROP", "deciding_rule": rule_ref(drop), "policy_hook": policy_hook}
    accepts = [e for e in steps if e.hook == policy_hook and e.verdict == "accept" and e.chain_type != "nat"]
    if accepts:
        return {"verdict": "ACCEPT", "deciding_rule": rule_ref(accepts[-1]), "policy_hook": policy_hook}
    if policy_hook not in hooked:
        # No base chain on the hook: nothing filters, the kernel accepts without any rule.
        return {"verdict": "ACCEPT", "deciding_rule": None, "policy_hook": policy_hook}
    # The packet never reached its policy hook: lost outside netfilter (routing, neighbour, ...).
    return {"verdict": "NONE", "deciding_rule": None, "policy_hook": policy_hook}


def trace_summary(events: list[Event]) -> dict:
    steps = [e for e in events if e.kind in ("rule", "policy")]
    path = [[e.table, e.chain, e.handle, e.verdict] for e in steps]
    hooks = []
    for e in events:
        if e.kind == "packet" and [e.table, e.chain] not in hooks and e.table != TRACE_TABLE:
            hooks.append([e.table, e.chain])
    return {"path": path, "hooks": hooks}


# --------------------------------------------------------------------------------------------
# Probes: one real packet from the source namespace


@dataclass
class Probe:
    sock: socket.socket
    kind: str
    expect_id: int | None = None  # ICMP echo id
    outcome: str = "timeout"
    delivered: bool | None = False
    done: bool = False
    extra: dict = field(default_factory=dict)

    def poll_ready(self) -> None:
        """Called when the socket is readable/writable: settle the outcome if it has one."""
        if self.kind == "tcp":
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                self.outcome, self.delivered, self.done = "connected", True, True
            elif err == errno.ECONNREFUSED:
                self.outcome, self.delivered, self.done = "refused", True, True
            elif err:
                self.outcome, self.delivered, self.done = f"error:{errno.errorcode.get(err, err)}", False, True
        elif self.kind == "udp":
            try:
                self.sock.recv(2048)
                self.outcome, self.delivered, self.done = "reply", True, True
            except ConnectionRefusedError:
                self.outcome, self.delivered, self.done = "refused", True, True
            except BlockingIOError:
                pass
            except OSError as e:
                self.outcome, self.delivered, self.done = f"error:{errno.errorcode.get(e.errno, e.errno)}", False, True
        elif self.kind == "icmp6":
            # A raw ICMPv6 socket gets the ICMPv6 message without the IPv6 header.
            try:
                data = self.sock.recv(2048)
            except BlockingIOError:
                return
            if len(data) >= 8:
                icmp_type, _, _, ident = struct.unpack_from("!BBHH", data, 0)
                if icmp_type == 129 and ident == self.expect_id:
                    self.outcome, self.delivered, self.done = "reply", True, True
        elif self.kind == "icmp":
            try:
                data, addr = self.sock.recvfrom(2048)
            except BlockingIOError:
                return
            ihl = (data[0] & 0x0F) * 4
            if len(data) >= ihl + 8:
                icmp_type, _, _, ident = struct.unpack_from("!BBHH", data, ihl)
                if icmp_type == 0 and ident == self.expect_id:
                    self.outcome, self.delivered, self.done = "reply", True, True

    def close(self) -> None:
        if self.kind == "tcp":
            # RST instead of FIN: no TIME_WAIT left behind, so a later flow may reuse the tuple.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def _icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def icmp_packet(icmp_type: int, code: int, ident: int) -> bytes:
    payload = b"dpinspect-lab"
    header = struct.pack("!BBHHH", icmp_type, code, 0, ident, 1)
    csum = _icmp_checksum(header + payload)
    return struct.pack("!BBHHH", icmp_type, code, csum, ident, 1) + payload


def is_v6(flow: dict) -> bool:
    return ":" in flow["dst"]


def family(flow: dict) -> str:
    """The nft family the flow's packets are traced in."""
    return "ip6" if is_v6(flow) else "ip"


IPV6_FREEBIND = 78


def _bound_socket(ns: str, family_type: int, proto: int, src: str, port: int) -> socket.socket:
    v6 = ":" in src
    with labnet.in_netns(ns):
        sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, family_type, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # IP_FREEBIND: the flow's source may be an address this namespace does not own.
    sock.setsockopt(*((socket.IPPROTO_IPV6, IPV6_FREEBIND) if v6 else (socket.SOL_IP, 15)), 1)
    sock.bind((src, port))
    sock.setblocking(False)
    return sock


def send_probe(ns: str, flow: dict, sport: int) -> Probe:
    proto, src, dst = flow["proto"], flow["src"], flow["dst"]
    if proto == "tcp":
        sock = _bound_socket(ns, socket.SOCK_STREAM, 0, src, sport)
        err = sock.connect_ex((dst, int(flow["dport"])))
        probe = Probe(sock, "tcp")
        if err not in (0, errno.EINPROGRESS):
            probe.outcome, probe.done = f"error:{errno.errorcode.get(err, err)}", True
        return probe
    if proto == "udp":
        sock = _bound_socket(ns, socket.SOCK_DGRAM, 0, src, sport)
        sock.connect((dst, int(flow["dport"])))
        sock.send(b"dpinspect-lab")
        return Probe(sock, "udp")
    if proto == "icmpv6":
        # The kernel fills in an ICMPv6 raw socket's checksum (it covers the IPv6 pseudo-header).
        sock = _bound_socket(ns, socket.SOCK_RAW, socket.IPPROTO_ICMPV6, src, 0)
        icmp_type, code = int(flow.get("icmp_type", 128)), int(flow.get("icmp_code", 0))
        sock.sendto(struct.pack("!BBHHH", icmp_type, code, 0, sport, 1) + b"dpinspect-lab", (dst, 0))
        probe = Probe(sock, "icmp6", expect_id=sport if icmp_type == 128 else None)
        if icmp_type != 128:
            probe.delivered = None
        return probe
    if proto == "icmp":
        sock = _bound_socket(ns, socket.SOCK_RAW, socket.IPPROTO_ICMP, src, 0)
        icmp_type, code = int(flow.get("icmp_type", 8)), int(flow.get("icmp_code", 0))
        sock.sendto(icmp_packet(icmp_type, code, sport), (dst, 0))
        probe = Probe(sock, "icmp", expect_id=sport if icmp_type == 8 else None)
        if icmp_type != 8:
            probe.delivered = None  # nothing answers other ICMP types; the trace alone decides
        return probe
    raise labnet.LabError(f"unsupported proto {proto!r}")


def trace_match(flow: dict, sport: int | str) -> str:
    """nft match for the flow's first packet only (a SYN, not the RST that closes the probe).
    sport: a port, or an nft set of them ("{ 20001, 20002 }")."""
    fam = family(flow)
    m = f"{fam} saddr {flow['src']} {fam} daddr {flow['dst']}"
    proto = flow["proto"]
    if proto == "tcp":
        return f"{m} tcp sport {sport} tcp dport {flow['dport']} tcp flags & (syn | ack) == syn"
    if proto == "udp":
        return f"{m} udp sport {sport} udp dport {flow['dport']}"
    if proto == "icmpv6":
        icmp_type = int(flow.get("icmp_type", 128))
        m += f" icmpv6 type {icmp_type}" + (f" icmpv6 code {int(flow['icmp_code'])}" if "icmp_code" in flow else "")
        return m + (f" icmpv6 id {sport}" if icmp_type == 128 else "")
    icmp_type = int(flow.get("icmp_type", 8))
    m += f" icmp type {icmp_type}"
    if "icmp_code" in flow:
        m += f" icmp code {int(flow['icmp_code'])}"
    if icmp_type == 8:
        m += f" icmp id {sport}"
    return m


def trace_table(match: str, marker: str, fam: str = "ip") -> str:
    return (f"table {fam} {TRACE_TABLE} {{\n"
            f"  chain {marker} {{ }}\n"  # empty regular chain: only a barrier for the monitor
            f"  chain pre {{ type filter hook prerouting priority {TRACE_PRIORITY}; {match} meta nftrace set 1; }}\n"
            f"  chain out {{ type filter hook output priority {TRACE_PRIORITY}; {match} meta nftrace set 1; }}\n"
            f"}}\n")


# --------------------------------------------------------------------------------------------
# The oracle


class Oracle:
    """Runs flows through one lab. Use as a context manager (starts/stops the trace monitor)."""

    def __init__(self, lab: labnet.Lab, counters: bool = True, timeout: float = 1.0):
        self.lab = lab
        self.ns = lab.node_ns
        self.counters = counters
        self.timeout = timeout
        self.monitor: Monitor | None = None
        self.nft: labnet.Nft | None = None  # in-process nft commands in the node netns (__enter__)
        self.hooks: dict[tuple, str] = {}
        self.next_sport = SPORT_RANGE[0]
        self.seq = 0

    def __enter__(self):
        self.nft = labnet.Nft(self.ns)
        for fam in ("ip", "ip6"):  # a leftover
            self.nft.cmd(f"delete table {fam} {TRACE_TABLE}", check=False)
        self.hooks = base_chain_hooks(list_ruleset(self.nft))
        self.monitor = Monitor(self.ns)
        self._sync_monitor()
        return self

    def _sync_monitor(self) -> None:
        """Return once the monitor is listening: it takes a moment to subscribe after it starts,
        so poke the ruleset (add + delete our empty table) until it reports the delete."""
        for _ in range(100):
            marker = self._marker()
            self.nft.cmd(f"add table ip {TRACE_TABLE}\nadd chain ip {TRACE_TABLE} {marker}\n")
            self.nft.cmd(f"delete table ip {TRACE_TABLE}")
            try:
                self.monitor.wait_for(_deleted(marker), 0.2)
                return
            except labnet.LabError:
                continue
        raise labnet.LabError("nft monitor never started listening")

    def __exit__(self, *exc):
        if self.monitor:
            self.monitor.close()
        if self.nft:
            for fam in ("ip", "ip6"):
                self.nft.cmd(f"delete table {fam} {TRACE_TABLE}", check=False)
            self.nft.close()

    def _marker(self) -> str:
        """A chain name used once: the monitor's "add/delete chain ip dpl-trace mN" lines delimit
        exactly one flow, whatever older lines are still in the pipe."""
        self.seq += 1
        return f"m{self.seq}"

    def _sport(self, flow: dict, src_ns_ports: set[int]) -> int:
        if flow.get("sport"):
            return int(flow["sport"])
        while True:
            port = self.next_sport
            self.next_sport = port + 1 if port + 1 < SPORT_RANGE[1] else SPORT_RANGE[0]
            if port not in src_ns_ports:
                return port

    def _source(self, flow: dict) -> tuple[str, set[int]]:
        """Source netns, and the ports its servers listen on (never used as source ports)."""
        endpoint = flow.get("from", "remote")
        ns = self.lab.endpoint_ns(endpoint)
        ports = set()
        if endpoint.startswith("pod:"):
            ports = {int(s["port"]) for s in self.lab.pod(endpoint[4:]).get("serve", [])}
        elif endpoint == "host":
            ports = {int(s["port"]) for s in self.lab.topology["node"].get("serve", [])}
        return ns, ports

    def run_flow(self, flow: dict) -> dict:
        src_ns, ports = self._source(flow)
        sport = self._sport(flow, ports)
        flush_conntrack(self.ns)
        marker = self._marker()
        fam = family(flow)
        self.nft.cmd(trace_table(trace_match(flow, sport), marker, fam))
        # Start barrier: whatever the monitor printed before our table existed is not ours.
        self.monitor.wait_for(_chain_event("add", marker, fam), 10)
        before = rule_counters(list_ruleset(self.nft)) if self.counters else None
        lines, probe, send_error = [], None, None
        try:
            probe = send_probe(src_ns, flow, sport)
            lines = self._wait(probe)
        except OSError as e:
            # The source namespace could not even send it (e.g. no route for that source address):
            # still a result, whatever the trace caught.
            send_error = f"error:{errno.errorcode.get(e.errno, e.errno)}"
        finally:
            if probe:
                probe.close()
            after = rule_counters(list_ruleset(self.nft)) if self.counters else None
            self.nft.cmd(f"delete table {fam} {TRACE_TABLE}")
        lines += self.monitor.wait_for(_deleted(marker, fam), 10)
        result = self._result(flow, sport, probe, lines, before, after)
        if send_error:
            result.update(outcome=send_error, delivered=False)
        return result

    # ---- services with several endpoints: many connections, one pick each ------------------

    def service_endpoints(self, flow: dict) -> list[str]:
        """"ip:port" of every endpoint of the flow's service port (flows `to` a service), else []."""
        to = flow.get("to", "")
        if not to.startswith("service:"):
            return []
        for svc in self.lab.topology.get("services", []):
            if f"service:{svc['namespace']}/{svc['name']}" != to:
                continue
            for port in svc["ports"]:
                if port["proto"] == flow["proto"] and int(port["port"]) == int(flow["dport"]):
                    if is_v6(flow):  # dpinspect's (and the trace's) form: [addr]:port
                        return [f"[{ip}]:{port['target_port']}" for ip in svc.get("endpoints6", [])]
                    return [f"{ip}:{port['target_port']}" for ip in svc["endpoints"]]
        return []

    def run_random_flow(self, flow: dict, endpoints: list[str]) -> dict:
        """A flow to a service whose kube-proxy rules pick one of several endpoints at random.

        Connections from distinct source ports go out together, `RANDOM_ROUND` x the number of
        endpoints per round, until every endpoint has been picked or `RANDOM_ROUNDS` rounds have
        run (the kernel's choice is random, not a hash of the port: the rounds make missing one
        unlikely, ~4e-6 for four endpoints). Each connection's first packet is traced (one trace
        table matching all their ports); its verdict and deciding rule come from its own trace,
        the endpoint from the destination its packet carried after DNAT. The result is the first
        connection's, as run_flow gives it, plus `picks`: one entry per connection.
        """
        src_ns, ports = self._source(flow)
        picks: list[dict] = []
        first_sport = int(flow["sport"]) if flow.get("sport") else None
        for _ in range(RANDOM_ROUNDS):
            sports = []
            while len(sports) < RANDOM_ROUND * len(endpoints):
                port = first_sport if first_sport and not picks and not sports else self._sport({}, ports)
                if port not in sports:
                    sports.append(port)
            picks += self._concurrent(flow, src_ns, sports)
            seen = {p["endpoint"] for p in picks}
            # Nothing reached DNAT (dropped before kube-proxy's chains): no choice was made.
            if set(endpoints) <= seen or seen == {None}:
                break
        first = dict(picks[0])
        first["picks"] = [{k: p[k] for k in ("sport", "endpoint", "verdict", "deciding_rule", "outcome",
                                              "delivered")} for p in picks]
        return first

    def _concurrent(self, flow: dict, src_ns: str, sports: list[int]) -> list[dict]:
        flush_conntrack(self.ns)
        marker = self._marker()
        fam = family(flow)
        self.nft.cmd(trace_table(trace_match(flow, "{ " + ", ".join(map(str, sports)) + " }"), marker, fam))
        self.monitor.wait_for(_chain_event("add", marker, fam), 10)
        probes: dict[int, Probe] = {}
        errors: dict[int, str] = {}
        lines: list[str] = []
        try:
            for sport in sports:
                try:
                    probes[sport] = send_probe(src_ns, flow, sport)
                except OSError as e:
                    errors[sport] = f"error:{errno.errorcode.get(e.errno, e.errno)}"
            lines = self._wait_many(probes)
        finally:
            for probe in probes.values():
                probe.close()
            self.nft.cmd(f"delete table {fam} {TRACE_TABLE}")
        lines += self.monitor.wait_for(_deleted(marker, fam), 10)
        by_sport = _trace_ids_by_sport(lines)
        out = []
        for sport in sports:
            probe = probes.get(sport)
            tid = by_sport.get(sport)
            mine = [l for l in lines if tid and l.startswith(f"trace id {tid} ")]
            result = self._result(flow, sport, probe, mine, None, None)
            result["endpoint"] = _translated_destination(mine, flow)
            if sport in errors:
                result.update(outcome=errors[sport], delivered=False)
            out.append(result)
        return out

    def _wait_many(self, probes: dict[int, Probe]) -> list[str]:
        """Wait until every probe has its answer or a traced drop (or the timeout)."""
        lines, deadline = [], time.monotonic() + self.timeout
        dropped: set[int] = set()
        ids: dict[int, str] = {}
        drop_ids: set[str] = set()
        while any(not p.done and s not in dropped for s, p in probes.items()):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            waiting = [p for s, p in probes.items() if not p.done and s not in dropped]
            r, w, _ = select.select([p.sock for p in waiting] + [self.monitor.fd],
                                    [p.sock for p in waiting if p.kind == "tcp"], [], left)
            ready = set(r) | set(w)
            for p in waiting:
                if p.sock in ready:
                    p.poll_ready()
            if self.monitor.fd in r:
                new = self.monitor.lines(0)
                lines += new
                for sport, tid in _trace_ids_by_sport(new).items():
                    ids.setdefault(sport, tid)
                drop_ids |= {l.split()[2] for l in new if _is_drop_line(l)}
                for sport, tid in ids.items():
                    if tid in drop_ids and sport in probes:
                        dropped.add(sport)
                        probes[sport].outcome = "dropped"
        return lines

    def _wait(self, probe: Probe) -> list[str]:
        """Wait for the probe's answer or a traced drop; return the monitor lines read meanwhile."""
        # Nothing answers an ICMP type other than echo-request: a short wait for a traced drop is all.
        timeout = self.timeout if probe.delivered is not None else min(self.timeout, 0.15)
        lines, deadline = [], time.monotonic() + timeout
        want_write = probe.kind == "tcp"
        while not probe.done:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, w, _ = select.select([probe.sock, self.monitor.fd], [probe.sock] if want_write else [], [], left)
            if probe.sock in r or probe.sock in w:
                probe.poll_ready()
            if self.monitor.fd in r:
                new = self.monitor.lines(0)
                lines += new
                if any(_is_drop_line(l) for l in new):
                    probe.outcome = "dropped"
                    break
        return lines

    def _result(self, flow, sport, probe, lines, before, after) -> dict:
        events = [e for e in map(parse_trace_line, lines) if e and e.table != TRACE_TABLE]
        ids = list(dict.fromkeys(e.trace_id for e in events))
        # Only the flow's first packet matches the trace rule, so one trace id is expected;
        # should the kernel retransmit inside the window, the first packet's trace is the answer.
        events = [e for e in events if ids and e.trace_id == ids[0]]
        assign_hooks(events, self.hooks)
        result = decide(events, flow, {hook for hook, ctype in self.hooks.values() if ctype != "nat"})
        result.update(trace_summary(events))
        result.update(delivered=probe.delivered if probe else False, outcome=probe.outcome if probe else "error",
                      sport=sport, trace_id=ids[0] if ids else None)
        if len(ids) > 1:
            result["extra_trace_ids"] = ids[1:]
        if self.counters:
            result["counters"] = counter_deltas(before, after)
        return result


_SPORT_RE = re.compile(r"\b(?:tcp|udp) sport (\d+)")
_DADDR_RE = re.compile(r"\bip6? daddr (\S+)")
_DPORT_RE = re.compile(r"\b(?:tcp|udp) dport (\d+)")


def _trace_ids_by_sport(lines: list[str]) -> dict[int, str]:
    """Source port -> the trace id whose packet carried it, from the packet lines of our own trace
    chains (before any NAT could rewrite the port)."""
    out: dict[int, str] = {}
    for line in lines:
        ev = parse_trace_line(line)
        if ev and ev.kind == "packet" and ev.table == TRACE_TABLE:
            m = _SPORT_RE.search(ev.text)
            if m:
                out.setdefault(int(m[1]), ev.trace_id)
    return out


def _translated_destination(lines: list[str], flow: dict) -> str | None:
    """"ip:port" the packet carried at the last hook it was traced on, if DNAT changed it; else None."""
    last = None
    for line in lines:
        ev = parse_trace_line(line)
        if ev and ev.kind == "packet":
            d, p = _DADDR_RE.search(ev.text), _DPORT_RE.search(ev.text)
            if d:
                last = (d[1], p[1] if p else None)
    if not last or last[0] == flow["dst"]:
        return None
    if not last[1]:
        return last[0]
    # dpinspect writes an IPv6 address with a port as [addr]:port
    return f"[{last[0]}]:{last[1]}" if ":" in last[0] else f"{last[0]}:{last[1]}"


def _chain_event(op: str, marker: str, fam: str = "ip"):
    """Predicate for the monitor's "<op> chain ip dpl-trace <marker> ..." line (exact tokens: m1 is not m17)."""
    want = [op, "chain", fam, TRACE_TABLE, marker]
    return lambda line: line.split()[:5] == want


def _deleted(marker: str, fam: str = "ip"):
    # Deleting the table prints rule, chain, then table deletions, all after the flow's trace lines.
    return _chain_event("delete", marker, fam)


def _is_drop_line(line: str) -> bool:
    line = line.rstrip()
    return line.startswith("trace id ") and (line.endswith("(verdict drop)") or line.endswith("policy drop"))


# --------------------------------------------------------------------------------------------
# The eBPF node: no nft trace; the fate is the probe's, the "where" and "which rule" are Calico's
# own counters (cali_counters*: ACCEPTED_BY_POLICY / DROPPED_BY_POLICY per interface and hook) and
# rule counters (cali_rule_ctrs2), read before and after each flow through fds of the lab's pinned
# maps (ebpfnode.map_fds). Rule ids map to tier/policy/rule through node.py's manifest.
#
# The counters are per interface and hook, not per connection, so a flow's window must hold its
# own packets only. Two things keep earlier flows out of it:
#   - conntrack entries of earlier flows stay in the CT map (only this flow's own tuple is
#     removed before it runs): a packet of an earlier connection that the kernel handles late
#     (the RST that closed its probe, deferred to ksoftirqd on a loaded machine) still finds its
#     approved entry and passes without policy, instead of running a policy program and moving
#     a rule counter in the next flow's window. Every flow has its own source port (TCP/UDP) or
#     echo id, so none of them meets another's entry; ICMP entries are keyed by the address
#     pair only and are removed for the pair.
#   - after the probe, the window stays open until the interfaces' TOTAL counters have been
#     still for a while, so the flow's own late packets are counted in it, not in the next.

HOOKS = {0: "tc ingress", 1: "tc egress"}
HOOK_POLICY = {0: "egress", 1: "ingress"}  # a workload's tc ingress hook runs its egress policy
REASON_TOTAL, REASON_ACCEPTED, REASON_DROPPED = 0, 2, 4
IPPROTO = {"icmp": 1, "tcp": 6, "udp": 17}
QUIET = 0.03         # s: TOTAL counters unchanged this long = the flow's packets are through
QUIET_MAX = 1.0      # s: give up waiting for quiet (background traffic); the window closes anyway
DENY_ACTIONS = ("deny",)


def _ebpf_modules():
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent / "ebpf"))
    import bpfsys
    import maps
    return bpfsys, maps


class EbpfOracle(Oracle):
    """Runs flows through an eBPF lab node (labnet.EBPF). Same probes and source ports as Oracle."""

    def __init__(self, lab: labnet.Lab, counters: bool = True, timeout: float = 1.0):
        super().__init__(lab, counters, timeout)
        self.bpfsys, self.maps = _ebpf_modules()
        info = lab.info["ebpf"]
        self.version = info["calico_version"]
        self.manifest = json.loads(Path(info["manifest"]).read_text())
        self.rule_ids = self.manifest.get("rule_ids", {})
        self.iface_by_index = {i: name for name, i in info["ifindexes"].items()}
        self.pod_by_iface = {p["iface"]: f"{p['namespace']}/{p['name']}" for p in lab.topology["pods"]}
        # A host endpoint's tc ingress runs its ingress policy (a workload's runs its egress policy).
        self.hep_ifaces = {name for name, i in self.manifest.get("interfaces", {}).items()
                           if i.get("host_endpoint")}
        self.fds: dict[str, int] = {}

    def __enter__(self):
        import ebpfnode
        names = {role: self.maps.spec(self.version, role).name for role in ("counters", "rule_counters", "ct")}
        fds = ebpfnode.map_fds(self.lab.name, list(names.values()))
        self.fds = {role: fds[name] for role, name in names.items()}
        self.info = {role: self.bpfsys.map_info(fd) for role, fd in self.fds.items()}
        return self

    def __exit__(self, *exc):
        if self.fds:
            # Leave the node as a run of flushed flows would: no connection tracked (dpinspect
            # and snapshots read the map afterwards).
            self.flush_ct()
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}

    # -- map reading -----------------------------------------------------------------------

    def _percpu_sums(self, role: str) -> dict[bytes, list[int]]:
        info = self.info[role]
        fd, bs = self.fds[role], self.bpfsys
        size = bs.value_buffer_size(info)
        out = {}
        for key in bs.map_keys(fd, info.key_size):
            raw = bs.map_lookup(fd, key, size)
            if raw is None:
                continue
            n = info.value_size // 8
            sums = [0] * n
            for cpu in bs.percpu_split(raw, info.value_size):
                for i, v in enumerate(struct.unpack(f"<{n}Q", cpu)):
                    sums[i] += v
            out[key] = sums
        return out

    def policy_counters(self) -> dict[tuple[int, int], tuple[int, int]]:
        """(ifindex, hook) -> (ACCEPTED_BY_POLICY, DROPPED_BY_POLICY), summed over CPUs."""
        return {struct.unpack("<II", k): (v[REASON_ACCEPTED], v[REASON_DROPPED])
                for k, v in self._percpu_sums("counters").items()}

    def total_counters(self) -> dict[tuple[int, int], int]:
        """(ifindex, hook) -> TOTAL packets seen by the tc program, summed over CPUs."""
        return {struct.unpack("<II", k): v[REASON_TOTAL] for k, v in self._percpu_sums("counters").items()}

    def rule_counters(self) -> dict[int, int]:
        return {struct.unpack("<Q", k)[0]: v[0] for k, v in self._percpu_sums("rule_counters").items()}

    def flush_ct(self) -> None:
        info, fd = self.info["ct"], self.fds["ct"]
        for key in self.bpfsys.map_keys(fd, info.key_size):
            self.bpfsys.map_delete(fd, key)

    def forget_ct(self, flow: dict, sport: int) -> None:
        """Remove the conntrack entries this flow's packets could meet, so that it is a new
        connection (as dpinspect's --ct new): entries with its protocol and source port (the NAT
        forward and reverse entries of a service flow, a hairpin's masqueraded tuple), or for
        ICMP, whose entries carry no ports, those of its address pair. Every other flow's entry
        stays (see above)."""
        info, fd = self.info["ct"], self.fds["ct"]
        proto = IPPROTO.get(flow["proto"])
        for key in self.bpfsys.map_keys(fd, info.key_size):
            k = self.maps.ct_key_decode(key)
            if k["proto"] != proto:
                continue
            if proto == IPPROTO["icmp"]:
                mine = {k["addr_a"], k["addr_b"]} == {flow["src"], flow["dst"]}
            else:
                mine = sport in (k["port_a"], k["port_b"])
            if mine:
                self.bpfsys.map_delete(fd, key)

    def settle(self) -> None:
        """Return once the tc programs have seen no packet for QUIET seconds (at most QUIET_MAX)."""
        last, still_since = self.total_counters(), time.monotonic()
        deadline = still_since + QUIET_MAX
        while time.monotonic() < deadline:
            time.sleep(QUIET / 3)
            now = self.total_counters()
            if now != last:
                last, still_since = now, time.monotonic()
            elif time.monotonic() - still_since >= QUIET:
                return

    # -- one flow --------------------------------------------------------------------------

    def run_flow(self, flow: dict) -> dict:
        src_ns, ports = self._source(flow)
        sport = self._sport(flow, ports)
        flush_conntrack(self.ns)
        self.forget_ct(flow, sport)  # a new connection, as with the nft oracle
        before_pc, before_rc = self.policy_counters(), self.rule_counters()
        probe, send_error = None, None
        try:
            probe = send_probe(src_ns, flow, sport)
            self._wait_ebpf(probe, before_pc)
        except OSError as e:
            send_error = f"error:{errno.errorcode.get(e.errno, e.errno)}"
        finally:
            if probe:
                probe.close()
        self.settle()
        after_pc, after_rc = self.policy_counters(), self.rule_counters()
        moved = self._counter_moves(before_pc, after_pc)
        rules = [{"id": rid, "packets": n - before_rc.get(rid, 0), "rule": self.rule_ids.get(str(rid))}
                 for rid, n in sorted(after_rc.items()) if n != before_rc.get(rid, 0)]
        decisions, problems = self._decisions(moved, rules)
        delivered = probe.delivered if probe else False
        outcome = probe.outcome if probe else "error"
        if send_error:
            delivered, outcome = False, send_error
        dropped = any(m["reason"] == "dropped_by_policy" for m in moved)
        verdict = "DROP" if dropped else ("ACCEPT" if delivered or probe and probe.delivered is None else "NONE")
        deciding = next((d for d in decisions if d["verdict"] == "DROP"), decisions[-1] if decisions else None)
        return {"verdict": verdict, "delivered": delivered, "outcome": outcome, "sport": sport,
                "deciding_rule": deciding, "decisions": decisions, "counters": moved, "rule_counters": rules,
                "problems": problems}

    def _wait_ebpf(self, probe: Probe, before: dict) -> None:
        """Until the probe has its answer, or DROPPED_BY_POLICY moved (the drop program ran), or timeout."""
        timeout = self.timeout if probe.delivered is not None else min(self.timeout, 0.15)
        deadline = time.monotonic() + timeout
        want_write = probe.kind == "tcp"
        while not probe.done:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            r, w, _ = select.select([probe.sock], [probe.sock] if want_write else [], [], min(left, 0.02))
            if r or w:
                probe.poll_ready()
            elif any(v[1] != before.get(k, (0, 0))[1] for k, v in self.policy_counters().items()):
                probe.outcome = "dropped"
                return

    def _counter_moves(self, before: dict, after: dict) -> list[dict]:
        moved = []
        for key, (acc, drop) in sorted(after.items()):
            b_acc, b_drop = before.get(key, (0, 0))
            ifindex, hook = key
            iface = self.iface_by_index.get(ifindex, str(ifindex))
            for reason, delta in (("accepted_by_policy", acc - b_acc), ("dropped_by_policy", drop - b_drop)):
                if delta:
                    moved.append({"iface": iface, "ifindex": ifindex, "pod": self.pod_by_iface.get(iface),
                                  "hook": HOOKS.get(hook, str(hook)), "hook_index": hook,
                                  "reason": reason, "packets": delta})
        return moved

    def _decisions(self, moved: list[dict], rules: list[dict]) -> tuple[list[dict], list[str]]:
        """For each hook whose policy verdict counter moved: the one non-pass rule that decided.

        A rule id is shared by every endpoint its policy applies to, so rules are matched to hooks by
        policy direction (tc ingress = egress policy); id 0 (no profile matched) has none."""
        problems, decisions, used = [], [], set()
        for m in moved:
            direction = HOOK_POLICY.get(m["hook_index"])
            if m["iface"] in self.hep_ifaces:
                direction = HOOKS.get(m["hook_index"], "").removeprefix("tc ")
            want_deny = m["reason"] == "dropped_by_policy"
            cands = []
            for r in rules:
                rule = r["rule"] or {}
                if rule.get("action") == "pass" or (rule.get("end_of_tier") and rule.get("action") == "pass"):
                    continue
                if rule.get("direction") not in (None, direction) and not rule.get("no_profile"):
                    continue
                is_deny = rule.get("action") in DENY_ACTIONS or bool(rule.get("no_profile"))
                if is_deny == want_deny:
                    cands.append(r)
            if len(cands) != 1:
                problems.append(f"{m['iface']} {m['hook']} {m['reason']}: {len(cands)} candidate deciding rules "
                                f"{[c['id'] for c in cands]}")
            decided = cands[0] if len(cands) == 1 else None
            if decided:
                used.add(decided["id"])
            decisions.append({"iface": m["iface"], "pod": m["pod"], "hook": m["hook"], "policy": direction,
                              "verdict": "DROP" if want_deny else "ACCEPT",
                              "rule_id": decided["id"] if decided else None,
                              "rule": decided["rule"] if decided else None})
        for r in rules:
            rule = r["rule"] or {}
            if r["id"] not in used and rule.get("action") != "pass":
                problems.append(f"rule counter {r['id']} ({rule or 'not in the manifest'}) moved without a verdict")
        if not moved and rules:
            problems.append("rule counters moved but no policy verdict counter did")
        return decisions, problems


def for_lab(lab: labnet.Lab, counters: bool = True, timeout: float = 1.0) -> Oracle:
    """The oracle that fits the lab's dataplane."""
    if lab.layout == labnet.EBPF:
        return EbpfOracle(lab, counters, timeout)
    return Oracle(lab, counters, timeout)


# --------------------------------------------------------------------------------------------
# Fates only, many probes at once: for a node whose verdicts are not needed, only whether each
# flow's first packet got through (the three-way differential's nftables / iptables-nft nodes).


def probe_fates(lab: labnet.Lab, flows: list[dict], timeout: float = 0.5, batch: int = 40) -> list[dict]:
    """{"delivered", "outcome", "sport"} per flow. Source ports are those the per-flow oracles would
    pick for the same flow list. Flows run in batches of distinct 5-tuples; conntrack is flushed
    before each batch, so every flow is a new connection as with the per-flow oracles."""
    picker = Oracle(lab, counters=False)
    plan = []
    for flow in flows:
        src_ns, ports = picker._source(flow)
        plan.append((src_ns, picker._sport(flow, ports)))
    results: list[dict | None] = [None] * len(flows)
    pending = list(range(len(flows)))
    while pending:
        tuples, now, later, per_dst = set(), [], [], {}
        for i in pending:
            f = flows[i]
            key = (f["proto"], f["src"], plan[i][1], f["dst"], f.get("dport"))
            dst = (f["proto"], f["dst"], f.get("dport"))
            # A few at a time per server: a listen backlog must not decide a fate.
            if key in tuples or len(now) >= batch or per_dst.get(dst, 0) >= 8:
                later.append(i)
            else:
                now.append(i)
                per_dst[dst] = per_dst.get(dst, 0) + 1
            tuples.add(key)
        flush_conntrack(lab.node_ns)
        probes = {}
        for i in now:
            try:
                probes[i] = send_probe(plan[i][0], flows[i], plan[i][1])
            except OSError as e:
                results[i] = {"delivered": False, "outcome": f"error:{errno.errorcode.get(e.errno, e.errno)}",
                              "sport": plan[i][1]}
        deadline = time.monotonic() + timeout
        while any(not p.done for p in probes.values()) and time.monotonic() < deadline:
            waiting = [p for p in probes.values() if not p.done]
            r, w, _ = select.select([p.sock for p in waiting], [p.sock for p in waiting if p.kind == "tcp"], [],
                                    max(deadline - time.monotonic(), 0))
            ready = set(r) | set(w)
            for p in waiting:
                if p.sock in ready:
                    p.poll_ready()
        for i, p in probes.items():
            results[i] = {"delivered": p.delivered, "outcome": p.outcome, "sport": plan[i][1]}
            p.close()
        pending = later
    return results
