// Decoding iptables-nft compat payloads. The payloads in tests/fixtures/xt/captured.json were
// dumped by the kernel (see the [.xtcapture] case in tests/privileged/test_xt_live.cpp) for the
// rules in capture-v4.rules / capture-v6.rules with the sets of capture.ipsets. A few extensions
// that iptables-nft 1.8.9 writes natively (NFLOG, limit, mark, state) are built from the UAPI
// structs instead.
#include <arpa/inet.h>
#include <cstring>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/xt_NFLOG.h>
#include <linux/netfilter/xt_limit.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/netfilter/xt_set.h>
#include <linux/netfilter/xt_state.h>
#include <nlohmann/json.hpp>

#include "backends/nftables/xt/decode.h"
#include "backends/nftables/xt/ipsets.h"
#include "fixture_paths.h"

namespace {

using namespace dpi::nft;
using nlohmann::json;

const json& captured() {
  static const json doc =
      json::parse(dpi::test::slurp(dpi::test::source_path("tests/fixtures/xt/captured.json")));
  return doc;
}

// The idx-th xt expression of the captured rule in chain `id`.
XtExpr expr(const std::string& id, std::size_t idx = 0) {
  const json& c = captured().at("cases").at(id);
  const json& x = c.at("xt").at(idx);
  return XtExpr{x.at("target"), x.at("name"), x.at("rev"), dpi::test::unhex(x.at("info"))};
}

struct Decoded {
  Ruleset rs;
  std::string family, table, why;
  std::optional<XtDecoded> d;
};

std::unique_ptr<Decoded> decode(const XtExpr& x, const std::string& family,
                                const std::string& table,
                                const IpsetCatalog* ipsets = &dpi::test::capture_ipsets()) {
  auto out = std::make_unique<Decoded>();
  out->family = family;
  out->table = table;
  XtContext ctx{out->rs, ipsets, out->family, out->table};
  out->d = decode_xt(x, ctx, &out->why);
  return out;
}

std::unique_ptr<Decoded> decode_case(const std::string& id, std::size_t idx = 0) {
  const json& c = captured().at("cases").at(id);
  return decode(expr(id, idx), c.at("family"), c.at("table"));
}

template <class T>
const T& only(const Decoded& d) {
  REQUIRE(d.d);
  REQUIRE(d.d->stmts.size() == 1);
  const T* p = std::get_if<T>(&d.d->stmts[0]);
  REQUIRE(p);
  return *p;
}

Bytes v4(const char* s) {
  Bytes b;
  b.len = 4;
  inet_pton(AF_INET, s, b.d.data());
  return b;
}
Bytes v6(const char* s) {
  Bytes b;
  b.len = 16;
  inet_pton(AF_INET6, s, b.d.data());
  return b;
}
Bytes u(uint64_t v, std::size_t w) {
  return Bytes::from_uint(v, w);
}
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const auto& p : parts) b.append(p);
  return b;
}
std::vector<Key> keys(const Selector& s) {
  std::vector<Key> out;
  for (const auto& p : s.parts) out.push_back(p.key);
  return out;
}

template <class T>
XtExpr synthetic(bool target, const char* name, uint32_t rev, const T& info) {
  XtExpr x{target, name, rev, {}};
  x.info.resize(sizeof(T));
  std::memcpy(x.info.data(), &info, sizeof(T));
  return x;
}

}  // namespace

TEST_CASE("xt comment gives the rule's comment and no statement", "[unit]") {
  auto d = decode_case("x-comment");
  REQUIRE(d->d);
  CHECK(d->d->comment == "cali:abc");
  CHECK(d->d->stmts.empty());
}

