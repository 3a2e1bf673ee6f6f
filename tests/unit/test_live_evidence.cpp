// trace's comparison of the kernel's path with the prediction, its nft table text, and the
// --counters JSON: pure parts of the live-evidence commands (the kernel side is
// tests/privileged/test_live_evidence.py).
#include <catch2/catch.hpp>

#include "backends/nftables/trace.h"
#include "core/report_json.h"
#include "core/report_text.h"
#include "core/trace.h"

using namespace dpi;

namespace {

NftRuleLocation at(const std::string& chain, std::optional<uint64_t> handle) {
  return NftRuleLocation{"ip", "calico", chain, handle};
}

TraceEvent event(const std::string& kind, NftRuleLocation where, const std::string& verdict) {
  TraceEvent e;
  e.kind = kind;
  e.at = std::move(where);
  e.verdict = verdict;
  return e;
}

Report predicted(Verdict v, NftRuleLocation rule) {
  Report r;
  r.verdict = v;
  RuleRef ref;
  ref.location = std::move(rule);
  r.decided_by.rule = ref;
  return r;
}

KernelPath kernel(Verdict v, std::vector<TraceEvent> events) {
  KernelPath k;
  k.seen = true;
  k.verdict = v;
  k.events = std::move(events);
  return k;
}

}  // namespace

TEST_CASE("trace: differences between the kernel's path and the prediction", "[unit]") {
  const auto drop154 = event("rule", at("fw", 154), "drop");
  const auto jump152 = event("rule", at("fw", 152), "jump");
  const auto policy = event("policy", at("filter-FORWARD", std::nullopt), "drop");
  struct Case {
    const char* what;
    Report pred;
    KernelPath k;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {"same verdict, the predicted rule on the path",
       predicted(Verdict::deny, at("fw", 154)),
       kernel(Verdict::deny, {jump152, drop154}),
       {}},
      {"verdicts differ",
       predicted(Verdict::allow, at("fw", 152)),
       kernel(Verdict::deny, {jump152, drop154}),
       {"verdict: kernel deny, prediction allow"}},
      {"the predicted rule was never met",
       predicted(Verdict::deny, at("fw", 160)),
       kernel(Verdict::deny, {jump152, drop154}),
       {"the packet never matched the predicted deciding rule ip calico fw handle 160"}},
      {"a same-numbered handle in another chain is not the rule",
       predicted(Verdict::deny, at("other", 154)),
       kernel(Verdict::deny, {drop154}),
       {"the packet never matched the predicted deciding rule ip calico other handle 154"}},
      {"a base chain's policy, applied",
       predicted(Verdict::deny, at("filter-FORWARD", std::nullopt)),
       kernel(Verdict::deny, {policy}),
       {}},
      {"a base chain's policy, not applied",
       predicted(Verdict::deny, at("filter-FORWARD", std::nullopt)),
       kernel(Verdict::deny, {drop154}),
       {"the kernel never applied the policy of chain ip calico filter-FORWARD (predicted)"}},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    CHECK(trace_differences(c.pred, c.k) == c.want);
  }
  KernelPath none;
  CHECK(trace_differences(predicted(Verdict::deny, at("fw", 154)), none).empty());
  CHECK(trace_json(predicted(Verdict::deny, at("fw", 154)), none, {})["agrees"] == false);
}

TEST_CASE("trace: the temporary table matches only what was pinned down", "[unit]") {
  TraceRequest t;
  t.flow.src = *IpAddr::parse("10.65.0.2");
  t.flow.dst = *IpAddr::parse("10.65.0.5");
  t.flow.l4proto = 6;
  t.flow.sport = 40000;
  t.flow.dport = 9001;
  std::string text = nft::trace_table_text("dpinspect_trace_1", t);
  CHECK(text.find("table ip dpinspect_trace_1 {") != std::string::npos);
  CHECK(text.find("flags owner") != std::string::npos);
  CHECK(text.find("priority -2147483648") != std::string::npos);
  CHECK(text.find("ip saddr 10.65.0.2 ip daddr 10.65.0.5 tcp dport 9001 meta nftrace set 1") !=
        std::string::npos);
  CHECK(text.find("sport") == std::string::npos);  // a defaulted source port is not traced
  t.match_sport = true;
  CHECK(nft::trace_table_text("x", t).find("tcp sport 40000 tcp dport 9001") != std::string::npos);

  TraceRequest icmp;
  icmp.flow.src = *IpAddr::parse("fd00::1");
  icmp.flow.dst = *IpAddr::parse("fd00::2");
  icmp.flow.l4proto = 58;
  icmp.flow.icmp_type = 128;
  CHECK(nft::trace_table_text("x", icmp).find("table ip6 x") != std::string::npos);
  CHECK(nft::trace_table_text("x", icmp).find("meta l4proto 58 meta nftrace") != std::string::npos);
  icmp.match_icmp = true;
  CHECK(nft::trace_table_text("x", icmp).find("icmpv6 type 128 meta nftrace") != std::string::npos);
}

