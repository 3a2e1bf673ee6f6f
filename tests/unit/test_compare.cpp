// compare's classification: verdict, meaning (without handles, chains or mark values),
// indeterminate.
#include <catch2/catch.hpp>

#include "core/compare.h"

using namespace dpi;

namespace {

Report allowed_by(const std::string& tier, const std::string& policy, int rule, uint64_t handle) {
  Report r;
  r.verdict = Verdict::allow;
  Stage st;
  st.role = "egress of workload";
  st.endpoint = "cali0de30c97d63";
  st.outcome = "allow";
  st.decision.kind = DecisionKind::policy_rule;
  st.decision.tier = tier;
  st.decision.policy = PolicyName{
      "", "client", policy, true, "cali-po-x",
  };
  st.decision.rule_index = rule;
  st.decision.rule = RuleRef{"ip", "calico", "filter-FORWARD", handle, "", "", {}, {}};
  r.stages.push_back(st);
  r.decided_by = st.decision;
  return r;
}

}  // namespace

TEST_CASE("compare: the same meaning through other chains and handles is the same", "[unit]") {
  Report nft = allowed_by("default", "default.allow-stars", 0, 99);
  Report ipt = allowed_by("default", "default.allow-stars", 0, 44);
  ipt.decided_by.rule->nft().table = "filter";
  ipt.decided_by.rule->nft().chain = "FORWARD";
  CHECK(compare_reports(nft, ipt) == Change::same);
  CHECK(meaning_of(nft) == meaning_of(ipt));
}

TEST_CASE("compare: tier, policy or rule index changes are meaning changes", "[unit]") {
  Report a = allowed_by("default", "default.allow-stars", 0, 99);
  CHECK(compare_reports(a, allowed_by("platform", "default.allow-stars", 0, 99)) ==
        Change::meaning);
  CHECK(compare_reports(a, allowed_by("default", "default.other", 0, 99)) == Change::meaning);
  CHECK(compare_reports(a, allowed_by("default", "default.allow-stars", 1, 99)) == Change::meaning);
}

TEST_CASE("compare: verdict and indeterminate", "[unit]") {
  Report a = allowed_by("default", "p", 0, 1);
  Report d = a;
  d.verdict = Verdict::deny;
  CHECK(compare_reports(a, d) == Change::verdict);
  Report u = a;
  u.verdict = Verdict::indeterminate;
  CHECK(compare_reports(u, a) == Change::indeterminate);
  CHECK(compare_reports(u, d) == Change::indeterminate);
  Comparison c;
  c.flows.push_back({a, d, Change::verdict});
  c.flows.push_back({a, a, Change::same});
  CHECK(c.count(Change::verdict) == 1);
  CHECK(c.count(Change::same) == 1);
  CHECK(render_text(c, false).find("VERDICT") != std::string::npos);
  CHECK(render_text(c, false).find("same\n") == std::string::npos);
}
