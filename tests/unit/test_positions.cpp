// Core's half of attribution: typed Calico positions in, decisions and sentences out, whichever
// backend located them (core/calico/attribution.h). One row per kind of position.
#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "core/calico/attribution.h"

using namespace dpi;
using calico::Action;
using calico::Located;
using calico::Position;
using calico::PositionKind;
using calico::StageOutcome;

namespace {

calico::Endpoint workload_egress() {
  calico::Endpoint e;
  e.role = calico::EndpointRole::workload;
  e.direction = calico::Direction::egress;
  e.iface = "cali1";
  e.chain = "cali-fw-cali1";
  return e;
}

RuleRef nft_rule(std::string chain, std::string text) {
  return RuleRef{"ip", "filter", std::move(chain), 9, std::move(text), "", {}, {}};
}

PolicyName policy(std::string kind, std::string ns, std::string name) {
  PolicyName p;
  p.kind = std::move(kind);
  p.ns = std::move(ns);
  p.name = std::move(name);
  p.recovered = true;
  return p;
}

struct StageCase {
  const char* name;
  std::function<void(Position&, calico::Endpoint&)> shape;
  StageOutcome outcome;
  DecisionKind kind;
  std::string summary;
  std::string note;  // a note the decision must carry ("" for none)
};

}  // namespace

