// Calico's mark bits read from the rules (tests/fixtures/nft/mark-mask.nft: Felix with the mark
// mask 0xfff00000, one endpoint chain still on the default accept bit).
#include <catch2/catch.hpp>

#include "backends/nftables/inspect.h"
#include "backends/nftables/mark_bits.h"
#include "fixture_paths.h"

using namespace dpi;

namespace {

nft::Loaded load(const std::string& ruleset) {
  nft::SourceSpec spec;
  spec.ruleset_file = test::source_path(ruleset);
  spec.node_file = test::source_path("tests/fixtures/nft/node.json");
  auto l = nft::load_source(spec);
  if (!l) FAIL(l.error().message);
  return std::move(*l);
}

const nft::Rule& rule_by_comment(const nft::Ruleset& rs, const std::string& id) {
  for (const auto& c : rs.chains)
    for (const auto& r : c.rules)
      if (r.comment.rfind(id, 0) == 0) return r;
  FAIL("no rule with comment " << id);
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("mark bits are read from the endpoint and policy chains", "[unit]") {
  auto l = load("tests/fixtures/nft/mark-mask.json");
  const nft::MarkLayout& m = l.ruleset->marks;
  CHECK(m.accept_read);
  CHECK(m.pass_read);
  CHECK(m.drop_read);
  CHECK(m.bits.accept == 0x100000);
  CHECK(m.bits.pass == 0x200000);
  CHECK(m.bits.drop == 0x400000);
  CHECK_FALSE(m.is_default());
  // The one chain on the default accept bit is outvoted and named.
  REQUIRE(m.conflicts.size() == 1);
  CHECK_THAT(m.conflicts[0],
             Catch::Contains("0x10000") && Catch::Contains("filter-cali-fw-cali3333333333c"));
  // Rule indexes count action rules by the bits in use: the allow is the policy's second rule.
  CHECK(rule_by_comment(*l.ruleset, "cali:web-0;").facts.action_ordinal == 0);
  CHECK(rule_by_comment(*l.ruleset, "cali:web-1;").facts.action_ordinal == 1);
}

TEST_CASE("the default layout is read as the default, and nothing to read leaves it assumed",
          "[unit]") {
  auto seed = load("examples/seed/nftables.json");
  CHECK(seed.ruleset->marks.is_default());
  CHECK(seed.ruleset->marks.accept_read);
  CHECK(seed.ruleset->marks.pass_read);
  CHECK(seed.ruleset->marks.conflicts.empty());
  auto exprs = load("tests/fixtures/nft/exprs.json");  // no Calico chains
  CHECK(exprs.ruleset->marks.is_default());
  CHECK_FALSE(exprs.ruleset->marks.accept_read);
}

TEST_CASE("with other mark bits, policy verdicts keep their Calico meaning", "[unit]") {
  auto l = load("tests/fixtures/nft/mark-mask.json");
  auto run = [&](uint16_t dport) {
    Flow f;
    f.src = *IpAddr::parse("10.1.2.3");
    f.dst = *IpAddr::parse("172.18.0.9");
    f.l4proto = 6;
    f.dport = dport;
    REQUIRE(normalize(f));
    auto r = nft::inspect(l, f);
    REQUIRE(r.ok());
    return *r;
  };
  auto deny = run(22);
  CHECK(deny.verdict == Verdict::deny);
  CHECK(deny.decided_by.kind == DecisionKind::policy_rule);
  CHECK(deny.decided_by.tier == "platform");
  CHECK(deny.decided_by.rule_index == 0);
  auto allow = run(80);
  CHECK(allow.verdict == Verdict::allow);
  REQUIRE(allow.stages.size() == 1);
  CHECK(allow.stages[0].decision.kind == DecisionKind::policy_rule);
  CHECK(allow.stages[0].decision.rule_index == 1);
  CHECK(allow.stages[0].decision.tier == "platform");
  auto eot = run(443);
  CHECK(eot.verdict == Verdict::deny);
  CHECK(eot.decided_by.kind == DecisionKind::end_of_tier_deny);
  CHECK(eot.decided_by.tier == "platform");
}