TEST_CASE("xt conntrack --ctstate becomes ct state flags", "[unit]") {
  for (const char* id : {"x-ct-relest", "x6-ct-relest"}) {
    auto d = decode_case(id);
    const auto& m = only<MatchStmt>(*d);
    CHECK(keys(m.lhs) == std::vector<Key>{Key::ct_state});
    CHECK(m.rhs_kind == MatchStmt::RhsKind::flags);
    CHECK(m.flags == u(2 | 4, 4));  // established, related
    CHECK_FALSE(m.invert);
  }
  auto inv_d = decode_case("x-ct-invalid");
  const auto& inv = only<MatchStmt>(*inv_d);
  CHECK(inv.flags == u(1, 4));
  // -m state is conntrack with the state alias flag: NEW,UNTRACKED.
  auto st_d = decode_case("x-state");
  const auto& st = only<MatchStmt>(*st_d);
  CHECK(st.flags == u(8 | 64, 4));
}

TEST_CASE("xt conntrack ! --ctstate DNAT is a negated ct status dnat test", "[unit]") {
  auto m_d = decode_case("x-ct-not-dnat");
  const auto& m = only<MatchStmt>(*m_d);
  CHECK(keys(m.lhs) == std::vector<Key>{Key::ct_state, Key::ct_status});
  CHECK(m.flags == cat({u(0, 4), u(32, 4)}));
  CHECK(m.invert);
}

TEST_CASE("xt conntrack --ctstatus/--ctproto need a conntrack entry", "[unit]") {
  auto d = decode_case("x-ct-status");
  REQUIRE(d->d);
  REQUIRE(d->d->stmts.size() == 3);
  const auto& guard = std::get<MatchStmt>(d->d->stmts[0]);
  CHECK(keys(guard.lhs) == std::vector<Key>{Key::ct_state});
  CHECK(guard.flags == u(2 | 4 | 8, 4));
  const auto& proto = std::get<MatchStmt>(d->d->stmts[1]);
  CHECK(keys(proto.lhs) == std::vector<Key>{Key::ct_protocol});
  CHECK(proto.range.lo == u(6, 1));
  const auto& status = std::get<MatchStmt>(d->d->stmts[2]);
  CHECK(keys(status.lhs) == std::vector<Key>{Key::ct_status});
  CHECK(status.flags == u(4, 4));  // assured
}

TEST_CASE("xt conntrack options that are not decoded are named", "[unit]") {
  auto d = decode_case("x-ct-origdst");
  CHECK_FALSE(d->d);
  CHECK(d->why.find("xt match \"conntrack\" revision 3") != std::string::npos);
  CHECK(d->why.find("--ctorigdst") != std::string::npos);
}

TEST_CASE("xt set src: a lookup in the ipset with nomatch entries resolved", "[unit]") {
  auto d = decode_case("x-set-src");
  const auto& m = only<MatchStmt>(*d);
  CHECK(keys(m.lhs) == std::vector<Key>{Key::ip_saddr});
  CHECK(m.rhs_kind == MatchStmt::RhsKind::set);
  CHECK_FALSE(m.invert);
  REQUIRE(m.set);
  CHECK(m.set->find(v4("10.65.0.1")));
  CHECK(m.set->find(v4("10.65.255.255")));
  CHECK_FALSE(m.set->find(v4("10.65.1.1")));  // 10.65.1.0/24 nomatch
  CHECK(m.set->find(v4("10.65.1.7")));        // /32 inside the nomatch /24
  CHECK_FALSE(m.set->find(v4("10.65.1.8")));
  CHECK(m.set->find(v4("192.168.7.9")));
  CHECK_FALSE(m.set->find(v4("10.66.0.1")));
  CHECK(d->rs.sets.size() == 1);
}

TEST_CASE("xt set ! dst,dst on hash:ip,port reads address, protocol and port", "[unit]") {
  auto m_d = decode_case("x-set-dstdst-inv");
  const auto& m = only<MatchStmt>(*m_d);
  CHECK(keys(m.lhs) == std::vector<Key>{Key::ip_daddr, Key::meta_l4proto, Key::th_dport});
  CHECK(m.invert);
  CHECK(m.set->find(cat({v4("10.65.0.3"), u(6, 1), u(80, 2)})));
  CHECK(m.set->find(cat({v4("10.65.0.4"), u(17, 1), u(53, 2)})));
  CHECK_FALSE(m.set->find(cat({v4("10.65.0.3"), u(17, 1), u(80, 2)})));
  CHECK_FALSE(m.set->find(cat({v4("10.65.0.3"), u(6, 1), u(81, 2)})));
}