TEST_CASE("a stage's position becomes its decision and sentence", "[unit]") {
  const std::string where = "egress of workload on cali1";
  std::vector<StageCase> cases = {
      {"policy rule",
       [](Position& p, calico::Endpoint&) {
         p.kind = PositionKind::policy_rule;
         p.action = Action::deny;
         p.owner = policy("np", "ns1", "deny-db");
         p.rule_index = 1;
         p.tier = "default";
       },
       StageOutcome::deny, DecisionKind::policy_rule,
       "denied by rule 1 of policy np/ns1/deny-db in tier default, " + where, ""},
      {"policy rule, index counted, tier by number",
       [](Position& p, calico::Endpoint&) {
         p.kind = PositionKind::policy_rule;
         p.action = Action::deny;
         p.owner = policy("gnp", "", "deny-all");
         p.rule_index = 0;
         p.rule_index_counted = true;
         p.tier_ordinal = 2;
       },
       StageOutcome::deny, DecisionKind::policy_rule,
       "denied by rule 0 of policy gnp/deny-all in tier #2, " + where,
       "rule index counted from the chain's action rules"},
      {"profile rule",
       [](Position& p, calico::Endpoint&) {
         p.kind = PositionKind::profile_rule;
         p.action = Action::deny;
         p.owner = policy("profile", "", "kns.stars");
         p.tier = "default";  // a profile's sentence names no tier
       },
       StageOutcome::deny, DecisionKind::profile_rule, "denied by profile kns.stars, " + where, ""},
      {"end of tier, named",
       [](Position& p, calico::Endpoint&) {
         p.kind = PositionKind::end_of_tier;
         p.action = Action::deny;
         p.tier = "platform";
         p.nflog_group = 2;
         p.nflog_prefix = "DPE|platform";
       },
       StageOutcome::deny, DecisionKind::end_of_tier_deny,
       "end-of-tier implicit deny in tier platform, " + where +
           " (NFLOG group 2 prefix DPE|platform)",
       ""},
      {"end of tier, counted",
       [](Position& p, calico::Endpoint&) {
         p.kind = PositionKind::end_of_tier;
         p.action = Action::deny;
         p.tier_ordinal = 1;
       },
       StageOutcome::deny, DecisionKind::end_of_tier_deny,
       "end-of-tier implicit deny in tier #1, " + where,
       "it is tier number 1 of this endpoint's egress chain"},
      {"no profile", [](Position& p, calico::Endpoint&) { p.kind = PositionKind::no_profile; },
       StageOutcome::deny, DecisionKind::no_profile_matched,
       "no policy or profile allowed it (Drop if no profiles matched), " + where, ""},
      {"ct invalid", [](Position& p, calico::Endpoint&) { p.kind = PositionKind::ct_invalid; },
       StageOutcome::deny, DecisionKind::ct_invalid, "conntrack state INVALID, " + where, ""},
      {"admin down", [](Position& p, calico::Endpoint&) { p.kind = PositionKind::admin_down; },
       StageOutcome::deny, DecisionKind::admin_down,
       "the endpoint is administratively down, " + where, ""},
      {"encapsulation",
       [](Position& p, calico::Endpoint&) { p.kind = PositionKind::encapsulation; },
       StageOutcome::deny, DecisionKind::encap_from_workload,
       "encapsulated (VXLAN/IPIP) traffic from a workload, " + where, ""},
      {"no interface state",
       [](Position& p, calico::Endpoint& e) {
         p.kind = PositionKind::no_interface_state;
         p.ifindex = 7;
         e.iface = "ifindex 7";
         e.chain.clear();
       },
       StageOutcome::deny, DecisionKind::unknown_interface,
       "the interface with ifindex 7 has no Calico interface state (cali_iface): Felix has not "
       "set it up",
       ""},
      {"endpoint not ready",
       [](Position& p, calico::Endpoint&) {
         p.kind = PositionKind::endpoint_not_ready;
         p.iface_flags = 0x2;
       },
       StageOutcome::deny, DecisionKind::admin_down,
       "the endpoint is not ready (ifstate flags 0x2: no IPv4Ready), " + where, ""},
      {"no policy program",
       [](Position& p, calico::Endpoint&) { p.kind = PositionKind::no_policy_program; },
       StageOutcome::deny, DecisionKind::calico_rule,
       "no policy program for the workload (ifstate index -1): calico_tc_main denies, " + where,
       ""},
      {"empty policy slot",
       [](Position& p, calico::Endpoint&) {
         p.kind = PositionKind::empty_policy_slot;
         p.policy_slot = "cali_jump2[3]";
       },
       StageOutcome::deny, DecisionKind::calico_rule,
       "empty policy jump-map slot cali_jump2[3] for a ready workload (the node lost its policy "
       "program): calico_tc_main denies, " +
           where,
       ""},
      {"no rule id", [](Position& p, calico::Endpoint&) { p.kind = PositionKind::no_rule_id; },
       StageOutcome::deny, DecisionKind::unknown, where + " ()", "recorded no rule id"},
      {"rule id not found",
       [](Position& p, calico::Endpoint&) {
         p.kind = PositionKind::rule_id_not_found;
         p.recorded_id = "0x12";
         p.program_file = "cali1_egr.json";
       },
       StageOutcome::deny, DecisionKind::unknown, where + " ()",
       "rule id 0x12 is not in cali1_egr.json"},
      {"same rule id at several places",
       [](Position& p, calico::Endpoint&) {
         p.kind = PositionKind::end_of_tier;
         p.tier = "default";
         p.recorded_id = "0x12";
         p.same_id_sites = 2;
       },
       StageOutcome::deny, DecisionKind::end_of_tier_deny,
       "end-of-tier implicit deny in tier default, " + where,
       "2 positions of the program record rule id 0x12; the last one is reported"},
      {"another Calico rule",
       [](Position& p, calico::Endpoint&) {
         p.kind = PositionKind::calico_rule;
         p.rule = nft_rule("cali-fw-cali1", "drop");
       },
       StageOutcome::deny, DecisionKind::calico_rule, where + " (drop)", ""},
      {"unlocated", [](Position& p, calico::Endpoint&) { p.kind = PositionKind::unlocated; },
       StageOutcome::deny, DecisionKind::unknown, where + " ()", ""},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      Located at;
      calico::StagePosition sp;
      sp.endpoint = workload_egress();
      sp.outcome = c.outcome;
      sp.at.action = Action::deny;
      c.shape(sp.at, sp.endpoint);
      at.stages.push_back(sp);
      at.by = Located::By::stage;
      at.rule = nft_rule("cali-fw-cali1", "the deciding rule");
      Report r;
      r.verdict = Verdict::deny;
      calico::explain(r, at);
      REQUIRE(r.stages.size() == 1);
      CHECK(r.stages[0].outcome == "deny");
      CHECK(r.stages[0].decision.direction == "egress");
      CHECK(r.decided_by.kind == c.kind);
      CHECK(r.decided_by.summary == c.summary);
      CHECK(r.decided_by.endpoint == sp.endpoint.iface);
      // The deciding kernel rule is the backend's, whatever position explained it.
      REQUIRE(r.decided_by.rule);
      CHECK(r.decided_by.rule->text == "the deciding rule");
      // The Calico rule that decided is the stage position's, when it names one.
      CHECK(r.decided_by.calico_rules.size() == (sp.at.rule ? 1u : 0u));
      // A sentence that names "rule N" says how Calico counts, after the position's own note.
      std::vector<std::string> notes = r.decided_by.notes;
      if (c.summary.find(" by rule ") != std::string::npos) {
        REQUIRE_FALSE(notes.empty());
        CHECK(notes.back() == calico::kRuleNumbering);
        notes.pop_back();
      }
      CHECK(std::count(notes.begin(), notes.end(), calico::kRuleNumbering) == 0);
      if (c.note.empty()) {
        CHECK(notes.empty());
      } else {
        REQUIRE(notes.size() == 1);
        CHECK(notes[0].find(c.note) != std::string::npos);
      }
    }
  }
}

