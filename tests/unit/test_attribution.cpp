// Calico decision kinds from recorded paths, shaped as Felix renders them (the backends' own
// tests check the paths against the kernel; these check the meaning given to them).
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>

#include "backends/nftables/calico_positions.h"

using namespace dpi;

namespace {

struct PathBuilder {
  Report r;
  int next_inv = 0;

  int enter(int parent) { return parent < 0 ? next_inv++ : next_inv++; }

  PathStep& add(int inv, int parent, std::string table, std::string chain, uint64_t handle,
                std::string action, std::string target = "", std::string comment = "") {
    PathStep s;
    s.hook = "forward";
    s.invocation = inv;
    s.parent_invocation = parent;
    s.rule = RuleRef{"ip", table, chain, handle, "", comment, 0, 0};
    s.facts.action = action;
    s.facts.target = target;
    r.path.push_back(s);
    return r.path.back();
  }

  Report& decide(Verdict v, std::optional<std::size_t> step) {
    r.verdict = v;
    if (step) r.decided_by.rule = r.path[*step].rule;
    calico::attribute(r, step);
    return r;
  }
};

// An iptables-nft workload egress chain as the seed shows it: no comments survive, the end of tier
// is the pass-bit-clear NFLOG + drop pair.
PathBuilder seed_egress_deny() {
  PathBuilder b;
  b.add(0, -1, "filter", "FORWARD", 1, "jump", "cali-FORWARD");
  b.add(1, 0, "filter", "cali-FORWARD", 2, "jump", "cali-from-wl-dispatch");
  b.add(2, 1, "filter", "cali-from-wl-dispatch", 3, "goto", "cali-fw-cali0cdd47bbdcb");
  b.add(3, 2, "filter", "cali-fw-cali0cdd47bbdcb", 10, "continue").facts.clears_mark_bits = 0x30000;
  b.add(3, 2, "filter", "cali-fw-cali0cdd47bbdcb", 11, "continue").facts.clears_mark_bits = 0x20000;
  b.add(3, 2, "filter", "cali-fw-cali0cdd47bbdcb", 12, "jump", "cali-po-_hashedname12345678");
  auto& log = b.add(3, 2, "filter", "cali-fw-cali0cdd47bbdcb", 14, "continue");
  log.facts.log_prefix = "DPE|platform";
  log.facts.log_group = 2;
  log.facts.tests_mark_clear = 0x20000;
  b.add(3, 2, "filter", "cali-fw-cali0cdd47bbdcb", 15, "drop").facts.tests_mark_clear = 0x20000;
  return b;
}

}  // namespace

TEST_CASE("end-of-tier implicit deny named by its NFLOG prefix", "[unit]") {
  auto b = seed_egress_deny();
  Report& r = b.decide(Verdict::deny, b.r.path.size() - 1);
  CHECK(r.decided_by.kind == DecisionKind::end_of_tier_deny);
  CHECK(r.decided_by.tier == "platform");
  CHECK(r.decided_by.direction == "egress");
  CHECK(r.decided_by.summary ==
        "end-of-tier implicit deny in tier platform, egress of workload on cali0cdd47bbdcb "
        "(NFLOG group 2 prefix DPE|platform)");
  CHECK(r.decided_by.rule->nft().handle == 15u);
  REQUIRE(r.stages.size() == 1);
  CHECK(r.stages[0].outcome == "deny");
}

TEST_CASE("end-of-tier deny without names is counted, and says so", "[unit]") {
  auto b = seed_egress_deny();
  b.r.path[6].facts.log_prefix.reset();
  Report& r = b.decide(Verdict::deny, b.r.path.size() - 1);
  CHECK(r.decided_by.kind == DecisionKind::end_of_tier_deny);
  CHECK(r.decided_by.tier == "#1");
  REQUIRE_FALSE(r.decided_by.notes.empty());
  CHECK(r.decided_by.notes[0].find("not in the ruleset") != std::string::npos);
}

