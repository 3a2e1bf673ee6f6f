// iptables-save text input (backends/nftables/iptables_save): real dumps, every match and target
// kind, bad input. The kind-by-kind check compares with the kernel: each rule of
// tests/fixtures/xt/capture-v{4,6}.rules is compiled from text and must give the same statements
// as the iptables-nft payloads the kernel holds for it (captured.json) decoded by decode_xt.
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backends/nftables/iptables_save/iptables_save.h"
#include "backends/nftables/xt/decode.h"
#include "backends/nftables/xt/ipsets.h"
#include "fixture_paths.h"

namespace {

using namespace dpi::nft;
using nlohmann::json;

std::unique_ptr<Ruleset> load_ok(const std::string& text, const IpsetCatalog* sets = nullptr) {
  IptablesSaveOptions o;
  o.ipsets = sets;
  auto rs = load_iptables_save(text, "t.rules", o);
  INFO((rs ? std::string() : rs.error().message));
  REQUIRE(rs.ok());
  return std::move(*rs);
}

std::string load_err(const std::string& text) {
  auto rs = load_iptables_save(text, "t.rules");
  REQUIRE_FALSE(rs.ok());
  CHECK(rs.error().code == dpi::ErrorCode::bad_input);
  return rs.error().message;
}

// One rule in a filter table, for the statement checks.
const Rule& one_rule(const Ruleset& rs, const std::string& chain = "INPUT") {
  const Chain* c = rs.find_chain(rs.tables.front().family, rs.tables.front().name, chain);
  REQUIRE(c);
  REQUIRE(c->rules.size() == 1);
  return c->rules[0];
}
std::unique_ptr<Ruleset> filter_rule(const std::string& rule, const IpsetCatalog* sets = nullptr) {
  return load_ok("*filter\n:INPUT ACCEPT [0:0]\n:x - [0:0]\n-A INPUT " + rule + "\nCOMMIT\n", sets);
}

// A canonical rendering of a statement, for comparing two compilations of the same rule.
std::string describe(const Stmt& s) {
  auto sel = [](const Selector& x) {
    std::string o;
    for (const auto& p : x.parts) {
      o += fmt::format("k{}w{}", int(p.key), p.width);
      for (const auto& [op, b] : p.binops) o += fmt::format("{}{}", op, b.hex());
      if (p.numgen_mod) o += fmt::format("n{}", p.numgen_mod);
      o += ".";
    }
    return o;
  };
  return std::visit(
      [&](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, MatchStmt>) {
          std::string o = fmt::format("match {} op{} inv{} ", sel(v.lhs), int(v.op), v.invert);
          if (v.rhs_kind == MatchStmt::RhsKind::range)
            o += v.range.lo.hex() + "-" + v.range.hi.hex();
          if (v.rhs_kind == MatchStmt::RhsKind::flags) o += "flags " + v.flags.hex();
          if (v.rhs_kind == MatchStmt::RhsKind::set) {
            o += "set{";
            for (const auto& e : v.set->elems) {
              for (const auto& r : e.key) o += r.lo.hex() + "-" + r.hi.hex() + ".";
              o += ",";
            }
            o += "}";
          }
          return o;
        } else if constexpr (std::is_same_v<T, MangleStmt>) {
          return fmt::format("mangle {} {} {}", int(v.target), v.constant ? v.constant->hex() : "-",
                             v.constant ? "" : sel(Selector{{v.value}}));
        } else if constexpr (std::is_same_v<T, NatStmt>) {
          return fmt::format("nat {} {} {}", int(v.kind), v.addr ? v.addr->hex() : "-",
                             v.port ? *v.port : -1);
        } else if constexpr (std::is_same_v<T, LogStmt>) {
          return fmt::format("log {} {} {} {}", v.prefix, v.group.value_or(-1),
                             v.snaplen.value_or(-1), v.level);
        } else if constexpr (std::is_same_v<T, RejectStmt>) {
          return "reject " + v.with;
        } else if constexpr (std::is_same_v<T, AssumeStmt>) {
          return fmt::format("assume {}", v.matches);
        } else if constexpr (std::is_same_v<T, NotrackStmt>) {
          return "notrack";
        } else if constexpr (std::is_same_v<T, UnknownStmt>) {
          return "unknown";
        } else if constexpr (std::is_same_v<T, VerdictStmt>) {
          return fmt::format("verdict {}", int(v.kind));
        } else {
          return "other";
        }
      },
      s);
}

}  // namespace