TEST_CASE("positions outside endpoint stages, by verdict", "[unit]") {
  struct Case {
    const char* name;
    std::function<void(Position&)> shape;
    Verdict verdict;
    DecisionKind kind;
    std::string summary;
    std::string note;
  };
  auto in = [](std::string chain, std::string comment = "") {
    return [chain, comment](Position& p) {
      p.rule = nft_rule(chain, "");
      p.comment_text = comment;
    };
  };
  std::vector<Case> cases = {
      {"unknown interface, dropped",
       [&](Position& p) {
         in("cali-from-wl-dispatch")(p);
         p.kind = PositionKind::unknown_interface;
       },
       Verdict::deny, DecisionKind::unknown_interface,
       "the interface has no Calico endpoint (Unknown interface drop in the dispatch chain)", ""},
      {"rpf",
       [&](Position& p) {
         in("cali-PREROUTING")(p);
         p.kind = PositionKind::rpf;
       },
       Verdict::deny, DecisionKind::rpf_failure,
       "reverse-path check failed: the workload sent from an address that is not its own", ""},
      {"default endpoint to host, dropped",
       [&](Position& p) {
         in("cali-wl-to-host")(p);
         p.kind = PositionKind::default_endpoint_to_host;
       },
       Verdict::deny, DecisionKind::default_endpoint_to_host,
       "workload to host traffic dropped by DefaultEndpointToHostAction", ""},
      {"default endpoint to host, accepted",
       [&](Position& p) {
         in("cali-wl-to-host")(p);
         p.kind = PositionKind::default_endpoint_to_host;
       },
       Verdict::allow, DecisionKind::default_endpoint_to_host,
       "workload to host traffic accepted by DefaultEndpointToHostAction", ""},
      {"service loop prevention",
       [&](Position& p) {
         in("cali-cidr-block")(p);
         p.kind = PositionKind::service_loop_prevention;
       },
       Verdict::deny, DecisionKind::service_loop_prevention,
       "ServiceLoopPrevention dropped traffic to a service CIDR with no service", ""},
      {"service loop prevention chain, accepted: its Calico rule",
       [&](Position& p) {
         in("cali-cidr-block", "allow it")(p);
         p.kind = PositionKind::service_loop_prevention;
       },
       Verdict::allow, DecisionKind::service_loop_prevention,
       "accepted by Calico rule in cali-cidr-block: allow it", ""},
      {"not Calico, dropped",
       [&](Position& p) {
         in("HOST-FIREWALL")(p);
         p.kind = PositionKind::non_calico;
       },
       Verdict::deny, DecisionKind::non_calico,
       "dropped outside Calico by table ip filter chain HOST-FIREWALL", ""},
      {"not Calico, accepted",
       [&](Position& p) {
         in("KUBE-FORWARD")(p);
         p.kind = PositionKind::non_calico;
       },
       Verdict::allow, DecisionKind::non_calico,
       "accepted outside Calico by table ip filter chain KUBE-FORWARD", ""},
      {"another Calico rule",
       [&](Position& p) {
         in("cali-INPUT", "Drop IPIP from unknown peers")(p);
         p.kind = PositionKind::calico_rule;
       },
       Verdict::deny, DecisionKind::calico_rule,
       "dropped by Calico rule in cali-INPUT: Drop IPIP from unknown peers", ""},
      {"base chain policy, host to pod",
       [&](Position& p) {
         p.kind = PositionKind::chain_policy;
         p.rule = nft_rule("OUTPUT", "policy accept");
         p.host_to_workload_returns = 1;
       },
       Verdict::allow, DecisionKind::chain_policy,
       "accepted by the policy of base chain ip filter OUTPUT",
       "Calico does not police traffic from the host to its local workloads (cali-OUTPUT "
       "returns for cali* interfaces)"},
      {"no chain on the hook", [&](Position& p) { p.kind = PositionKind::chain_policy; },
       Verdict::allow, DecisionKind::chain_policy, "no chain on the hook: the kernel accepts", ""},
      {"host to workload without policy",
       [&](Position& p) { p.kind = PositionKind::host_to_workload; }, Verdict::allow,
       DecisionKind::chain_policy,
       "accepted without policy: calico_tc_main allows traffic from the host to a local workload "
       "on the workload's tc egress hook",
       "calico_tc_main returns before the policy program"},
      {"established connection",
       [&](Position& p) {
         p.kind = PositionKind::ct_established;
         p.conntrack_entry = "10.65.0.2:40000 <-> 10.65.0.3:80";
       },
       Verdict::allow, DecisionKind::ct_established,
       "part of an established connection: conntrack entry 10.65.0.2:40000 <-> 10.65.0.3:80 "
       "approved on both legs, policy skipped",
       ""},
      {"service without backends",
       [&](Position& p) {
         p.kind = PositionKind::service_without_backends;
         p.service = "10.96.0.10:53";
         p.frontend_id = 0x2a;
       },
       Verdict::deny, DecisionKind::calico_rule,
       "service 10.96.0.10:53 has no backends (NAT frontend id 0x2a)", ""},
      {"no route",
       [&](Position& p) {
         p.kind = PositionKind::no_route;
         p.why = "route type unreachable for 10.9.9.9";
       },
       Verdict::deny, DecisionKind::unknown,
       "the node cannot route the flow: route type unreachable for 10.9.9.9", ""},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      Located at;
      c.shape(at.position);
      at.position.action = c.verdict == Verdict::allow ? Action::allow : Action::deny;
      Report r;
      r.verdict = c.verdict;
      calico::explain(r, at);
      CHECK(r.stages.empty());
      CHECK(r.decided_by.kind == c.kind);
      CHECK(r.decided_by.summary == c.summary);
      CHECK(r.decided_by.action == (c.verdict == Verdict::allow ? "allow" : "deny"));
      CHECK(r.decided_by.direction.empty());
      if (c.note.empty()) {
        CHECK(r.decided_by.notes.empty());
      } else {
        REQUIRE(r.decided_by.notes.size() == 1);
        CHECK(r.decided_by.notes[0].find(c.note) != std::string::npos);
      }
    }
  }
}