TEST_CASE("inspect --counters: the JSON counters object", "[unit]") {
  Report r = predicted(Verdict::deny, at("fw", 154));
  CHECK_FALSE(to_json(r).contains("counters"));  // other reports are unchanged
  CounterDelta d;
  d.rule = *r.decided_by.rule;
  d.interval_s = 2;
  d.packets_before = 3;
  d.bytes_before = 180;
  d.packets_after = 10;
  d.bytes_after = 600;
  r.counters = d;
  auto j = to_json(r)["counters"];
  CHECK(j["delta"] == nlohmann::json{{"packets", 7}, {"bytes", 420}});
  CHECK(j["note"].is_null());
  CHECK(j["related"] == nlohmann::json::array());
  CHECK(j["rule"]["handle"] == 154);
  d.packets_after = 1;  // reset during the interval: no wrapped-around difference
  r.counters = d;
  CHECK(to_json(r)["counters"]["delta"]["packets"].is_null());
  CounterDelta none;
  none.note = "the deciding rule has no counter";
  r.counters = none;
  CHECK(to_json(r)["counters"]["delta"].is_null());
  CHECK(to_json(r)["counters"]["note"] == "the deciding rule has no counter");
}

TEST_CASE("inspect --counters: a packets-only counter (eBPF) has null bytes", "[unit]") {
  Report r;
  r.verdict = Verdict::deny;
  BpfLocation b;
  b.prog_id = 12;
  b.prog_name = "p4E_cali1";
  b.attach = "tc ingress cali1";
  b.calico_rule_id = "0x1573250364eb46b5";
  r.decided_by.rule = RuleRef(b, "prog 12", "");
  CounterDelta d;
  d.rule = *r.decided_by.rule;
  d.interval_s = 2;
  d.packets_before = 4;
  d.packets_after = 9;
  d.related = {{"tc ingress cali1 DROPPED_BY_POLICY", 10, 15},
               {"tc ingress cali1 ACCEPTED_BY_POLICY", 7, std::nullopt}};
  r.counters = d;
  auto j = to_json(r)["counters"];
  CHECK(j["before"] == nlohmann::json{{"packets", 4}, {"bytes", nullptr}});
  CHECK(j["delta"] == nlohmann::json{{"packets", 5}, {"bytes", nullptr}});
  CHECK(j["rule"]["calico_rule_id"] == "0x1573250364eb46b5");
  CHECK(j["related"] == nlohmann::json::parse(R"([
    {"counter": "tc ingress cali1 DROPPED_BY_POLICY", "before": 10, "after": 15, "delta": 5},
    {"counter": "tc ingress cali1 ACCEPTED_BY_POLICY", "before": 7, "after": null,
     "delta": null}])"));
  std::string text = render_text(r, TextOptions{});
  CHECK(text.find("counter:  +5 packets in 2 s (bpf prog 12 p4E_cali1 (tc ingress cali1) rule "
                  "0x1573250364eb46b5; now 9 packets)\n"
                  "            tc ingress cali1 DROPPED_BY_POLICY +5 (now 15)\n") !=
        std::string::npos);
  CHECK(text.find("ACCEPTED_BY_POLICY") == std::string::npos);  // no second read: no line
  CHECK(text.find("bytes") == std::string::npos);
}

TEST_CASE("trace: the kernel's verdict from a packet's events", "[unit]") {
  struct Case {
    const char* name;
    std::vector<TraceEvent> events;
    bool lost;
    Verdict verdict;
    std::optional<std::size_t> deciding;
    const char* note;  // in the notes when set
  };
  const TraceEvent jump = event("rule", at("filter-FORWARD", 10), "jump");
  const TraceEvent accept = event("rule", at("filter-cali-tw-x", 20), "accept");
  const TraceEvent policy_accept = event("policy", at("filter-FORWARD", std::nullopt), "accept");
  const TraceEvent drop = event("rule", at("filter-cali-fw-x", 30), "drop");
  const TraceEvent queue = event("rule", at("filter-cali-fw-x", 31), "queue");
  const TraceEvent stolen = event("rule", at("filter-cali-fw-x", 32), "stolen");
  const Case cases[] = {
      {"no event: no packet", {}, false, Verdict::indeterminate, std::nullopt, nullptr},
      {"a drop decides", {jump, drop, policy_accept}, false, Verdict::deny, 1, nullptr},
      {"accepted: the last accept",
       {jump, accept, policy_accept},
       false,
       Verdict::allow,
       2,
       nullptr},
      {"queued: not followed", {jump, queue}, false, Verdict::indeterminate, 1, "\"queue\""},
      {"stolen: not followed",
       {jump, stolen, accept},
       false,
       Verdict::indeterminate,
       1,
       "\"stolen\""},
      {"lost events: incomplete",
       {jump, accept},
       true,
       Verdict::indeterminate,
       std::nullopt,
       "were lost"},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      KernelPath k;
      k.events = c.events;
      nft::conclude_path(k, c.lost);
      CHECK(k.seen == !c.events.empty());
      CHECK(k.verdict == c.verdict);
      CHECK(k.deciding == c.deciding);
      if (c.note) {
        REQUIRE(k.notes.size() == 1);
        CHECK(k.notes[0].find(c.note) != std::string::npos);
      } else {
        CHECK(k.notes.empty());
      }
    }
  }
}