TEST_CASE("iptables-save: real Calico and kube-proxy dumps load", "[unit]") {
  for (const char* f :
       {"fixtures/calico/cali-iptables-dump.txt", "fixtures/calico/iptables-dump.txt"}) {
    auto rs = load_ok(dpi::test::slurp(dpi::test::shared_path(f)));
    CHECK(rs->rule_count > 40);
    CHECK(rs->has_family("ip"));
    // Nothing in these dumps is beyond the model except physdev and addrtype --limit-iface-out,
    // which the live path cannot decide either.
    for (const auto& c : rs->chains)
      for (const auto& r : c.rules)
        for (const auto& s : r.stmts)
          if (auto* u = std::get_if<UnknownStmt>(&s)) {
            INFO(f << ": " << r.text << " -> " << u->why);
            CHECK((u->expression.find("-m physdev") == 0 ||
                   u->why.find("--limit-iface") != std::string::npos));
          }
  }
  auto rs =
      load_ok(dpi::test::slurp(dpi::test::shared_path("fixtures/calico/cali-iptables-dump.txt")));
  // Base chains on the iptables hooks in priority order: raw, mangle, nat, filter.
  const auto& pre = rs->v4_hooks.at(Hook::prerouting);
  REQUIRE(pre.size() >= 2);
  CHECK(pre[0]->table == "raw");
  CHECK(pre[0]->priority == -300);
  const auto& fwd = rs->v4_hooks.at(Hook::forward);
  CHECK(fwd.back()->table == "filter");
  const Chain* post = rs->find_chain("ip", "nat", "POSTROUTING");
  REQUIRE(post);
  CHECK(post->type == "nat");
  CHECK(post->priority == 100);
}

TEST_CASE("iptables-save: real-world GKE dumps with their ipsets", "[unit]") {
  for (const char* d : {"kubelab-gke-deny", "kubelab-gke-allow", "kubelab-gke-complex"}) {
    std::string base = dpi::test::shared_path(std::string("fixtures/real-world/") + d);
    std::optional<IpsetCatalog> sets;
    if (std::ifstream(base + ".ipsets")) {
      auto c = parse_ipset_save(dpi::test::slurp(base + ".ipsets"), base + ".ipsets");
      REQUIRE(c.ok());
      sets = *c;
    }
    auto rs = load_ok(dpi::test::slurp(base + ".load"), sets ? &*sets : nullptr);
    std::size_t unknown = 0;
    for (const auto& c : rs->chains)
      for (const auto& r : c.rules) {
        CHECK(r.text.rfind("-A ", 0) == 0);
        for (const auto& s : r.stmts) unknown += std::holds_alternative<UnknownStmt>(s);
      }
    INFO(d);
    CHECK(unknown == 0);
  }
}

TEST_CASE("iptables-save: handles are line numbers, text is the line, comments join", "[unit]") {
  auto rs = load_ok(
      "# header\n*filter\n:INPUT DROP [1:2]\n:FORWARD ACCEPT [0:0]\n:cali-x - [0:0]\n"
      "-A INPUT -m comment --comment \"cali:abc\" -m comment --comment \"Say \\\"hi\\\"\" -j "
      "cali-x\n"
      "-A cali-x -j ACCEPT\nCOMMIT\n");
  const Chain* in = rs->find_chain("ip", "filter", "INPUT");
  REQUIRE(in);
  CHECK(in->base);
  CHECK(in->policy == VerdictKind::drop);
  CHECK(rs->find_chain("ip", "filter", "FORWARD")->policy == VerdictKind::accept);
  const Rule& r = in->rules.at(0);
  CHECK(r.handle == 6);
  CHECK(r.text ==
        "-A INPUT -m comment --comment \"cali:abc\" -m comment --comment \"Say \\\"hi\\\"\" -j "
        "cali-x");
  CHECK(r.comment == "cali:abc; Say \"hi\"");
  const auto& v = std::get<VerdictStmt>(r.stmts.back());
  CHECK(v.kind == VerdictKind::jump);
  REQUIRE(v.target);
  CHECK(v.target->name == "cali-x");
  CHECK(rs->find_chain("ip", "filter", "cali-x")->rules.at(0).handle == 7);
}

