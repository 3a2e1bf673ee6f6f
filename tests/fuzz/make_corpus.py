#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/<target>/ from real inputs, so that each fuzz
target starts from what dpinspect really reads:

- load_ruleset_json: every chain of the real rulesets (examples/seed, tests/fixtures/nft, and with
  --kernel Calico's own dumps from ../shared loaded into a private netns and listed back by the
  kernel) as a small ruleset of its own: the table, the chain, the chains and sets it refers to.
- rule_text: the distinct "expr" lists of those rules.
- node_info_from_json: the node files, and a few variants of their shape.
- parse_nflog_prefix: log prefixes, chain names and rule comments of those rulesets.
- decode_xt: every xt payload the kernel dumped in tests/fixtures/xt/captured.json.
- parse_ipset_save: `ipset save` texts of tests/fixtures/xt and ../shared/fixtures/real-world.
- load_snapshot: the example snapshot, one chain at a time with that chain's xt payloads.
- load_iptables_save: iptables-save texts (tests/fixtures/xt, ../shared's real-world and Calico
  dumps), whole and one chain at a time.
- parse_netlink_dump: not written here. Its seeds are the rule and ipset dumps the kernel sent for
  tests/fixtures/xt, saved by the privileged test (root):
    DPI_NL_CAPTURE_DIR=tests/fuzz/corpus/parse_netlink_dump \
      build/tests/dpinspect_privileged_tests "saved netlink dumps replay to what the live read gave"

Files that are already there stay (regression inputs found by fuzzing are kept by hand as
regress-*); seeds are named seed-*. Run again after the inputs change:
    tests/fuzz/make_corpus.py [--kernel]      (--kernel needs root: ip netns, nft, iptables-nft)
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(TOP), "shared")
CORPUS = os.path.join(HERE, "corpus")

RULESETS = ["examples/seed/nftables.json", "examples/seed/iptables-nft.json",
            "tests/fixtures/nft/exprs.json"]
NODES = ["examples/seed/node.json", "tests/fixtures/nft/node.json"]

# Calico's NFLOG prefix grammar (reference/calico-nftables.md), beside the ones rulesets carry.
PREFIXES = ["DPE|platform", "DPI|default", "API0|default.allow-x", "APE12|default/np.web",
            "PPI|security", "ARI0|kns.alpha", "DRI", "DRE", "PRE2|ksa.default.default",
            # 63 characters: a long id shortened with a hash in the middle.
            "API0|defau_" + "k" * 41 + "_" + "Zx3kQ9vB2a"]


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80]
    path = os.path.join(d, f"seed-{name}")
    with open(path, "wb") as f:
        f.write(data)


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=False)


def walk(v, fn):
    fn(v)
    if isinstance(v, dict):
        for x in v.values():
            walk(x, fn)
    elif isinstance(v, list):
        for x in v:
            walk(x, fn)


def chain_slices(doc):
    """One small, loadable ruleset per chain: its table, itself, its rules, and declarations of
    the chains and sets its rules (and the maps they use) refer to."""
    items = doc["nftables"]
    tables = {}
    chains = {}
    sets = {}
    rules = {}
    meta = [i for i in items if "metainfo" in i]
    for i in items:
        (k, o), = i.items()
        if k == "table":
            tables[(o["family"], o["name"])] = i
        elif k == "chain":
            chains[(o["family"], o["table"], o["name"])] = i
        elif k in ("set", "map"):
            sets[(o["family"], o["table"], o["name"])] = i
        elif k == "rule":
            rules.setdefault((o["family"], o["table"], o["chain"]), []).append(i)

    def refs(obj, fam, tab, chains_out, sets_out):
        def fn(v):
            if isinstance(v, dict):
                for verdict in ("jump", "goto"):
                    if isinstance(v.get(verdict), dict) and "target" in v[verdict]:
                        chains_out.add((fam, tab, v[verdict]["target"]))
            if isinstance(v, str) and v.startswith("@"):
                key = (fam, tab, v[1:])
                if key not in sets_out and key in sets:
                    sets_out.add(key)
                    refs(sets[key], fam, tab, chains_out, sets_out)
        walk(obj, fn)

    for key, chain in chains.items():
        fam, tab, name = key
        own = rules.get(key, [])
        used_chains, used_sets = set(), set()
        refs(own, fam, tab, used_chains, used_sets)
        used_chains.discard(key)
        out = meta + [tables[(fam, tab)]]
        out += [chains[c] for c in sorted(used_chains) if c in chains]
        out.append(chain)
        out += [sets[s] for s in sorted(used_sets)]
        out += own
        yield f"{fam}-{tab}-{name}", {"nftables": out}, own


