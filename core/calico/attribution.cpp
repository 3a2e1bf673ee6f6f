#include "core/calico/attribution.h"

#include <algorithm>

#include <fmt/format.h>

namespace dpi::calico {

std::string_view action_name(Action a) {
  switch (a) {
    case Action::none: return "";
    case Action::allow: return "allow";
    case Action::deny: return "deny";
    case Action::pass: return "pass";
  }
  return "";
}

std::string_view outcome_name(StageOutcome o) {
  switch (o) {
    case StageOutcome::unknown: return "unknown";
    case StageOutcome::allow: return "allow";
    case StageOutcome::deny: return "deny";
    case StageOutcome::pass: return "pass";
  }
  return "unknown";
}

namespace {

std::string_view direction_name(Direction d) {
  switch (d) {
    case Direction::ingress: return "ingress";
    case Direction::egress: return "egress";
  }
  return "";
}

std::string_view hep_chain_qualifier(HostEndpointChain c) {
  switch (c) {
    case HostEndpointChain::host: return "";
    case HostEndpointChain::forward: return "forwarded ";
    case HostEndpointChain::pre_dnat: return "pre-DNAT ";
    case HostEndpointChain::untracked: return "untracked ";
    case HostEndpointChain::dnat_egress: return "DNATed ";
  }
  return "";
}

std::string role_name(const Endpoint& e) {
  std::string_view who;
  std::string_view qualifier;
  switch (e.role) {
    case EndpointRole::workload: who = "workload"; break;
    case EndpointRole::host_endpoint:
      who = "host endpoint";
      qualifier = hep_chain_qualifier(e.hep_chain);
      break;
  }
  return fmt::format("{}{} of {}", qualifier, direction_name(e.direction), who);
}

// A host endpoint's pre-DNAT (mangle), untracked (raw) and forward chains have no final drop: a
// packet no policy of theirs decided (or whose tiers all passed) goes on. Such a stage decided
// nothing and a summary leaves it out.
bool passed_through(const StagePosition& sp) {
  return sp.outcome == StageOutcome::unknown && sp.endpoint.role == EndpointRole::host_endpoint &&
         (sp.endpoint.hep_chain == HostEndpointChain::pre_dnat ||
          sp.endpoint.hep_chain == HostEndpointChain::untracked ||
          sp.endpoint.hep_chain == HostEndpointChain::forward);
}

// "meta l4proto tcp tcp dport { 22 }" from a failsafe rule's text: its match, without the
// counter (which changes with every packet) and the verdict.
std::string failsafe_match(std::string_view text) {
  auto cut = text.find(" counter");
  if (cut == std::string_view::npos) cut = text.rfind(" accept");
  if (cut == std::string_view::npos) cut = text.size();
  return std::string(text.substr(0, cut));
}

// eBPF: no chain, the cali_v4_fsafes2 entry the flow matched (comment_text) before the policy
// program.
std::string failsafe_text(const Position& p) {
  if (p.rule && p.rule->bpf())
    return fmt::format("allowed by failsafe {} before host endpoint policy", p.comment_text);
  std::string chain = p.rule ? p.rule->nft().chain : "cali-failsafe-*";
  std::string match = p.rule ? failsafe_match(p.rule->text) : "";
  return fmt::format("allowed by failsafe rule in {}{}", chain,
                     match.empty() ? "" : fmt::format(" ({})", match));
}

DecisionKind decision_kind(PositionKind k) {
  switch (k) {
    case PositionKind::policy_rule: return DecisionKind::policy_rule;
    case PositionKind::profile_rule: return DecisionKind::profile_rule;
    case PositionKind::end_of_tier: return DecisionKind::end_of_tier_deny;
    case PositionKind::no_profile: return DecisionKind::no_profile_matched;
    case PositionKind::ct_invalid: return DecisionKind::ct_invalid;
    case PositionKind::ct_established: return DecisionKind::ct_established;
    case PositionKind::unknown_interface:
    case PositionKind::no_interface_state: return DecisionKind::unknown_interface;
    case PositionKind::admin_down:
    case PositionKind::endpoint_not_ready: return DecisionKind::admin_down;
    case PositionKind::encapsulation: return DecisionKind::encap_from_workload;
    case PositionKind::rpf: return DecisionKind::rpf_failure;
    case PositionKind::default_endpoint_to_host: return DecisionKind::default_endpoint_to_host;
    case PositionKind::service_loop_prevention: return DecisionKind::service_loop_prevention;
    case PositionKind::failsafe: return DecisionKind::failsafe;
    case PositionKind::no_policy_program:
    case PositionKind::empty_policy_slot:
    case PositionKind::service_without_backends:
    case PositionKind::no_host_policy:
    case PositionKind::calico_rule: return DecisionKind::calico_rule;
    case PositionKind::non_calico: return DecisionKind::non_calico;
    case PositionKind::chain_policy:
    case PositionKind::host_to_workload: return DecisionKind::chain_policy;
    case PositionKind::unlocated:
    case PositionKind::no_route:
    case PositionKind::no_rule_id:
    case PositionKind::rule_id_not_found: return DecisionKind::unknown;
  }
  return DecisionKind::unknown;
}

// The position's fields as a decision, with the notes its kind carries; no summary yet. direction:
// the endpoint's, for a position inside an endpoint stage.
Decision decision_of(const Position& p, std::string_view direction) {
  Decision d;
  d.direction = std::string(direction);
  d.kind = decision_kind(p.kind);
  d.action = std::string(action_name(p.action));
  d.tier = p.tier;
  if (d.tier.empty() && p.tier_ordinal) d.tier = fmt::format("#{}", *p.tier_ordinal);
  d.policy = p.owner;
  d.rule_index = p.rule_index;
  d.rule_index_exact = p.rule_index_exact;
  d.rule_id = p.rule_id;
  d.nflog_group = p.nflog_group;
  d.nflog_prefix = p.nflog_prefix;
  d.rule = p.rule;
  if (p.same_id_sites > 1)
    d.notes.push_back(
        fmt::format("{} positions of the program record rule id {}; the last one is reported",
                    p.same_id_sites, p.recorded_id));
  if (p.rule_index_counted)
    d.notes.push_back(
        "rule index counted from the chain's action rules; exact when each API rule renders as one "
        "action (no NFLOG prefix to confirm it)");
  switch (p.kind) {
    case PositionKind::end_of_tier:
      if (p.tier.empty() && p.tier_ordinal) {
        // Only the tier's place is known: say where the number comes from.
        d.notes.push_back(fmt::format(
            "the tier's name is not in the ruleset (iptables-nft hides rule comments and no NFLOG "
            "prefix names it); it is tier number {} of this endpoint's {} chain",
            *p.tier_ordinal, direction));
      }
      break;
    case PositionKind::no_rule_id:
      d.notes.push_back(
          "the program recorded no rule id (policy debug off when it was generated): only the "
          "verdict is known");
      break;
    case PositionKind::rule_id_not_found:
      d.notes.push_back(fmt::format("rule id {} is not in {}", p.recorded_id, p.program_file));
      break;
    case PositionKind::host_to_workload:
      d.notes.push_back(fmt::format(
          "{} (calico_tc_main returns before the policy program when the source is the host)",
          kHostToWorkloadUnpoliced));
      break;
    case PositionKind::chain_policy:
      for (int i = 0; i < p.host_to_workload_returns; ++i)
        d.notes.push_back(
            fmt::format("{} (cali-OUTPUT returns for cali* interfaces)", kHostToWorkloadUnpoliced));
      break;
    case PositionKind::unlocated:
    case PositionKind::policy_rule:
    case PositionKind::profile_rule:
    case PositionKind::no_profile:
    case PositionKind::ct_invalid:
    case PositionKind::ct_established:
    case PositionKind::unknown_interface:
    case PositionKind::no_interface_state:
    case PositionKind::admin_down:
    case PositionKind::endpoint_not_ready:
    case PositionKind::no_policy_program:
    case PositionKind::empty_policy_slot:
    case PositionKind::encapsulation:
    case PositionKind::rpf:
    case PositionKind::default_endpoint_to_host:
    case PositionKind::service_loop_prevention:
    case PositionKind::service_without_backends:
    case PositionKind::no_route:
    case PositionKind::failsafe:
    case PositionKind::calico_rule:
    case PositionKind::no_host_policy:
    case PositionKind::non_calico: break;
  }
  return d;
}

std::string policy_text(const Decision& d) {
  std::string s;
  if (!d.policy) return s;
  bool profile = d.kind == DecisionKind::profile_rule;
  s = profile ? "profile " : "policy ";
  s += d.policy->display();
  if (d.rule_index) s = fmt::format("rule {} of {}", *d.rule_index, s);
  if (!d.tier.empty() && !profile) s += fmt::format(" in tier {}", d.tier);
  return s;
}

std::string_view past_tense(Action a) {
  switch (a) {
    case Action::allow: return "allowed";
    case Action::pass: return "passed";
    case Action::none:
    case Action::deny: return "denied";
  }
  return "denied";
}

// The sentence for one stage: what decided it, then where.
std::string stage_text(const StagePosition& sp, const Stage& st) {
  const Decision& d = st.decision;
  const Position& p = sp.at;
  std::string where = fmt::format("{} on {}", st.role, st.endpoint);
  switch (p.kind) {
    case PositionKind::policy_rule:
    case PositionKind::profile_rule:
      return fmt::format("{} by {}, {}", past_tense(p.action), policy_text(d), where);
    case PositionKind::end_of_tier: {
      std::string s = fmt::format("end-of-tier implicit deny in tier {}, {}", d.tier, where);
      if (!d.nflog_prefix.empty())
        s += fmt::format(" (NFLOG group {} prefix {})", d.nflog_group.value_or(0), d.nflog_prefix);
      return s;
    }
    case PositionKind::no_profile:
      return "no policy or profile allowed it (Drop if no profiles matched), " + where;
    case PositionKind::ct_invalid: return "conntrack state INVALID, " + where;
    case PositionKind::ct_established: return "part of an established connection, " + where;
    case PositionKind::failsafe: return failsafe_text(p) + ", " + where;
    case PositionKind::admin_down: return "the endpoint is administratively down, " + where;
    case PositionKind::encapsulation:
      return "encapsulated (VXLAN/IPIP) traffic from a workload, " + where;
    case PositionKind::no_interface_state:
      return fmt::format(
          "the interface with ifindex {} has no Calico interface state (cali_iface): Felix has not "
          "set it up",
          p.ifindex.value_or(0));
    case PositionKind::endpoint_not_ready:
      return fmt::format("the endpoint is not ready (ifstate flags {:#x}: no IPv{}Ready), {}",
                         p.iface_flags.value_or(0), p.ip_family, where);
    case PositionKind::no_policy_program:
      return "no policy program for the workload (ifstate index -1): calico_tc_main denies, " +
             where;
    case PositionKind::empty_policy_slot:
      return fmt::format(
          "empty policy jump-map slot {} for a ready workload (the node lost its policy program): "
          "calico_tc_main denies, {}",
          p.policy_slot, where);
    case PositionKind::no_host_policy:
      return "no policy of the host endpoint applies to the flow (Calico allows), " + where;
    case PositionKind::unlocated:
    case PositionKind::unknown_interface:
    case PositionKind::rpf:
    case PositionKind::default_endpoint_to_host:
    case PositionKind::service_loop_prevention:
    case PositionKind::service_without_backends:
    case PositionKind::no_route:
    case PositionKind::calico_rule:
    case PositionKind::non_calico:
    case PositionKind::chain_policy:
    case PositionKind::host_to_workload:
    case PositionKind::no_rule_id:
    case PositionKind::rule_id_not_found: break;
  }
  return fmt::format("{} ({})", where, d.rule ? d.rule->text : "");
}

// "accepted by Calico rule in cali-wl-to-host: <comment>", for Calico rules with no sentence of
// their own.
std::string calico_rule_text(const Position& p, bool allowed) {
  return fmt::format("{} by Calico rule in {}{}", allowed ? "accepted" : "dropped",
                     p.rule ? p.rule->nft().chain : "",
                     p.comment_text.empty() ? "" : ": " + p.comment_text);
}

std::string outside_text(const Position& p, bool allowed) {
  const char* done = allowed ? "accepted" : "dropped";
  switch (p.kind) {
    case PositionKind::unknown_interface:
      if (allowed) break;
      return "the interface has no Calico endpoint (Unknown interface drop in the dispatch chain)";
    case PositionKind::rpf:
      if (allowed) break;
      return "reverse-path check failed: the workload sent from an address that is not its own";
    case PositionKind::default_endpoint_to_host:
      return fmt::format("workload to host traffic {} by DefaultEndpointToHostAction", done);
    case PositionKind::service_loop_prevention:
      if (allowed) break;
      return "ServiceLoopPrevention dropped traffic to a service CIDR with no service";
    case PositionKind::non_calico: {
      const NftRuleLocation& at = p.rule ? p.rule->nft() : RuleRef{}.nft();
      return fmt::format("{} outside Calico by table {} {} chain {}", done, at.family, at.table,
                         at.chain);
    }
    case PositionKind::chain_policy:
      if (!p.rule) return "no chain on the hook: the kernel accepts";
      return fmt::format("{} by the policy of base chain {} {} {}", done, p.rule->nft().family,
                         p.rule->nft().table, p.rule->nft().chain);
    case PositionKind::host_to_workload:
      return "accepted without policy: calico_tc_main allows traffic from the host to a local "
             "workload on the workload's tc egress hook";
    case PositionKind::ct_established:
      if (p.conntrack_entry.empty()) break;
      return fmt::format(
          "part of an established connection: conntrack entry {} approved on both legs, policy "
          "skipped",
          p.conntrack_entry);
    case PositionKind::service_without_backends:
      return fmt::format("service {} has no backends (NAT frontend id {:#x})", p.service,
                         p.frontend_id.value_or(0));
    case PositionKind::no_route: return "the node cannot route the flow: " + p.why;
    case PositionKind::failsafe: return failsafe_text(p);
    case PositionKind::no_host_policy:
      return "no policy of the host endpoint applies to the flow: Calico allows";
    case PositionKind::unlocated:
    case PositionKind::policy_rule:
    case PositionKind::profile_rule:
    case PositionKind::end_of_tier:
    case PositionKind::no_profile:
    case PositionKind::ct_invalid:
    case PositionKind::no_interface_state:
    case PositionKind::admin_down:
    case PositionKind::endpoint_not_ready:
    case PositionKind::no_policy_program:
    case PositionKind::empty_policy_slot:
    case PositionKind::encapsulation:
    case PositionKind::calico_rule:
    case PositionKind::no_rule_id:
    case PositionKind::rule_id_not_found: break;
  }
  return calico_rule_text(p, allowed);
}

}  // namespace

Stage explain_stage(const StagePosition& at) {
  Stage st;
  st.role = role_name(at.endpoint);
  st.endpoint = at.endpoint.iface;
  st.chain = at.endpoint.chain;
  st.outcome = std::string(outcome_name(at.outcome));
  st.decision = decision_of(at.at, direction_name(at.endpoint.direction));
  st.decision.endpoint = at.endpoint.iface;
  return st;
}

Decision explain_stage_position(const StagePosition& at) {
  Stage st = explain_stage(at);
  st.decision.summary = stage_text(at, st);
  return std::move(st.decision);
}

Decision explain_position(const Position& at, Verdict verdict) {
  Decision d = decision_of(at, "");
  d.summary = outside_text(at, verdict == Verdict::allow);
  return d;
}

void explain(Report& report, const Located& located) {
  const std::size_t first = report.stages.size();
  for (const auto& sp : located.stages) report.stages.push_back(explain_stage(sp));
  if (report.verdict == Verdict::indeterminate) return;
  Decision out;
  const auto& stages = located.stages;
  // The Calico positions the summary names, in packet order.
  std::vector<const Decision*> deciding;
  switch (located.by) {
    case Located::By::stage:
      if (located.stage < stages.size()) {
        const Stage& st = report.stages[first + located.stage];
        out = st.decision;
        out.summary = stage_text(stages[located.stage], st);
        deciding.push_back(&st.decision);
        break;
      }
      out = explain_position(Position{}, report.verdict);
      break;
    case Located::By::stages:
      if (!stages.empty()) {
        // The decision is the last stage that decided something: a host endpoint chain the flow
        // only passed through (after the workload's) neither decided nor names a policy. When
        // every stage passed through, all of them are named.
        const bool all_passed = std::all_of(stages.begin(), stages.end(), passed_through);
        std::size_t last = stages.size() - 1;
        while (!all_passed && passed_through(stages[last])) --last;
        out = report.stages[first + last].decision;
        std::string s;
        for (std::size_t i = 0; i < stages.size(); ++i) {
          if (!all_passed && passed_through(stages[i])) continue;
          s += (s.empty() ? "" : "; ") + stage_text(stages[i], report.stages[first + i]);
          deciding.push_back(&report.stages[first + i].decision);
        }
        out.summary = s;
        break;
      }
      out = explain_position(Position{}, report.verdict);
      break;
    case Located::By::position: out = explain_position(located.position, report.verdict); break;
  }
  if (located.by == Located::By::position && out.rule) out.calico_rules.push_back(*out.rule);
  bool indexed = false;
  for (const Decision* d : deciding) {
    if (d->rule) out.calico_rules.push_back(*d->rule);
    indexed = indexed || (d->rule_index && d->policy);
  }
  // "rule 0" is Calico's numbering, which a reader cannot guess (docs/inspect.md).
  if (indexed) out.notes.emplace_back(kRuleNumbering);
  // The deciding kernel rule stays what the backend found, whatever explained it.
  out.rule = located.rule;
  report.decided_by = std::move(out);
}

}  // namespace dpi::calico