TEST_CASE("iptables-save: generic matches", "[unit]") {
  auto rs = filter_rule(
      "! -s 10.0.0.0/8 -d 192.168.1.1/255.255.255.0 -i cali+ ! -o eth0 -p tcp --dport 80:90 -j "
      "DROP");
  const Rule& r = one_rule(*rs);
  REQUIRE(r.stmts.size() == 7);
  auto& s = std::get<MatchStmt>(r.stmts[0]);
  CHECK(s.lhs.parts[0].key == Key::ip_saddr);
  CHECK(s.op == Op::ne);
  CHECK(s.range.lo.hex() == "0x0a000000");
  CHECK(s.range.hi.hex() == "0x0affffff");
  auto& d = std::get<MatchStmt>(r.stmts[1]);
  CHECK(d.range.lo.hex() == "0xc0a80100");
  CHECK(d.range.hi.hex() == "0xc0a801ff");
  auto& i = std::get<MatchStmt>(r.stmts[2]);
  CHECK(i.lhs.parts[0].key == Key::meta_iifname);
  CHECK(i.range.lo.hex().substr(0, 10) == "0x63616c69");
  auto& o = std::get<MatchStmt>(r.stmts[3]);
  CHECK(o.lhs.parts[0].key == Key::meta_oifname);
  CHECK(o.op == Op::ne);
  auto& p = std::get<MatchStmt>(r.stmts[4]);
  CHECK(p.lhs.parts[0].key == Key::meta_l4proto);
  CHECK(p.range.lo.as_uint() == 6);
  auto& port = std::get<MatchStmt>(r.stmts[5]);
  CHECK(port.lhs.parts[0].key == Key::tcp_dport);
  CHECK(port.range.lo.as_uint() == 80);
  CHECK(port.range.hi.as_uint() == 90);
  CHECK(std::get<VerdictStmt>(r.stmts[6]).kind == VerdictKind::drop);
  // 0.0.0.0/0 tests nothing; long option names work.
  auto any = filter_rule("--source 0.0.0.0/0 --protocol udp --in-interface eth0 --jump ACCEPT");
  CHECK(one_rule(*any).stmts.size() == 3);
}

TEST_CASE("iptables-save: ip6tables-save becomes family ip6", "[unit]") {
  auto rs = load_ok(
      "# Generated by ip6tables-save v1.8.9\n*filter\n:INPUT ACCEPT [0:0]\n"
      "-A INPUT -s fd00::/64 -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT\n"
      "-A INPUT -j REJECT --reject-with icmp6-adm-prohibited\nCOMMIT\n");
  CHECK(rs->has_family("ip6"));
  CHECK_FALSE(rs->has_family("ip"));
  CHECK(rs->v6_hooks.count(Hook::input));
  const Chain* in = rs->find_chain("ip6", "filter", "INPUT");
  CHECK(std::get<MatchStmt>(in->rules[0].stmts[0]).lhs.parts[0].key == Key::ip6_saddr);
  CHECK(std::get<RejectStmt>(in->rules[1].stmts[0]).with == "icmpv6 admin-prohibited");
}

TEST_CASE("iptables-save: every match and target compiles as the kernel's payload decodes",
          "[unit]") {
  json captured =
      json::parse(dpi::test::slurp(dpi::test::source_path("tests/fixtures/xt/captured.json")));
  std::map<std::string, std::unique_ptr<Ruleset>> files;
  for (const char* f : {"capture-v4.rules", "capture-v6.rules"}) {
    IptablesSaveOptions o;
    o.ipsets = &dpi::test::capture_ipsets();
    auto rs = load_iptables_save(
        dpi::test::slurp(dpi::test::source_path(std::string("tests/fixtures/xt/") + f)), f, o);
    INFO((rs ? std::string() : rs.error().message));
    REQUIRE(rs.ok());
    files[f] = std::move(*rs);
  }
  int compared = 0;
  for (const auto& [id, c] : captured.at("cases").items()) {
    INFO(id << ": " << c.at("rule").get<std::string>());
    std::string family = c.at("family"), table = c.at("table");
    const Ruleset& rs = *files[family == "ip6" ? "capture-v6.rules" : "capture-v4.rules"];
    const Chain* chain = rs.find_chain(family, table, id);
    REQUIRE(chain);
    REQUIRE(chain->rules.size() == 1);
    const Rule& r = chain->rules[0];
    // The kernel's side: every xt expression decoded (an undecodable one is an unknown).
    Ruleset scratch;
    XtContext ctx{scratch, &dpi::test::capture_ipsets(), family, table};
    std::vector<std::string> want;
    std::string comment;
    for (const auto& x : c.at("xt")) {
      XtExpr e{x.at("target"), x.at("name"), x.at("rev"), dpi::test::unhex(x.at("info"))};
      std::string why;
      auto d = decode_xt(e, ctx, &why);
      if (!d) {
        want.push_back("unknown");
        continue;
      }
      for (const auto& s : d->stmts) want.push_back(describe(s));
      if (!d->comment.empty()) comment += (comment.empty() ? "" : "; ") + d->comment;
    }
    // The text side: the same statements, after the native matches (-p ...) and before the
    // native verdict.
    std::vector<std::string> got;
    for (const auto& s : r.stmts) got.push_back(describe(s));
    if (!got.empty() && std::holds_alternative<VerdictStmt>(r.stmts.back())) got.pop_back();
    // An unknown xt match is one statement in either form; the rest of the rule may differ.
    bool has_unknown = std::find(want.begin(), want.end(), "unknown") != want.end();
    if (has_unknown) {
      CHECK(std::find(got.begin(), got.end(), "unknown") != got.end());
    } else {
      REQUIRE(got.size() >= want.size());
      std::vector<std::string> tail(got.end() - static_cast<std::ptrdiff_t>(want.size()),
                                    got.end());
      CHECK(tail == want);
    }
    CHECK(r.comment == comment);
    ++compared;
  }
  CHECK(compared == 48);
}