TEST_CASE("xt set on a list:set is the union of its members", "[unit]") {
  auto m_d = decode_case("x-set-list");
  const auto& m = only<MatchStmt>(*m_d);
  CHECK(keys(m.lhs) == std::vector<Key>{Key::ip_saddr});
  CHECK(m.set->find(v4("10.65.0.1")));
  CHECK(m.set->find(v4("172.18.3.4")));
  CHECK_FALSE(m.set->find(v4("10.65.1.1")));
}

TEST_CASE("xt set --return-nomatch matches the nomatch entries instead", "[unit]") {
  auto m_d = decode_case("x-set-return-nomatch");
  const auto& m = only<MatchStmt>(*m_d);
  CHECK(m.set->find(v4("10.65.1.1")));
  CHECK_FALSE(m.set->find(v4("10.65.1.7")));
  CHECK_FALSE(m.set->find(v4("10.65.0.1")));
}

TEST_CASE("xt set in IPv6 tables", "[unit]") {
  auto m_d = decode_case("x6-set-src");
  const auto& m = only<MatchStmt>(*m_d);
  CHECK(keys(m.lhs) == std::vector<Key>{Key::ip6_saddr});
  CHECK(m.set->find(v6("fd00:10::1:2")));
  CHECK_FALSE(m.set->find(v6("fd00:10::2")));  // fd00:10::/112 nomatch
  CHECK_FALSE(m.set->find(v6("fd00:11::1")));
  auto p_d = decode_case("x6-set-port");
  const auto& p = only<MatchStmt>(*p_d);
  CHECK(keys(p.lhs) == std::vector<Key>{Key::ip6_daddr, Key::meta_l4proto, Key::th_dport});
  CHECK(p.set->find(cat({v6("fd00:10::3"), u(6, 1), u(443, 2)})));
}

TEST_CASE("xt set error paths", "[unit]") {
  auto counters = decode_case("x-set-counters");
  CHECK_FALSE(counters->d);
  CHECK(counters->why.find("counter") != std::string::npos);

  auto no_sets = decode(expr("x-set-src"), "ip", "filter", nullptr);
  CHECK_FALSE(no_sets->d);
  CHECK(no_sets->why.find("ipsets were not read") != std::string::npos);

  IpsetCatalog empty;
  auto missing = decode(expr("x-set-src"), "ip", "filter", &empty);
  CHECK_FALSE(missing->d);
  CHECK(missing->why.find("index 0 does not exist") != std::string::npos);

  // Two ranged parts and a nomatch entry cannot be flattened into intervals.
  auto cat2 = parse_ipset_save(
      "create nn hash:net,net family inet\nadd nn 10.0.0.0/8,10.1.0.0/16\nadd nn "
      "10.0.0.0/16,10.1.0.0/24 nomatch\n",
      "t");
  REQUIRE(cat2.ok());
  xt_set_info_match_v1 info{};
  info.match_set.index = 0;
  info.match_set.dim = 2;
  info.match_set.flags = IPSET_DIM_ONE_SRC;
  auto nn = decode(synthetic(false, "set", 1, info), "ip", "filter", &*cat2);
  CHECK_FALSE(nn->d);
  CHECK(nn->why.find("more than one ranged key part") != std::string::npos);

  // A set of the other family never matches: an empty lookup.
  auto v6set = decode(expr("x6-set-src"), "ip", "filter");
  const auto& m = only<MatchStmt>(*v6set);
  CHECK_FALSE(m.set->find(v4("10.65.0.1")));
  CHECK(m.set->elems.empty());
}