def save_slices(text):
    """iptables-save text one chain at a time: the table header, every chain declaration of
    the table, that chain's rules, COMMIT."""
    table, decls, rules = None, [], {}
    for line in text.splitlines():
        if line.startswith("*"):
            table, decls, rules = line, [], {}
        elif line.startswith(":") and table:
            decls.append(line)
        elif line.startswith("-A ") and table:
            rules.setdefault(line.split()[1], []).append(line)
        elif line.strip() == "COMMIT" and table:
            for chain, own in rules.items():
                yield f"{table[1:]}-{chain}", "\n".join([table] + decls + own + ["COMMIT"]) + "\n"
            table = None


def kernel_rulesets():
    """Calico's dumps in ../shared, loaded into a private netns and listed back as JSON."""
    sys.path.insert(0, os.path.join(TOP, "tests", "realworld"))
    from test_calico_fixtures import DUMPS, EMPTY_TABLES  # the loaders the live test uses
    calico = os.path.join(SHARED, "fixtures", "calico")
    for dump, loader, _ in DUMPS:
        ns = f"dpi-corpus-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            text = open(os.path.join(calico, dump)).read()
            run = lambda *a, stdin=None: subprocess.run(["ip", "netns", "exec", ns] + list(a), input=stdin,
                                                      capture_output=True, text=True, check=True).stdout
            if loader == "nft":
                run("nft", "-f", "-", stdin=text)
            elif loader == "iptables":
                run("iptables-nft-restore", stdin=text)
            else:
                run("iptables-nft-restore", stdin=EMPTY_TABLES)
                run("nft", "-f", "-", stdin=text)
            yield dump.replace(".txt", ""), json.loads(run("nft", "-j", "list", "ruleset"))
        finally:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernel", action="store_true", help="also Calico's dumps via a netns (root)")
    a = ap.parse_args()

    docs = [(os.path.basename(p).replace(".json", ""), json.load(open(os.path.join(TOP, p))))
            for p in RULESETS]
    if a.kernel:
        docs += list(kernel_rulesets())

    seen_exprs = set()
    strings = set(PREFIXES)
    for base, doc in docs:
        for name, ruleset, own in chain_slices(doc):
            write("load_ruleset_json", f"{base}-{name}.json", dumps(ruleset))
            for r in own:
                expr = dumps(r["rule"].get("expr", []))
                h = hashlib.sha1(expr.encode()).hexdigest()[:10]
                if h not in seen_exprs:
                    seen_exprs.add(h)
                    write("rule_text", f"{base}-{h}.json", expr)
                if r["rule"].get("comment"):
                    strings.add(r["rule"]["comment"])
        for i in doc["nftables"]:
            (k, o), = i.items()
            if k == "chain":
                strings.add(o["name"])
        walk(doc, lambda v: isinstance(v, dict) and isinstance(v.get("log"), dict)
             and "prefix" in v["log"] and strings.add(v["log"]["prefix"]))
    for s in sorted(strings):
        write("parse_nflog_prefix", hashlib.sha1(s.encode()).hexdigest()[:12], s)

    for p in NODES:
        node = json.load(open(os.path.join(TOP, p)))
        base = p.replace("/", "-").replace(".json", "")
        write("node_info_from_json", f"{base}.json", dumps(node))
        write("node_info_from_json", f"{base}-wrapped.json", dumps({"node": node}))
        # Hand-written style: routes by interface index only, explicit metrics and tables.
        by_index = {i["name"]: i["index"] for i in node.get("interfaces", [])}
        routes = [{k: v for k, v in r.items() if k != "dev"} | {"oif": by_index.get(r.get("dev"), 0),
                                                                 "priority": 100}
                  for r in node.get("routes", [])]
        write("node_info_from_json", f"{base}-oif.json", dumps({"interfaces": node.get("interfaces", []),
                                                                "routes": routes}))
    write("node_info_from_json", "policy-routing.json", dumps({
        "interfaces": [{"index": 2, "name": "eth0", "addrs": ["192.0.2.2/24", "2001:db8::2/64"]}],
        "routes": [{"dst": "0.0.0.0/0", "dev": "eth0", "gateway": "192.0.2.1", "table": 100},
                   {"dst": "10.0.0.0/8", "type": "throw", "table": 100},
                   {"dst": "10.65.0.0/16", "type": "blackhole"},
                   {"dst": "::/0", "dev": "eth0", "gateway": "2001:db8::1", "priority": 1024},
                   {"dst": "2001:db8::2", "type": "local", "dev": "eth0", "table": 255}]}))

    captured = json.load(open(os.path.join(TOP, "tests/fixtures/xt/captured.json")))
    for case, c in sorted(captured["cases"].items()):
        for n, x in enumerate(c["xt"]):
            flags = (1 if x["target"] else 0) | (2 if c["family"] == "ip6" else 0)
            data = bytes([flags, x["rev"]]) + x["name"].encode() + b"\0" + bytes.fromhex(x["info"])
            write("decode_xt", f"{case}-{n}-{x['name']}", data)

    saves = {"capture": open(os.path.join(TOP, "tests/fixtures/xt/capture.ipsets")).read(),
             "captured": captured["ipset_save"]}
    rw = os.path.join(SHARED, "fixtures", "real-world")
    if os.path.isdir(rw):
        for f in sorted(os.listdir(rw)):
            if f.endswith(".ipsets"):
                saves[f.replace(".ipsets", "")] = open(os.path.join(rw, f)).read()
    for name, text in saves.items():
        write("parse_ipset_save", f"{name}.save", text)
        # And each set alone, so that mutations work on one set type at a time.
        blocks = {}
        for line in text.splitlines():
            t = line.split()
            if len(t) >= 2 and t[0] in ("create", "add"):
                blocks.setdefault(t[1], []).append(line)
        for set_name, lines in blocks.items():
            write("parse_ipset_save", f"{name}-{set_name}.save", "\n".join(lines) + "\n")
    snap = json.load(open(os.path.join(TOP, "examples/seed/platform-iptables-nft.snapshot.json")))
    for name, ruleset, _ in chain_slices(snap["ruleset"]):
        chain = [i["chain"] for i in ruleset["nftables"] if "chain" in i][-1]
        xt = [x for x in snap["xt"] if (x["family"], x["table"], x["chain"]) ==
              (chain["family"], chain["table"], chain["name"])]
        write("load_snapshot", f"platform-{name}.json",
              dumps(dict(snap, ruleset=ruleset, xt=xt)))

    rules = {"capture-v4": "tests/fixtures/xt/capture-v4.rules",
             "capture-v6": "tests/fixtures/xt/capture-v6.rules"}
    for base in ("real-world", "calico"):
        d = os.path.join(SHARED, "fixtures", base)
        for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if f.endswith(".load") or f in ("cali-iptables-dump.txt", "iptables-dump.txt"):
                rules[f.rsplit(".", 1)[0]] = os.path.join(d, f)
    for base, path in rules.items():
        text = open(os.path.join(TOP, path)).read()
        write("load_iptables_save", f"{base}.rules", text)
        for name, part in save_slices(text):
            write("load_iptables_save", f"{base}-{name}.rules", part)

    for t in sorted(os.listdir(CORPUS)):
        print(f"{t}: {len(os.listdir(os.path.join(CORPUS, t)))} files")


if __name__ == "__main__":
    main()
