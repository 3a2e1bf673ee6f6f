// compare's classification: verdict, meaning (without handles, chains or mark values),
// indeterminate.
#include <catch2/catch.hpp>

#include "core/compare.h"
#include "core/compare_html.h"
#include "core/compare_markdown.h"

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

TEST_CASE("compare: outcomes split same by its verdict", "[unit]") {
  Report a = allowed_by("default", "p", 0, 1);
  Report d = a;
  d.verdict = Verdict::deny;
  Report u = a;
  u.verdict = Verdict::indeterminate;
  struct Case {
    Report before, after;
    FlowOutcome want;
  };
  const Case cases[] = {
      {a, a, FlowOutcome::same_allow},
      {d, d, FlowOutcome::same_deny},
      {a, d, FlowOutcome::verdict},
      {d, a, FlowOutcome::verdict},
      {a, allowed_by("platform", "p", 0, 1), FlowOutcome::meaning},
      {u, a, FlowOutcome::indeterminate},
  };
  Comparison c;
  for (const auto& k : cases) {
    FlowComparison f{k.before, k.after, compare_reports(k.before, k.after)};
    CHECK(outcome_of(f) == k.want);
    c.flows.push_back(f);
  }
  CHECK(c.count(FlowOutcome::verdict) == 2);
  CHECK(c.count(FlowOutcome::same_deny) == 1);
  const std::string md = render_markdown(c, false);
  CHECK(md.find("| verdict changed | 2 |") != std::string::npos);
  CHECK(md.find("| all flows | 6 |") != std::string::npos);
  CHECK(md.find("## Changed flows (4)") != std::string::npos);
  CHECK(render_markdown(c, true).find("## Flows (6)") != std::string::npos);
}

// Names, rule texts and summaries come from the inputs (a kubectl file, a ruleset): on a page or in
// Markdown they must stay text.
TEST_CASE("compare: html and markdown escape what the inputs say", "[unit]") {
  Report a = allowed_by("default", "p", 0, 1);
  a.flow.src = *IpAddr::parse("10.65.0.2");
  a.flow.dst = *IpAddr::parse("10.65.0.3");
  a.flow.dport = 80;
  a.src_name = "ns/<img src=x onerror=alert(1)>";
  a.dst_name = "ns/\"quoted\" & 'single'";
  a.decided_by.summary = "allowed by *policy* [x](y) `z` | a_b <b>";
  a.decided_by.rule->text = "meta mark & 0x1 == 0x1 </script><script>alert(2)</script>";
  Report d = a;
  d.verdict = Verdict::deny;
  Comparison c;
  c.before_source = "file <before>";
  c.after_source = "file a&b";
  c.flows.push_back({a, d, Change::verdict});

  const std::string html = render_html(c);
  for (const char* raw : {"<img", "</script><script>alert", "<b>", "<before>", "\"quoted\""})
    CHECK(html.find(raw) == std::string::npos);
  CHECK(html.find("ns/&lt;img src=x onerror=alert(1)&gt;") != std::string::npos);
  CHECK(html.find("&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("ns/&quot;quoted&quot; &amp; &#39;single&#39;") != std::string::npos);
  CHECK(html.find("file a&amp;b") != std::string::npos);
  CHECK(html.find("data-outcome=\"verdict\" data-src=\"10.65.0.2\" data-dst=\"10.65.0.3\" "
                  "data-port=\"tcp/80\" data-flows=\"0\"") != std::string::npos);
  // One script only: the page's own.
  CHECK(html.find("<script>") == html.rfind("<script>"));

  const std::string md = render_markdown(c, false);
  CHECK(md.find("ns/\\<img src=x onerror=alert(1)>") != std::string::npos);
  CHECK(md.find("allowed by \\*policy\\* \\[x\\](y) \\`z\\` \\| a\\_b \\<b>") != std::string::npos);
  CHECK(md.find("file \\<before>") != std::string::npos);
}