TEST_CASE("xt multiport: destination, inverted source and either", "[unit]") {
  auto d_d = decode_case("x-multiport-dst");
  const auto& d = only<MatchStmt>(*d_d);
  CHECK(keys(d.lhs) == std::vector<Key>{Key::th_dport});
  CHECK_FALSE(d.invert);
  for (int p : {80, 443, 1000, 1500, 2000}) CHECK(d.set->find(u(p, 2)));
  for (int p : {81, 999, 2001}) CHECK_FALSE(d.set->find(u(p, 2)));

  auto s_d = decode_case("x-multiport-src-inv");

  const auto& s = only<MatchStmt>(*s_d);
  CHECK(keys(s.lhs) == std::vector<Key>{Key::th_sport});
  CHECK(s.invert);
  CHECK(s.set->find(u(5353, 2)));

  auto e_d = decode_case("x-multiport-either");

  const auto& e = only<MatchStmt>(*e_d);
  CHECK(keys(e.lhs) == std::vector<Key>{Key::th_sport, Key::th_dport});
  CHECK(e.set->find(cat({u(22, 2), u(40000, 2)})));
  CHECK(e.set->find(cat({u(40000, 2), u(8050, 2)})));
  CHECK_FALSE(e.set->find(cat({u(40000, 2), u(40001, 2)})));

  XtExpr bad = expr("x-multiport-dst");
  bad.info[1] = 0;  // count
  auto r = decode(bad, "ip", "filter");
  CHECK_FALSE(r->d);
  CHECK(r->why.find("count 0") != std::string::npos);
}

TEST_CASE("xt addrtype: fib type sets; --limit-iface-out is refused", "[unit]") {
  auto m_d = decode_case("x-addrtype-dst-local");
  const auto& m = only<MatchStmt>(*m_d);
  CHECK(keys(m.lhs) == std::vector<Key>{Key::fib_daddr_type});
  CHECK(m.set->find(u(2, 4)));  // local
  CHECK_FALSE(m.set->find(u(1, 4)));
  auto limit = decode_case("x-masq-limit-iface", 0);
  CHECK_FALSE(limit->d);
  CHECK(limit->why.find("limit-iface") != std::string::npos);
  auto src_d = decode_case("x-masq-limit-iface", 1);
  const auto& src = only<MatchStmt>(*src_d);
  CHECK(keys(src.lhs) == std::vector<Key>{Key::fib_saddr_type});
  CHECK_FALSE(src.invert);
}

TEST_CASE("xt rpfilter: strict reverse path, loopback passes", "[unit]") {
  auto inv_d = decode_case("x-rpf-invert");
  const auto& inv = only<MatchStmt>(*inv_d);
  // --validmark (Calico renders it): the reverse lookup carries the packet mark.
  CHECK(keys(inv.lhs) == std::vector<Key>{Key::meta_iifname, Key::fib_saddr_mark_iif_oif});
  CHECK(inv.invert);  // --invert: matches when the check fails
  Bytes cali = u(0, 16), none = u(0, 16), lo = u(0, 16);
  std::memcpy(cali.d.data(), "cali1", 5);
  std::memcpy(lo.d.data(), "lo", 2);
  CHECK(inv.set->find(cat({cali, cali})));        // route back through the input interface
  CHECK_FALSE(inv.set->find(cat({cali, none})));  // no route back that way
  CHECK(inv.set->find(cat({lo, none})));
  auto plain_d = decode_case("x-rpf-plain");
  const auto& plain = only<MatchStmt>(*plain_d);
  CHECK_FALSE(plain.invert);
  auto loose = decode_case("x-rpf-loose");
  CHECK_FALSE(loose->d);
  CHECK(loose->why.find("--loose") != std::string::npos);
}

TEST_CASE("xt icmp and icmp6", "[unit]") {
  auto m_d = decode_case("x-icmp-echo");
  const auto& m = only<MatchStmt>(*m_d);
  CHECK(keys(m.lhs) == std::vector<Key>{Key::icmp_type, Key::icmp_code});
  CHECK(m.set->find(cat({u(8, 1), u(0, 1)})));
  CHECK_FALSE(m.set->find(cat({u(8, 1), u(1, 1)})));
  CHECK_FALSE(m.invert);
  auto any_d = decode_case("x-icmp-any-inv");
  const auto& any = only<MatchStmt>(*any_d);
  CHECK(keys(any.lhs) == std::vector<Key>{Key::icmp_type});
  CHECK(any.invert);
  CHECK(any.set->find(u(3, 1)));
  auto six_d = decode_case("x6-icmp6");
  const auto& six = only<MatchStmt>(*six_d);
  CHECK(keys(six.lhs) == std::vector<Key>{Key::icmpv6_type, Key::icmpv6_code});
  CHECK(six.set->find(cat({u(135, 1), u(0, 1)})));
  XtExpr bad = expr("x-icmp-echo");
  bad.info[3] = 0x80;  // unknown inverse flag
  CHECK_FALSE(decode(bad, "ip", "filter")->d);
}

