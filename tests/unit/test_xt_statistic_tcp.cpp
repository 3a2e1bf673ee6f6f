// -m statistic and -m tcp/-m udp payloads, built from the UAPI structs the kernel hands back.
#include <cstring>

#include <catch2/catch.hpp>
// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <linux/netfilter/xt_statistic.h>
#include <linux/netfilter/xt_tcpudp.h>

#include "backends/nftables/xt/decode.h"

using namespace dpi::nft;

namespace {

template <class T>
XtExpr payload(const char* name, const T& info) {
  XtExpr x;
  x.name = name;
  x.info.resize(sizeof(T));
  std::memcpy(x.info.data(), &info, sizeof(T));
  return x;
}

std::optional<XtDecoded> decode(const XtExpr& x, std::string* why) {
  static Ruleset rs;
  static const std::string family = "ip", table = "filter";
  XtContext ctx{rs, nullptr, family, table};
  return decode_xt(x, ctx, why);
}

}  // namespace

TEST_CASE("statistic random is a two-way choice; probability 0 and 1 are decided", "[unit]") {
  xt_statistic_info s{};
  s.mode = XT_STATISTIC_MODE_RANDOM;
  s.u.random.probability = 0x40000000;  // 0.5
  std::string why;
  auto d = decode(payload("statistic", s), &why);
  REQUIRE(d);
  REQUIRE(d->stmts.size() == 1);
  const auto& m = std::get<MatchStmt>(d->stmts[0]);
  CHECK(m.lhs.parts[0].key == Key::numgen);
  CHECK(m.lhs.parts[0].numgen_mod == 2);

  s.u.random.probability = 0x80000000;  // always
  d = decode(payload("statistic", s), &why);
  REQUIRE(d);
  CHECK(d->stmts.empty());
  s.u.random.probability = 0;  // never: one statement that cannot match
  d = decode(payload("statistic", s), &why);
  REQUIRE(d);
  CHECK(d->stmts.size() == 1);
}

TEST_CASE("tcp and udp port ranges, inversion and flags", "[unit]") {
  xt_tcp t{};
  t.spts[1] = 0xffff;
  t.dpts[0] = t.dpts[1] = 80;
  t.invflags = XT_TCP_INV_DSTPT;
  std::string why;
  auto d = decode(payload("tcp", t), &why);
  REQUIRE(d);
  REQUIRE(d->stmts.size() == 1);  // the full source range tests nothing
  const auto& m = std::get<MatchStmt>(d->stmts[0]);
  CHECK(m.lhs.parts[0].key == Key::tcp_dport);
  CHECK(m.invert);
  CHECK(m.range.lo.as_uint() == 80);

  t.invflags = 0;
  t.flg_mask = 0x12;
  t.flg_cmp = 0x02;
  d = decode(payload("tcp", t), &why);
  REQUIRE(d);
  CHECK(d->stmts.size() == 2);

  t.option = 2;
  CHECK_FALSE(decode(payload("tcp", t), &why));
  CHECK(why.find("tcp-option") != std::string::npos);

  xt_udp u{};
  u.spts[1] = u.dpts[1] = 0xffff;
  d = decode(payload("udp", u), &why);
  REQUIRE(d);
  REQUIRE(d->stmts.size() == 1);  // "-m udp" alone still requires UDP
  CHECK(std::get<MatchStmt>(d->stmts[0]).lhs.parts[0].key == Key::meta_l4proto);
}
