// `meta random` comparisons (iptables-translate's form of -m statistic) are random choices:
// kube-proxy's iptables-mode service chain gives one outcome per endpoint, each naming its
// translation (tests/fixtures/nft/meta-random.nft, as the kernel lists it back).
#include <catch2/catch.hpp>

#include "backends/nftables/evaluator.h"
#include "backends/nftables/inspect.h"
#include "fixture_paths.h"

using namespace dpi;

namespace {

const nft::Loaded& meta_random_fixture() {
  static nft::Loaded loaded = [] {
    nft::SourceSpec spec;
    spec.ruleset_file = test::source_path("tests/fixtures/nft/meta-random.json");
    spec.node_file = test::source_path("tests/fixtures/nft/meta-random-node.json");
    auto l = nft::load_source(spec);
    if (!l) FAIL(l.error().message);
    return std::move(*l);
  }();
  return loaded;
}

Flow flow_to(const std::string& src, const std::string& dst) {
  Flow f;
  f.src = *IpAddr::parse(src);
  f.dst = *IpAddr::parse(dst);
  f.l4proto = 6;
  f.dport = 80;
  REQUIRE(normalize(f));
  return f;
}

struct Expected {
  std::string to;  // the outcome's DNAT
  Verdict verdict;
};

struct Case {
  const char* what;
  const char* src;
  const char* dst;
  Verdict verdict;
  std::vector<Expected> outcomes;  // empty: no random choice is left
  const char* nat_to;              // the report's (first outcome's) translation; "" for none
  const char* expression;          // indeterminate_reason expression contains it; "" for none
};

}  // namespace

TEST_CASE("meta random comparisons are explored as random choices", "[unit]") {
  const Verdict A = Verdict::allow, D = Verdict::deny, I = Verdict::indeterminate;
  const std::vector<Case> cases = {
      {"kube-proxy service, three endpoints (1/3, 1/2, last)",
       "172.18.0.9",
       "10.96.0.30",
       A,
       {{"10.1.0.5:8080", A}, {"10.1.0.6:8080", A}, {"10.1.0.7:8080", A}},
       "10.1.0.5:8080",
       ""},
      {"inverted probability (>=): the outcomes disagree",
       "172.18.0.9",
       "10.96.0.41",
       I,
       {{"10.1.0.5:8080", A}, {"10.1.0.9:8080", D}},
       "10.1.0.5:8080",
       "meta random"},
      {"masked equality",
       "172.18.0.9",
       "10.96.0.42",
       A,
       {{"10.1.0.5:8080", A}, {"10.1.0.6:8080", A}},
       "10.1.0.5:8080",
       ""},
      {"unmasked greater-than",
       "172.18.0.9",
       "10.96.0.43",
       A,
       {{"10.1.0.5:8080", A}, {"10.1.0.6:8080", A}},
       "10.1.0.5:8080",
       ""},
      {"set lookup",
       "172.18.0.9",
       "10.96.0.46",
       A,
       {{"10.1.0.5:8080", A}, {"10.1.0.6:8080", A}},
       "10.1.0.5:8080",
       ""},
      // Only one side can happen: no choice, the kernel always goes that way.
      {"probability 1", "172.18.0.9", "10.96.0.44", A, {}, "10.1.0.5:8080", ""},
      {"masked bits can never equal", "172.18.0.9", "10.96.0.45", A, {}, "10.1.0.6:8080", ""},
      // A random value as a map key is not a comparison: never silently a match.
      {"random value as a vmap key",
       "172.18.0.9",
       "10.96.0.47",
       I,
       {},
       "",
       "meta random & 0x00000001 vmap"},
      {"IPv6 service, two endpoints",
       "fd00:18::9",
       "fd00:96::30",
       A,
       {{"[fd00:1::5]:8080", A}, {"[fd00:1::6]:8080", A}},
       "[fd00:1::5]:8080",
       ""},
  };
  for (const auto& c : cases) {
    SECTION(c.what) {
      Flow f = flow_to(c.src, c.dst);
      auto r = nft::inspect(meta_random_fixture(), f);
      REQUIRE(r.ok());
      INFO(c.what);
      CHECK(r->verdict == c.verdict);
      REQUIRE(r->outcomes.size() == c.outcomes.size());
      for (std::size_t i = 0; i < c.outcomes.size(); ++i) {
        const Outcome& o = r->outcomes[i];
        INFO(o.choice);
        REQUIRE(o.nat.size() == 1);
        CHECK(o.nat[0].kind == "dnat");
        CHECK(o.nat[0].to == c.outcomes[i].to);
        CHECK(o.verdict == c.outcomes[i].verdict);
        CHECK(o.choice.find("meta random") != std::string::npos);
      }
      if (*c.nat_to) {
        REQUIRE(r->nat.size() == 1);
        CHECK(r->nat[0].to == c.nat_to);
      } else {
        CHECK(r->nat.empty());
      }
      if (*c.expression) {
        REQUIRE(r->indeterminate_reason);
        CHECK(r->indeterminate_reason->expression.find(c.expression) != std::string::npos);
        // Not understood: the report names the rule that holds it.
        if (c.outcomes.empty()) CHECK(r->indeterminate_reason->rule.nft().handle.has_value());
      } else {
        CHECK_FALSE(r->indeterminate_reason);
      }
      // The verdict-only mode (compare, matrices) explores the same choices.
      nft::Evaluator ev(*meta_random_fixture().ruleset, &*meta_random_fixture().node);
      auto fp = ev.plan(f);
      REQUIRE(fp.ok());
      nft::EvalScratch sc;
      nft::FastVerdict v = ev.verdict(f, *fp, sc);
      CHECK(v.verdict == c.verdict);
      CHECK(v.outcomes == std::max<std::size_t>(1, c.outcomes.size()));
    }
  }
}

TEST_CASE("the three-endpoint service names each choice it took", "[unit]") {
  auto r = nft::inspect(meta_random_fixture(), flow_to("172.18.0.9", "10.96.0.30"));
  REQUIRE(r.ok());
  REQUIRE(r->outcomes.size() == 3);
  CHECK(r->outcomes[0].choice == "meta random & 0x7fffffff < 0x2aaaaaab matched");
  CHECK(r->outcomes[1].choice ==
        "meta random & 0x7fffffff < 0x2aaaaaab not matched, "
        "meta random & 0x7fffffff < 0x40000000 matched");
  CHECK(r->outcomes[2].choice ==
        "meta random & 0x7fffffff < 0x2aaaaaab not matched, "
        "meta random & 0x7fffffff < 0x40000000 not matched");
  // Each outcome's deciding rule and summary are its own.
  for (const auto& o : r->outcomes) CHECK(o.rule.has_value());
}

TEST_CASE("an address with a port is bracketed for IPv6 only", "[unit]") {
  CHECK(addr_port(*IpAddr::parse("10.0.0.1"), 80) == "10.0.0.1:80");
  CHECK(addr_port(*IpAddr::parse("fd00::1"), 443) == "[fd00::1]:443");
  CHECK(addr_port(*IpAddr::parse("::ffff:10.0.0.1"), 1) == "[::ffff:10.0.0.1]:1");
  Flow f = flow_to("fd00:18::9", "fd00:96::30");
  CHECK(describe(f) == "tcp [fd00:18::9]:40000 -> [fd00:96::30]:80");
  f = flow_to("10.0.0.1", "10.0.0.2");
  CHECK(describe(f) == "tcp 10.0.0.1:40000 -> 10.0.0.2:80");
}