TEST_CASE("xt MARK target: set-xmark, clear and set", "[unit]") {
  auto x_d = decode_case("x-mark-xmark");
  const auto& x = only<MangleStmt>(*x_d);
  CHECK(x.target == MangleStmt::Target::meta_mark);
  CHECK(x.value.key == Key::meta_mark);
  REQUIRE(x.value.binops.size() == 1);
  CHECK(x.value.binops[0].first == '|');
  CHECK(x.value.binops[0].second == u(0x10000, 4));
  auto c_d = decode_case("x-mark-clear");
  const auto& c = only<MangleStmt>(*c_d);
  REQUIRE(c.value.binops.size() == 1);
  CHECK(c.value.binops[0].first == '&');
  CHECK(c.value.binops[0].second == u(0xfffcffff, 4));
  auto s_d = decode_case("x-mark-set");
  const auto& s = only<MangleStmt>(*s_d);
  REQUIRE(s.constant);
  CHECK(*s.constant == u(0x12345678, 4));
  // A general xmark: (mark & ~mask) ^ value.
  xt_mark_tginfo2 g{0x5, 0xc};
  auto gm_d = decode(synthetic(true, "MARK", 2, g), "ip", "mangle");
  const auto& gm = only<MangleStmt>(*gm_d);
  REQUIRE(gm.value.binops.size() == 2);
  CHECK(gm.value.binops[0] == std::make_pair('&', u(~0xcu, 4)));
  CHECK(gm.value.binops[1] == std::make_pair('^', u(0x5, 4)));
  XtExpr old = expr("x-mark-xmark");
  old.rev = 1;
  auto r = decode(old, "ip", "filter");
  CHECK_FALSE(r->d);
  CHECK(r->why == "xt target \"MARK\" revision 1 is not decoded");
}

TEST_CASE("xt CONNMARK target", "[unit]") {
  auto r_d = decode_case("x-connmark-restore");
  const auto& r = only<MangleStmt>(*r_d);
  CHECK(r.target == MangleStmt::Target::meta_mark);
  CHECK(r.value.key == Key::ct_mark);
  CHECK(r.value.binops.empty());
  for (const char* id : {"x-connmark-save", "x-connmark-mixed"}) {
    auto d = decode_case(id);
    CHECK_FALSE(d->d);
    CHECK(d->why.find("mixes two marks") != std::string::npos);
  }
}

TEST_CASE("xt CT and NOTRACK targets", "[unit]") {
  only<NotrackStmt>(*decode_case("x-ct-notrack"));
  only<NotrackStmt>(*decode_case("x-notrack"));
  auto a_d = decode_case("x-ct-zone");
  const auto& a = only<AssumeStmt>(*a_d);
  CHECK(a.assumption.find("zone 5") != std::string::npos);
  CHECK(a.matches);
  XtExpr cut = expr("x-ct-zone");
  cut.info.resize(4);
  CHECK_FALSE(decode(cut, "ip", "raw")->d);
}