TEST_CASE("explicit deny rule of a policy (v3.30 drop mark)", "[unit]") {
  PathBuilder b;
  b.add(0, -1, "calico", "filter-cali-from-wl-dispatch", 1, "goto", "filter-cali-fw-cali1");
  b.add(1, 0, "calico", "filter-cali-fw-cali1", 2, "jump", "filter-cali-po-np/ns1/deny-db",
        "cali:aaa; Start of tier default");
  auto& mark = b.add(2, 1, "calico", "filter-cali-po-np/ns1/deny-db", 7, "continue");
  mark.facts.sets_mark_bits = 0x40000;
  mark.facts.action_ordinal = 1;
  b.add(2, 1, "calico", "filter-cali-po-np/ns1/deny-db", 8, "drop").facts.tests_mark_set = 0x40000;
  Report& r = b.decide(Verdict::deny, 3);
  CHECK(r.decided_by.kind == DecisionKind::policy_rule);
  CHECK(r.decided_by.action == "deny");
  REQUIRE(r.decided_by.policy);
  CHECK(r.decided_by.policy->display() == "np/ns1/deny-db");
  CHECK(r.decided_by.rule_index == 1);
  CHECK_FALSE(r.decided_by.rule_index_exact);
  CHECK(r.decided_by.rule->nft().handle == 8u);
  CHECK(r.decided_by.summary.find("denied by rule 1 of policy np/ns1/deny-db") == 0);
}

TEST_CASE("allowed: both endpoint stages explained, FORWARD accept is the deciding rule",
          "[unit]") {
  PathBuilder b;
  b.add(0, -1, "calico", "filter-FORWARD", 1, "jump", "filter-cali-FORWARD");
  b.add(1, 0, "calico", "filter-cali-FORWARD", 2, "jump", "filter-cali-from-wl-dispatch");
  b.add(2, 1, "calico", "filter-cali-from-wl-dispatch", 3, "goto", "filter-cali-fw-cali1");
  auto& tier = b.add(3, 1, "calico", "filter-cali-fw-cali1", 4, "continue", "",
                     "cali:x; Start of tier default");
  tier.facts.clears_mark_bits = 0x20000;
  b.add(3, 1, "calico", "filter-cali-fw-cali1", 5, "jump",
        "filter-cali-po-default/client/default.allow-stars");
  auto& allow =
      b.add(4, 3, "calico", "filter-cali-po-default/client/default.allow-stars", 6, "continue");
  allow.facts.sets_mark_bits = 0x10000;
  allow.facts.action_ordinal = 0;
  auto& log =
      b.add(4, 3, "calico", "filter-cali-po-default/client/default.allow-stars", 7, "continue");
  log.facts.log_prefix = "APE0|default.allow-stars";
  b.add(3, 1, "calico", "filter-cali-fw-cali1", 8, "return").facts.tests_mark_set = 0x10000;
  b.add(1, 0, "calico", "filter-cali-FORWARD", 9, "jump", "filter-cali-to-wl-dispatch");
  b.add(5, 1, "calico", "filter-cali-to-wl-dispatch", 10, "goto", "filter-cali-tw-cali2");
  b.add(6, 1, "calico", "filter-cali-tw-cali2", 11, "jump", "filter-cali-pri-kns.stars");
  b.add(7, 6, "calico", "filter-cali-pri-kns.stars", 12, "continue").facts.sets_mark_bits = 0x10000;
  b.add(6, 1, "calico", "filter-cali-tw-cali2", 13, "return").facts.tests_mark_set = 0x10000;
  b.add(0, -1, "calico", "filter-FORWARD", 14, "accept").facts.tests_mark_set = 0x10000;
  Report& r = b.decide(Verdict::allow, b.r.path.size() - 1);
  REQUIRE(r.stages.size() == 2);
  CHECK(r.stages[0].outcome == "allow");
  CHECK(r.stages[0].decision.kind == DecisionKind::policy_rule);
  CHECK(r.stages[0].decision.rule_index == 0);
  CHECK(r.stages[0].decision.rule_index_exact);
  CHECK(r.stages[0].decision.tier == "default");
  CHECK(r.stages[1].decision.kind == DecisionKind::profile_rule);
  CHECK(r.decided_by.rule->nft().handle == 14u);
  CHECK(r.decided_by.summary.find("egress of workload on cali1") != std::string::npos);
  CHECK(r.decided_by.summary.find("profile kns.stars") != std::string::npos);
}