TEST_CASE("allowed through every stage: the sentences joined, the last stage decides", "[unit]") {
  Located at;
  calico::StagePosition from;
  from.endpoint = workload_egress();
  from.outcome = StageOutcome::allow;
  from.at.kind = PositionKind::policy_rule;
  from.at.action = Action::allow;
  from.at.owner = policy("np", "client", "allow-stars");
  from.at.rule_index = 0;
  from.at.rule_index_exact = true;
  from.at.tier = "default";
  calico::StagePosition to;
  to.endpoint.role = calico::EndpointRole::host_endpoint;
  to.endpoint.direction = calico::Direction::ingress;
  to.endpoint.iface = "eth0";
  to.outcome = StageOutcome::pass;
  to.at.kind = PositionKind::policy_rule;
  to.at.action = Action::pass;
  to.at.owner = policy("gnp", "", "pass-all");
  at.stages = {from, to};
  at.by = Located::By::stages;
  Report r;
  r.verdict = Verdict::allow;
  calico::explain(r, at);
  REQUIRE(r.stages.size() == 2);
  CHECK(r.stages[1].role == "ingress of host endpoint");
  CHECK(r.stages[1].outcome == "pass");
  CHECK(r.decided_by.summary ==
        "allowed by rule 0 of policy np/client/allow-stars in tier default, egress of workload on "
        "cali1; passed by policy gnp/pass-all, ingress of host endpoint on eth0");
  CHECK(r.decided_by.policy->name == "pass-all");
  CHECK_FALSE(r.decided_by.rule);
}

TEST_CASE("indeterminate: stages explained, the decision left to the backend", "[unit]") {
  Located at;
  calico::StagePosition sp;
  sp.endpoint = workload_egress();
  sp.outcome = StageOutcome::allow;
  sp.at.kind = PositionKind::ct_established;
  at.stages.push_back(sp);
  at.by = Located::By::stages;
  Report r;
  r.verdict = Verdict::indeterminate;
  r.decided_by.summary = "set by the backend";
  calico::explain(r, at);
  REQUIRE(r.stages.size() == 1);
  CHECK(r.stages[0].decision.kind == DecisionKind::ct_established);
  CHECK(r.decided_by.summary == "set by the backend");
}
