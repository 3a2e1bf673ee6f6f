// --dataplane auto on a node with two dataplane layers (an eBPF node keeps nftables rules): each
// layer judges the flow and core/layers.h combines the answers (docs/design.md, "More than one
// dataplane on a node"). Two fixture backends are the two layers: fixture-tc (met first) and
// fixture (netfilter).
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli/run.h"
#include "core/dataplane_registry.h"
#include "core/layers.h"
#include "core/report_json.h"
#include "core/report_text.h"
#include "tests/fixture_backend/cli_run.h"
#include "tests/fixture_backend/fixture_backend.h"

namespace {

using dpi::fixture::FixtureDataplane;

const FixtureDataplane kNft("fixture");
const FixtureDataplane kTc("fixture-tc", dpi::Layer::tc);
const dpi::DataplaneRegistry kLayers({&kNft, &kTc});
const dpi::DataplaneRegistry kNftOnly({&kNft});

using dpi::fixture::CliOutput;
using dpi::fixture::kFixtureDir;

CliOutput inspect(const dpi::DataplaneRegistry& reg, const std::string& dst,
                  const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"inspect",
                                   "--fixture-dir",
                                   kFixtureDir + "/layers-nft",
                                   "--src",
                                   "10.65.1.1",
                                   "--dst",
                                   dst,
                                   "--proto",
                                   "tcp",
                                   "--dport",
                                   "80"};
  if (&reg == &kLayers) {
    args.emplace_back("--fixture-tc-dir");
    args.push_back(kFixtureDir + "/layers-tc");
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return dpi::fixture::run_cli(reg, args);
}

}  // namespace

TEST_CASE("auto with two layers: verdict, deciding layer, exit code", "[unit]") {
  struct Case {
    const char* name;
    const char* dst;
    const char* verdict;
    int code;
    bool tc_applies;
    bool tc_decided, nft_decided;
    const char* rule_or_why;  // in the report body: the deciding layer's rule or reason
  };
  const Case cases[] = {
      {"only netfilter applies (no local workload), it denies", "10.65.1.2", "deny", 1, false,
       false, true, "host-firewall-drop"},
      {"only netfilter applies, it allows", "10.65.1.9", "allow", 0, false, false, true,
       "nft-allow"},
      {"both apply, both allow: each decided", "10.65.1.3", "allow", 0, true, true, true,
       "tc-allow"},
      {"both apply, netfilter denies", "10.65.1.4", "deny", 1, true, false, true, "nft-deny"},
      {"both apply, tc denies", "10.65.1.5", "deny", 1, true, true, false, "tc-deny"},
      // The fixture's rules show no hook, so which denial the packet meets first is unknown.
      {"both deny, order unknown: both named", "10.65.1.6", "deny", 1, true, true, true, "tc-deny"},
      {"tc indeterminate, netfilter allows: indeterminate", "10.65.1.7", "indeterminate", 2, true,
       true, false, "the fixture cannot run helper 999"},
      {"tc indeterminate, netfilter denies: denied", "10.65.1.8", "deny", 1, true, false, true,
       "nft-deny"},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      CliOutput o = inspect(kLayers, c.dst, {"-o", "json"});
      INFO("stdout: " << o.out);
      INFO("stderr: " << o.err);
      CHECK(o.code == c.code);
      CHECK(o.err.empty());
      auto j = nlohmann::json::parse(o.out);
      CHECK(j["verdict"] == c.verdict);
      CHECK(o.out.find(c.rule_or_why) != std::string::npos);
      REQUIRE(j["layers"].size() == 2);
      const auto& tc = j["layers"][0];
      const auto& nft = j["layers"][1];
      CHECK(tc["dataplane"] == "fixture-tc");
      CHECK(tc["layer"] == "tc");
      CHECK(nft["dataplane"] == "fixture");
      CHECK(nft["layer"] == "netfilter");
      CHECK(tc["applies"] == c.tc_applies);
      CHECK(nft["applies"] == true);
      CHECK(tc["decided"] == c.tc_decided);
      CHECK(nft["decided"] == c.nft_decided);
      // The report body is the deciding layer's.
      CHECK(j["dataplane"]["kind"] == (c.tc_decided ? "fixture-tc" : "fixture"));

      CliOutput t = inspect(kLayers, c.dst, {});
      CHECK(t.code == c.code);
      CHECK(t.out.find("  layers (packet order):\n") != std::string::npos);
      CHECK(t.out.find("    fixture-tc (tc)") != std::string::npos);
      CHECK(t.out.find("    fixture (netfilter)") != std::string::npos);
      if (!c.tc_applies) CHECK(t.out.find("does not apply") != std::string::npos);
    }
  }
}