TEST_CASE("conntrack, admin down, encapsulation and profile drops in an endpoint chain", "[unit]") {
  struct Case {
    const char* name;
    std::function<void(RuleFacts&, std::string&)> shape;
    std::string action;
    DecisionKind want;
    Verdict verdict;
  };
  std::vector<Case> cases = {
      {"invalid",
       [](RuleFacts& f, std::string&) {
         f.tests_ct_invalid = true;
         f.position = 1;
       },
       "drop", DecisionKind::ct_invalid, Verdict::deny},
      {"established", [](RuleFacts& f, std::string&) { f.tests_ct_established = true; }, "accept",
       DecisionKind::ct_established, Verdict::allow},
      {"admin",
       [](RuleFacts& f, std::string& c) {
         f.unconditional = true;
         c = "cali:q; Endpoint admin disabled";
       },
       "drop", DecisionKind::admin_down, Verdict::deny},
      {"encap",
       [](RuleFacts& f, std::string& c) {
         f.position = 3;
         c = "cali:q; Drop VXLAN encapped packets originating in workloads";
       },
       "drop", DecisionKind::encap_from_workload, Verdict::deny},
      {"profiles",
       [](RuleFacts& f, std::string& c) {
         f.unconditional = true;
         f.position = 9;
         c = "cali:q; Drop if no profiles matched";
       },
       "drop", DecisionKind::no_profile_matched, Verdict::deny},
  };
  for (auto& c : cases) {
    SECTION(c.name) {
      PathBuilder b;
      b.add(0, -1, "filter", "cali-to-wl-dispatch", 1, "goto", "cali-tw-cali9");
      std::string comment;
      RuleFacts f;
      c.shape(f, comment);
      auto& s = b.add(1, 0, "filter", "cali-tw-cali9", 2, c.action, "", comment);
      f.action = c.action;
      s.facts = f;
      Report& r = b.decide(c.verdict, 1);
      CHECK(r.decided_by.kind == c.want);
      CHECK(r.decided_by.direction == "ingress");
    }
  }
}

TEST_CASE("drops outside endpoint chains", "[unit]") {
  auto one = [](std::string table, std::string chain, std::string text, bool unconditional) {
    PathBuilder b;
    auto& s = b.add(0, -1, table, chain, 5, "drop");
    s.rule.text = text;
    s.facts.unconditional = unconditional;
    return b.decide(Verdict::deny, 0).decided_by.kind;
  };
  CHECK(one("filter", "cali-from-wl-dispatch", "drop", true) == DecisionKind::unknown_interface);
  CHECK(one("calico", "filter-cali-to-wl-dispatch", "drop", true) ==
        DecisionKind::unknown_interface);
  CHECK(one("calico", "raw-cali-PREROUTING",
            "meta mark & 0x00080000 == 0x00080000 fib saddr . mark . iif oif 0 drop",
            false) == DecisionKind::rpf_failure);
  CHECK(one("filter", "cali-wl-to-host", "drop", true) == DecisionKind::default_endpoint_to_host);
  CHECK(one("filter", "cali-cidr-block", "ip daddr 10.96.0.0/12 drop", false) ==
        DecisionKind::service_loop_prevention);
  CHECK(one("filter", "HOST-FIREWALL", "tcp dport 22 drop", false) == DecisionKind::non_calico);
}

TEST_CASE("a base chain's policy decided", "[unit]") {
  PathBuilder b;
  b.add(0, -1, "filter", "OUTPUT", 1, "jump", "cali-OUTPUT");
  auto& ret = b.add(1, 0, "filter", "cali-OUTPUT", 2, "return");
  ret.rule.text = "oifname \"cali*\" return";
  b.r.decided_by.rule =
      RuleRef{"ip", "filter", "OUTPUT", std::nullopt, "policy accept", "", {}, {}};
  b.r.verdict = Verdict::allow;
  calico::attribute(b.r, std::nullopt);
  CHECK(b.r.decided_by.kind == DecisionKind::chain_policy);
  CHECK_FALSE(b.r.decided_by.rule->nft().handle);
  REQUIRE_FALSE(b.r.decided_by.notes.empty());
  CHECK(b.r.decided_by.notes[0].find("does not police") != std::string::npos);
}