TEST_CASE("iptables-save: targets", "[unit]") {
  auto mark = [](const std::string& t) {
    auto rs = filter_rule("-j MARK " + t);
    return describe(one_rule(*rs).stmts.at(0));
  };
  // --set-mark v/m is --set-xmark v/(m|v); --or-mark v is v/v; --and-mark v is 0/~v.
  CHECK(mark("--set-mark 0x10000/0x10000") == mark("--set-xmark 0x10000/0x10000"));
  CHECK(mark("--or-mark 0x4") == mark("--set-xmark 0x4/0x4"));
  CHECK(mark("--and-mark 0xfffcffff") == mark("--set-xmark 0x0/0x30000"));
  CHECK(mark("--set-xmark 0x1") == "mangle 0 0x00000001 ");
  auto nflog =
      filter_rule("-j NFLOG --nflog-group 2 --nflog-prefix \"DPE|platform\" --nflog-size 80");
  const auto& l = std::get<LogStmt>(one_rule(*nflog).stmts.at(0));
  CHECK(l.prefix == "DPE|platform");
  CHECK(l.group == 2);
  CHECK(l.snaplen == 80);
  auto cm = filter_rule("-j CONNMARK --set-xmark 0x1/0xff");
  CHECK(std::get<MangleStmt>(one_rule(*cm).stmts.at(0)).target == MangleStmt::Target::ct_mark);
  auto go = filter_rule("-g x");
  CHECK(std::get<VerdictStmt>(one_rule(*go).stmts.at(0)).kind == VerdictKind::go_to);
  auto ret = filter_rule("-j RETURN");
  CHECK(std::get<VerdictStmt>(one_rule(*ret).stmts.at(0)).kind == VerdictKind::ret);
  auto nat = load_ok(
      "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j DNAT --to-destination "
      "10.1.2.3:8080\nCOMMIT\n");
  const auto& n = std::get<NatStmt>(one_rule(*nat, "PREROUTING").stmts.at(1));
  CHECK(n.kind == NatStmt::Kind::dnat);
  CHECK(n.addr->hex() == "0x0a010203");
  CHECK(n.port == 8080);
  // A target dpinspect does not model: an unknown statement with the exact text.
  auto dscp = filter_rule("-p tcp -j DSCP --set-dscp 0x0a");
  const auto& u = std::get<UnknownStmt>(one_rule(*dscp).stmts.back());
  CHECK(u.expression == "-j DSCP --set-dscp 0x0a");
}