TEST_CASE("one layer loaded: no layers in the report", "[unit]") {
  CliOutput j = inspect(kNftOnly, "10.65.1.4", {"-o", "json"});
  CHECK(j.code == 1);
  CHECK_FALSE(nlohmann::json::parse(j.out).contains("layers"));
  CliOutput t = inspect(kNftOnly, "10.65.1.4", {});
  CHECK(t.code == 1);
  CHECK(t.out.find("layers (packet order)") == std::string::npos);
}

namespace {

// A tc layer's denial at a hook: "tc ingress" runs before netfilter, "tc egress" after.
dpi::LayerAnswer tc_deny_at(const std::string& hook) {
  dpi::LayerAnswer a{"ebpf", dpi::Layer::tc, {}};
  a.report.verdict = dpi::Verdict::deny;
  a.report.dataplane.kind = "ebpf";
  dpi::BpfLocation at;
  at.attach = hook + " cali1234567890a";
  a.report.decided_by.rule = dpi::RuleRef(at, "", "");
  a.report.decided_by.summary = "denied at " + hook;
  return a;
}

dpi::LayerAnswer nft(dpi::Verdict v) {
  dpi::LayerAnswer a{"nftables", dpi::Layer::netfilter, {}};
  a.report.verdict = v;
  a.report.dataplane.kind = "nftables";
  a.report.decided_by.summary = "nftables said so";
  return a;
}

dpi::LayerAnswer outside(const std::string& name, dpi::Layer l) {
  dpi::LayerAnswer a{name, l, {}};
  a.report.dataplane.kind = name;
  a.report.indeterminate_reason = dpi::IndeterminateReason{
      dpi::RuleRef{}, "route",
      std::string("neither a nor b is a local workload: the flow ") + dpi::kOutsideLayerScope};
  return a;
}

}  // namespace

TEST_CASE("combine_layers: packet order among denials; no layer applying", "[unit]") {
  SECTION("a denial at tc ingress is met before netfilter's") {
    auto r = dpi::combine_layers({tc_deny_at("tc ingress"), nft(dpi::Verdict::deny)});
    CHECK(r.verdict == dpi::Verdict::deny);
    CHECK(r.dataplane.kind == "ebpf");
    REQUIRE(r.layers.size() == 2);
    CHECK(r.layers[0].decided);
    CHECK_FALSE(r.layers[1].decided);
    CHECK(r.layers[0].why == "denied at tc ingress");
  }
  SECTION("a denial at tc egress comes after netfilter's") {
    auto r = dpi::combine_layers({tc_deny_at("tc egress"), nft(dpi::Verdict::deny)});
    CHECK(r.verdict == dpi::Verdict::deny);
    CHECK(r.dataplane.kind == "nftables");
    REQUIRE(r.layers.size() == 2);
    CHECK_FALSE(r.layers[0].decided);
    CHECK(r.layers[1].decided);
  }
  SECTION("no layer applies: indeterminate, the first layer's reason, none decided") {
    auto r = dpi::combine_layers(
        {outside("ebpf", dpi::Layer::tc), outside("other", dpi::Layer::netfilter)});
    CHECK(r.verdict == dpi::Verdict::indeterminate);
    CHECK(r.dataplane.kind == "ebpf");
    REQUIRE(r.layers.size() == 2);
    CHECK_FALSE(r.layers[0].applies);
    CHECK_FALSE(r.layers[1].applies);
    CHECK_FALSE(r.layers[0].decided);
    CHECK_FALSE(r.layers[1].decided);
    CHECK(dpi::exit_code_for(r.verdict) == 2);
  }
  SECTION("one answer is returned unchanged") {
    auto r = dpi::combine_layers({nft(dpi::Verdict::allow)});
    CHECK(r.layers.empty());
    CHECK(dpi::to_json(r).contains("layers") == false);
    CHECK(dpi::render_text(r).find("layers") == std::string::npos);
  }
}