namespace {

// Host-endpoint paths as Felix renders them (endpoints.go HostEndpointTo*Chains): the same chain
// names in raw (untracked), mangle (pre-DNAT) and filter (host and forwarded traffic), told apart
// by the native layer prefix or by the iptables table.
struct HepCase {
  const char* name;
  std::function<void(PathBuilder&)> build;
  Verdict verdict;
  DecisionKind kind;
  std::string summary;
  std::vector<std::tuple<std::string, std::string, std::string>> stages;  // role, outcome, endpoint
};

void hep_dispatch(PathBuilder& b, int inv, const std::string& table, const std::string& base,
                  const std::string& chain) {
  b.add(inv, -1, table, base, 1, "jump", "cali-PREROUTING");
  b.add(inv + 1, inv, table, "cali-PREROUTING", 2, "jump", "cali-from-host-endpoint");
  b.add(inv + 2, inv + 1, table, "cali-from-host-endpoint", 3, "goto", chain);
}

}  // namespace

TEST_CASE("host endpoint chains: untracked, pre-DNAT, forwarded, failsafe", "[unit]") {
  std::vector<HepCase> cases = {
      {"iptables-nft raw: failsafe port accepts",
       [](PathBuilder& b) {
         hep_dispatch(b, 0, "raw", "PREROUTING", "cali-fh-eth0");
         b.add(3, 2, "raw", "cali-fh-eth0", 4, "jump", "cali-failsafe-in");
         auto& s = b.add(4, 3, "raw", "cali-failsafe-in", 5, "accept");
         s.rule.text = "meta l4proto tcp tcp dport 22 counter packets 3 bytes 180 accept";
       },
       Verdict::allow,
       DecisionKind::failsafe,
       "allowed by failsafe rule in cali-failsafe-in (meta l4proto tcp tcp dport 22), untracked "
       "ingress of host endpoint on eth0",
       {{"untracked ingress of host endpoint", "allow", "eth0"}}},
      {"native: pre-DNAT policy denies in mangle",
       [](PathBuilder& b) {
         hep_dispatch(b, 0, "calico", "mangle-PREROUTING", "mangle-cali-fh-eth0");
         b.add(3, 2, "calico", "mangle-cali-fh-eth0", 4, "continue").facts.clears_mark_bits =
             0x20000;
         b.add(3, 2, "calico", "mangle-cali-fh-eth0", 5, "jump", "mangle-cali-pi-gnp/block");
         b.add(4, 3, "calico", "mangle-cali-pi-gnp/block", 6, "continue").facts.sets_mark_bits =
             0x40000;
         b.add(4, 3, "calico", "mangle-cali-pi-gnp/block", 7, "drop").facts.tests_mark_set =
             0x40000;
       },
       Verdict::deny,
       DecisionKind::policy_rule,
       "denied by policy gnp/block in tier #1, pre-DNAT ingress of host endpoint on eth0",
       {{"pre-DNAT ingress of host endpoint", "deny", "eth0"}}},
      {"native: untracked chain passes, forwarded chain's end of tier denies",
       [](PathBuilder& b) {
         hep_dispatch(b, 0, "calico", "raw-PREROUTING", "raw-cali-fh-eth0");
         b.add(3, 2, "calico", "raw-cali-fh-eth0", 4, "continue").facts.clears_mark_bits = 0x20000;
         b.add(3, 2, "calico", "raw-cali-fh-eth0", 5, "jump", "raw-cali-pi-gnp/untracked");
         b.add(3, 2, "calico", "raw-cali-fh-eth0", 6, "return").facts.tests_mark_set = 0x10000;
         b.add(5, -1, "calico", "filter-FORWARD", 7, "jump", "filter-cali-FORWARD");
         b.add(6, 5, "calico", "filter-cali-FORWARD", 8, "jump", "filter-cali-from-hep-forward");
         b.add(7, 6, "calico", "filter-cali-from-hep-forward", 9, "goto", "filter-cali-fhfw-eth0");
         b.add(8, 7, "calico", "filter-cali-fhfw-eth0", 10, "continue").facts.clears_mark_bits =
             0x20000;
         b.add(8, 7, "calico", "filter-cali-fhfw-eth0", 11, "drop", "",
               "cali:x; End of tier hosts. Drop if no policies passed packet")
             .facts.tests_mark_clear = 0x20000;
       },
       Verdict::deny,
       DecisionKind::end_of_tier_deny,
       "end-of-tier implicit deny in tier hosts, forwarded ingress of host endpoint on eth0",
       {{"untracked ingress of host endpoint", "unknown", "eth0"},
        {"forwarded ingress of host endpoint", "deny", "eth0"}}},
      {"iptables-nft: untracked chain passes, the host's own policy allows (summary skips raw)",
       [](PathBuilder& b) {
         hep_dispatch(b, 0, "raw", "PREROUTING", "cali-fh-eth0");
         b.add(3, 2, "raw", "cali-fh-eth0", 4, "continue").facts.clears_mark_bits = 0x20000;
         b.add(3, 2, "raw", "cali-fh-eth0", 5, "jump", "cali-pi-gnp/untracked");
         b.add(5, -1, "filter", "INPUT", 6, "jump", "cali-INPUT");
         b.add(6, 5, "filter", "cali-INPUT", 7, "jump", "cali-from-host-endpoint");
         b.add(7, 6, "filter", "cali-from-host-endpoint", 8, "goto", "cali-fh-eth0");
         b.add(8, 7, "filter", "cali-fh-eth0", 9, "continue").facts.clears_mark_bits = 0x20000;
         b.add(8, 7, "filter", "cali-fh-eth0", 10, "jump", "cali-pi-gnp/host");
         b.add(9, 8, "filter", "cali-pi-gnp/host", 11, "continue").facts.sets_mark_bits = 0x10000;
         b.add(9, 8, "filter", "cali-pi-gnp/host", 12, "return").facts.tests_mark_set = 0x10000;
         b.add(8, 7, "filter", "cali-fh-eth0", 13, "return").facts.tests_mark_set = 0x10000;
         b.add(6, 5, "filter", "cali-INPUT", 14, "accept", "",
               "cali:y; Host endpoint policy accepted packet.")
             .facts.tests_mark_set = 0x10000;
       },
       Verdict::allow,
       DecisionKind::policy_rule,
       "allowed by policy gnp/host in tier #1, ingress of host endpoint on eth0",
       {{"untracked ingress of host endpoint", "unknown", "eth0"},
        {"ingress of host endpoint", "allow", "eth0"}}},
      {"native: the forward chain's tiers all pass, the workload's profile allows",
       [](PathBuilder& b) {
         b.add(0, -1, "calico", "filter-FORWARD", 1, "jump", "filter-cali-FORWARD");
         b.add(1, 0, "calico", "filter-cali-FORWARD", 2, "jump", "filter-cali-from-hep-forward");
         b.add(2, 1, "calico", "filter-cali-from-hep-forward", 3, "goto", "filter-cali-fhfw-eth0");
         b.add(3, 2, "calico", "filter-cali-fhfw-eth0", 4, "continue").facts.clears_mark_bits =
             0x20000;
         b.add(3, 2, "calico", "filter-cali-fhfw-eth0", 5, "jump", "filter-cali-pi-gnp/fwd");
         b.add(1, 0, "calico", "filter-cali-FORWARD", 6, "jump", "filter-cali-to-wl-dispatch");
         b.add(4, 1, "calico", "filter-cali-to-wl-dispatch", 7, "goto", "filter-cali-tw-cali1");
         b.add(5, 4, "calico", "filter-cali-tw-cali1", 8, "jump", "filter-cali-pri-kns.a");
         b.add(6, 5, "calico", "filter-cali-pri-kns.a", 9, "continue").facts.sets_mark_bits =
             0x10000;
         b.add(5, 4, "calico", "filter-cali-tw-cali1", 10, "return").facts.tests_mark_set = 0x10000;
         b.add(0, -1, "calico", "filter-FORWARD", 11, "accept").facts.tests_mark_set = 0x10000;
       },
       Verdict::allow,
       DecisionKind::profile_rule,
       "allowed by profile kns.a, ingress of workload on cali1",
       {{"forwarded ingress of host endpoint", "unknown", "eth0"},
        {"ingress of workload", "allow", "cali1"}}},
      // The reverse order: the workload's stage decides, the forward chain after it only passes
      // through; the decision (kind, policy) is the workload's, not the pass-through stage's.
      {"native: the workload's profile allows, then the forward chain's tiers all pass",
       [](PathBuilder& b) {
         b.add(0, -1, "calico", "filter-FORWARD", 1, "jump", "filter-cali-FORWARD");
         b.add(1, 0, "calico", "filter-cali-FORWARD", 2, "jump", "filter-cali-from-wl-dispatch");
         b.add(2, 1, "calico", "filter-cali-from-wl-dispatch", 3, "goto", "filter-cali-fw-cali1");
         b.add(3, 2, "calico", "filter-cali-fw-cali1", 4, "jump", "filter-cali-pro-kns.a");
         b.add(4, 3, "calico", "filter-cali-pro-kns.a", 5, "continue").facts.sets_mark_bits =
             0x10000;
         b.add(3, 2, "calico", "filter-cali-fw-cali1", 6, "return").facts.tests_mark_set = 0x10000;
         b.add(1, 0, "calico", "filter-cali-FORWARD", 7, "jump", "filter-cali-to-hep-forward");
         b.add(5, 1, "calico", "filter-cali-to-hep-forward", 8, "goto", "filter-cali-thfw-eth0");
         b.add(6, 5, "calico", "filter-cali-thfw-eth0", 9, "continue").facts.clears_mark_bits =
             0x20000;
         b.add(6, 5, "calico", "filter-cali-thfw-eth0", 10, "jump", "filter-cali-po-gnp/fwd");
         b.add(0, -1, "calico", "filter-FORWARD", 11, "accept").facts.tests_mark_set = 0x10000;
       },
       Verdict::allow,
       DecisionKind::profile_rule,
       "allowed by profile kns.a, egress of workload on cali1",
       {{"egress of workload", "allow", "cali1"},
        {"forwarded egress of host endpoint", "unknown", "eth0"}}},
      {"native: egress to the uplink in the forward chain",
       [](PathBuilder& b) {
         b.add(0, -1, "calico", "filter-FORWARD", 1, "jump", "filter-cali-FORWARD");
         b.add(1, 0, "calico", "filter-cali-FORWARD", 2, "jump", "filter-cali-to-hep-forward");
         b.add(2, 1, "calico", "filter-cali-to-hep-forward", 3, "goto", "filter-cali-thfw-eth0");
         b.add(3, 2, "calico", "filter-cali-thfw-eth0", 4, "continue").facts.clears_mark_bits =
             0x20000;
         b.add(3, 2, "calico", "filter-cali-thfw-eth0", 5, "drop", "",
               "cali:z; End of tier edge. Drop if no policies passed packet")
             .facts.tests_mark_clear = 0x20000;
       },
       Verdict::deny,
       DecisionKind::end_of_tier_deny,
       "end-of-tier implicit deny in tier edge, forwarded egress of host endpoint on eth0",
       {{"forwarded egress of host endpoint", "deny", "eth0"}}},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      PathBuilder b;
      c.build(b);
      Report& r = b.decide(c.verdict, b.r.path.size() - 1);
      CHECK(r.decided_by.kind == c.kind);
      CHECK(r.decided_by.summary == c.summary);
      REQUIRE(r.stages.size() == c.stages.size());
      for (std::size_t i = 0; i < c.stages.size(); ++i) {
        CHECK(r.stages[i].role == std::get<0>(c.stages[i]));
        CHECK(r.stages[i].outcome == std::get<1>(c.stages[i]));
        CHECK(r.stages[i].endpoint == std::get<2>(c.stages[i]));
      }
    }
  }
}