TEST_CASE("iptables-save: matches beyond the captured ones", "[unit]") {
  auto lim = filter_rule("-m limit --limit 10/sec --limit-burst 5 -j ACCEPT");
  CHECK(std::get<AssumeStmt>(one_rule(*lim).stmts.at(0)).assumption.find("--limit 10/sec") !=
        std::string::npos);
  auto stat = filter_rule("-m statistic --mode random --probability 0.50000000000 -j x");
  const auto& m = std::get<MatchStmt>(one_rule(*stat).stmts.at(0));
  CHECK(m.lhs.parts[0].key == Key::numgen);
  auto flags = filter_rule("-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT");
  const auto& f = std::get<MatchStmt>(one_rule(*flags).stmts.at(1));
  CHECK(f.lhs.parts[0].key == Key::tcp_flags);
  CHECK(f.range.lo.as_uint() == 0x02);
  CHECK(f.lhs.parts[0].binops.at(0).second.as_uint() == 0x17);
  auto syn = filter_rule("-p tcp --syn -j ACCEPT");
  CHECK(describe(one_rule(*syn).stmts.at(1)) == describe(one_rule(*flags).stmts.at(1)));
  auto state = filter_rule("-m state ! --state INVALID -j ACCEPT");
  CHECK(std::get<MatchStmt>(one_rule(*state).stmts.at(0)).invert);
  auto mark = filter_rule("-m mark ! --mark 0x10000/0x10000 -j ACCEPT");
  CHECK(std::get<MatchStmt>(one_rule(*mark).stmts.at(0)).op == Op::ne);
  // An unknown match keeps its text; a missing ipset names the set.
  auto phys = filter_rule("-m physdev --physdev-is-bridged -j ACCEPT");
  CHECK(std::get<UnknownStmt>(one_rule(*phys).stmts.at(0)).expression ==
        "-m physdev --physdev-is-bridged");
  auto noset =
      filter_rule("-m set --match-set cali40nope src -j ACCEPT", &dpi::test::capture_ipsets());
  const auto& u = std::get<UnknownStmt>(one_rule(*noset).stmts.at(0));
  CHECK(u.why.find("cali40nope") != std::string::npos);
  auto nosets = filter_rule("-m set --match-set cali40s:xyz src -j ACCEPT");
  CHECK(std::get<UnknownStmt>(one_rule(*nosets).stmts.at(0)).why.find("cali40s:xyz") !=
        std::string::npos);
}

TEST_CASE("iptables-save: bad input names file:line", "[unit]") {
  CHECK(load_err("*bogus\nCOMMIT\n") ==
        "t.rules:1: unknown table 'bogus' (expected filter, nat, mangle, raw or security)");
  CHECK(load_err("-A INPUT -j ACCEPT\n")
            .rfind("t.rules:1: '-A INPUT -j ACCEPT' before any '*table' line", 0) == 0);
  CHECK(load_err("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n") ==
        "t.rules:3: table filter (line 1) ends without COMMIT");
  CHECK(load_err("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j nowhere\nCOMMIT\n") ==
        "t.rules:3: -j nowhere: no chain nowhere in table filter (and no such target)");
  CHECK(
      load_err(
          "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \"open -j ACCEPT\nCOMMIT\n")
          .rfind("t.rules:3: unterminated quote", 0) == 0);
  CHECK(load_err("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT --bogus 1 -j ACCEPT\nCOMMIT\n") ==
        "t.rules:3: unknown option '--bogus' for the rule");
  CHECK(
      load_err(
          "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m conntrack --ctbogus x -j ACCEPT\nCOMMIT\n") ==
      "t.rules:3: unknown option '--ctbogus' for -m conntrack");
  CHECK(load_err("*filter\n:INPUT ACCEPT [0:0]\n-A undeclared -j ACCEPT\nCOMMIT\n")
            .find("not declared") != std::string::npos);
  CHECK(load_err("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m mark --mark zzz -j ACCEPT\nCOMMIT\n")
            .rfind("t.rules:3: -m mark --mark zzz:", 0) == 0);
  CHECK(load_err("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.300 -j ACCEPT\nCOMMIT\n")
            .rfind("t.rules:3: -s", 0) == 0);
  CHECK(load_err("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport -j ACCEPT\nCOMMIT\n")
            .rfind("t.rules:3:", 0) == 0);
  CHECK(load_err("*filter\n:INPUT QUEUE [0:0]\nCOMMIT\n")
            .rfind("t.rules:2: chain INPUT: policy 'QUEUE'", 0) == 0);
  CHECK(load_err("*filter\n:a - [0:0]\n:b - [0:0]\n-A a -j b\n-A b -j a\nCOMMIT\n")
            .find("jump loop") != std::string::npos);
  CHECK(load_err("").find("no '*table' section") != std::string::npos);
  CHECK(load_err("*filter\nCOMMIT\n*filter\nCOMMIT\n") == "t.rules:3: table filter appears twice");
}