TEST_CASE("xt LOG, NFLOG and REJECT targets", "[unit]") {
  auto l_d = decode_case("x-log");
  const auto& l = only<LogStmt>(*l_d);
  CHECK(l.prefix == "calico-packet: ");
  CHECK(l.level == "notice");
  CHECK_FALSE(l.group);

  // iptables-nft 1.8.9 writes NFLOG natively; older ones used the xt target.
  xt_nflog_info n{};
  n.len = 80;
  n.group = 2;
  n.flags = XT_NFLOG_F_COPY_LEN;
  std::strcpy(n.prefix, "DPE|platform");
  auto nl_d = decode(synthetic(true, "NFLOG", 0, n), "ip", "filter");
  const auto& nl = only<LogStmt>(*nl_d);
  CHECK(nl.prefix == "DPE|platform");
  CHECK(nl.group == 2);
  CHECK(nl.snaplen == 80);

  CHECK(only<RejectStmt>(*decode_case("x-reject")).with == "icmp port-unreachable");
  CHECK(only<RejectStmt>(*decode_case("x-reject-tcp")).with == "tcp reset");
  CHECK(only<RejectStmt>(*decode_case("x6-reject")).with == "icmpv6 admin-prohibited");
  XtExpr bad = expr("x-reject");
  bad.info[0] = 42;
  auto r = decode(bad, "ip", "filter");
  CHECK_FALSE(r->d);
  CHECK(r->why.find("reject type 42") != std::string::npos);
}

TEST_CASE("xt NAT targets", "[unit]") {
  auto d_d = decode_case("x-dnat");
  const auto& d = only<NatStmt>(*d_d);
  CHECK(d.kind == NatStmt::Kind::dnat);
  REQUIRE(d.addr);
  CHECK(*d.addr == v4("10.65.0.3"));
  CHECK(d.port == 80);
  auto s_d = decode_case("x-snat");
  const auto& s = only<NatStmt>(*s_d);
  CHECK(s.kind == NatStmt::Kind::snat);
  CHECK(*s.addr == v4("172.18.0.2"));
  CHECK_FALSE(s.port);
  auto masq = decode_case("x-masq", 1);
  CHECK(only<NatStmt>(*masq).kind == NatStmt::Kind::masquerade);
  auto set_d = decode_case("x-masq", 0);
  const auto& set = only<MatchStmt>(*set_d);
  CHECK(set.set->find(v4("172.18.0.9")));
  auto red_d = decode_case("x-redirect");
  const auto& red = only<NatStmt>(*red_d);
  CHECK(red.kind == NatStmt::Kind::redirect);
  CHECK(red.port == 15001);
  auto d6_d = decode_case("x6-dnat");
  const auto& d6 = only<NatStmt>(*d6_d);
  CHECK(*d6.addr == v6("fd00:10::3"));
  CHECK(d6.port == 8080);
  CHECK(only<NatStmt>(*decode_case("x6-masq")).kind == NatStmt::Kind::masquerade);
  auto range = decode_case("x-dnat-range");
  CHECK_FALSE(range->d);
  CHECK(range->why.find("address range") != std::string::npos);
}

TEST_CASE("xt mark, limit, connlimit and state matches", "[unit]") {
  xt_mark_mtinfo1 mk{};
  mk.mark = 0;
  mk.mask = 0x20000;
  mk.invert = 1;
  auto m_d = decode(synthetic(false, "mark", 1, mk), "ip", "filter");
  const auto& m = only<MatchStmt>(*m_d);
  CHECK(keys(m.lhs) == std::vector<Key>{Key::meta_mark});
  CHECK(m.op == Op::ne);
  CHECK(m.range.lo == u(0, 4));
  REQUIRE(m.lhs.parts[0].binops.size() == 1);
  CHECK(m.lhs.parts[0].binops[0].second == u(0x20000, 4));

  xt_rateinfo rate{};
  rate.avg = XT_LIMIT_SCALE / 10;
  rate.burst = 5;
  auto lim_d = decode(synthetic(false, "limit", 0, rate), "ip", "filter");
  const auto& lim = only<AssumeStmt>(*lim_d);
  CHECK(lim.matches);
  CHECK(lim.assumption.find("10/second") != std::string::npos);

  auto cl = decode_case("x-connlimit", 0);
  const auto& above = only<AssumeStmt>(*cl);
  CHECK_FALSE(above.matches);  // --connlimit-above assumed not exceeded: no match
  CHECK(above.assumption.find("above 10") != std::string::npos);

  xt_state_info st{};
  st.statemask = XT_STATE_BIT(IP_CT_ESTABLISHED) | XT_STATE_INVALID;
  auto sm_d = decode(synthetic(false, "state", 0, st), "ip", "filter");
  const auto& sm = only<MatchStmt>(*sm_d);
  CHECK(sm.flags == u(3, 4));
}

