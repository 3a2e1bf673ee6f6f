// watch's explanation of a packet against a dataplane's answer for its flow: whether the
// explanation agrees with what the kernel did (a kfree_skb drop) must not count an undecided flow
// as agreeing.
#include <string>

#include <catch2/catch.hpp>

#include "core/flow.h"
#include "core/ip.h"
#include "core/watch.h"
#include "tests/fixture_backend/cli_run.h"
#include "tests/fixture_backend/fixture_backend.h"

namespace {

dpi::Flow tcp_udp_flow(const char* dst, const char* proto, uint16_t dport) {
  dpi::Flow f;
  f.src = *dpi::IpAddr::parse("10.65.0.2");
  f.dst = *dpi::IpAddr::parse(dst);
  f.l4proto = std::string(proto) == "udp" ? 17 : 6;
  f.sport = 40000;
  f.dport = dport;
  return f;
}

}  // namespace

TEST_CASE("watch: a kernel drop agrees only with a deny, not with an undecided flow", "[unit]") {
  dpi::fixture::FixtureDataplane backend;
  dpi::SourceRequest req;
  req.options["fixture-dir"] = dpi::fixture::kFixtureDir + "/node";
  req.given.insert("fixture-dir");
  auto loaded = backend.load(req);
  REQUIRE(loaded);
  dpi::WatchExplainer explainer(**loaded);
  struct Row {
    const char* dst;
    const char* proto;
    uint16_t dport;
    bool agrees;
  };
  // The fixture node (node/table.json): allow, deny, indeterminate.
  const Row rows[] = {{"10.65.0.3", "tcp", 80, false},
                      {"10.65.0.5", "tcp", 9001, true},
                      {"10.65.0.4", "udp", 53, false}};
  for (const Row& r : rows) {
    dpi::WatchEvent e;
    e.source = "kfree_skb";
    e.drop_reason = "NETFILTER_DROP";
    e.flow = tcp_udp_flow(r.dst, r.proto, r.dport);
    dpi::WatchLine l = explainer.explain(e);
    INFO(r.dst << " " << r.proto << "/" << r.dport << ": " << l.error);
    REQUIRE(l.report);
    REQUIRE(l.agrees);
    CHECK(*l.agrees == r.agrees);
  }
}