TEST_CASE("unknown xt extensions and revisions are named", "[unit]") {
  auto mac = decode_case("x-mac");
  CHECK_FALSE(mac->d);
  CHECK(mac->why == "xt match \"mac\" revision 0 is not decoded");
  XtExpr ct = expr("x-ct-relest");
  ct.rev = 0;
  auto r = decode(ct, "ip", "filter");
  CHECK(r->why == "xt match \"conntrack\" revision 0 is not decoded");
}

TEST_CASE("every decoder refuses a truncated payload", "[unit]") {
  for (const auto& [id, c] : captured().at("cases").items()) {
    for (std::size_t i = 0; i < c.at("xt").size(); ++i) {
      XtExpr x = expr(id, i);
      if (x.name == "comment") continue;  // any text, even empty, is a comment
      x.info.clear();
      auto d = decode(x, c.at("family"), c.at("table"));
      INFO(id << " " << x.name);
      CHECK_FALSE(d->d);
      CHECK_FALSE(d->why.empty());
    }
  }
}

TEST_CASE("parse_ipset_save reads real ipset save output", "[unit]") {
  auto c = parse_ipset_save(captured().at("ipset_save").get<std::string>(), "captured ipset save");
  REQUIRE(c.ok());
  REQUIRE(c->sets.size() == 6);
  const Ipset* xyz = c->by_name("cali40s:xyz");
  REQUIRE(xyz);
  CHECK(xyz->type == "hash:net");
  CHECK(xyz->family == 2);
  REQUIRE(xyz->members.size() == 4);
  int nomatch = 0;
  for (const auto& m : xyz->members) nomatch += m.nomatch;
  CHECK(nomatch == 1);
  const Ipset* web = c->by_name("cali40n:web");
  REQUIRE(web);
  CHECK(web->key_types == std::vector<Type>{Type::ipv4, Type::inet_proto, Type::inet_service});
  const Ipset* list = c->by_name("cali40list");
  REQUIRE(list);
  CHECK(list->list_members == std::vector<std::string>{"cali40s:xyz", "cali40all-hosts-net"});
  CHECK(c->by_name("cali60s:v6")->family == 10);
  // `ipset save` prints list:set last.
  CHECK(list->index == 5);

  // The real-world fixtures' sets.
  for (const char* f : {"fixtures/real-world/kubelab-gke-allow.ipsets",
                        "fixtures/real-world/kubelab-gke-complex.ipsets"}) {
    auto r = parse_ipset_save(dpi::test::slurp(dpi::test::shared_path(f)), f);
    INFO(f);
    REQUIRE(r.ok());
    CHECK_FALSE(r->sets.empty());
  }
}

TEST_CASE("parse_ipset_save errors name the line", "[unit]") {
  auto bad_elem = parse_ipset_save("create a hash:ip\nadd a 10.0.0.300\n", "f");
  REQUIRE_FALSE(bad_elem.ok());
  CHECK(bad_elem.error().message.find("f:2:") == 0);
  auto no_set = parse_ipset_save("add a 10.0.0.1\n", "f");
  REQUIRE_FALSE(no_set.ok());
  CHECK(no_set.error().message.find("not created") != std::string::npos);
  auto bad_type = parse_ipset_save("create a hash:foo\n", "f");
  REQUIRE_FALSE(bad_type.ok());
  auto ports =
      parse_ipset_save("create p hash:ip,port\nadd p 10.0.0.1,udp:53-55\nadd p 10.0.0.2,80\n", "f");
  REQUIRE(ports.ok());
  CHECK(ports->sets[0].members[0].key[2].hi == u(55, 2));
  CHECK(ports->sets[0].members[1].key[1].lo == u(6, 1));  // tcp by default
  auto netmask = parse_ipset_save("create m hash:ip netmask 24\nadd m 10.1.2.0\n", "f");
  REQUIRE(netmask.ok());
  CHECK(netmask->sets[0].members[0].key[0].hi == v4("10.1.2.255"));
}
