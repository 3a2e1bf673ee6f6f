#include "core/calico/attribution.h"

#include <map>

#include <fmt/format.h>

#include "core/calico/names.h"
#include "core/calico/nflog_prefix.h"

namespace dpi::calico {

namespace {

struct Invocation {
  int parent = -1;
  ChainInfo chain;
  std::string first_comment;
  std::vector<std::size_t> steps;
};

class Attributor {
 public:
  Attributor(Report& r, const MarkBits& bits) : r_(r), bits_(bits) {
    for (std::size_t i = 0; i < r.path.size(); ++i) {
      const PathStep& s = r.path[i];
      auto& inv = invs_[s.invocation];
      if (inv.steps.empty()) {
        inv.parent = s.parent_invocation;
        inv.chain = classify_chain(s.rule.nft().table, s.rule.nft().chain);
        inv.first_comment = s.chain_first_comment;
      }
      inv.steps.push_back(i);
    }
  }

  void run(std::optional<std::size_t> deciding);

 private:
  // The endpoint chain invocation that contains invocation `inv`, or -1.
  int endpoint_of(int inv) const {
    while (inv >= 0) {
      auto it = invs_.find(inv);
      if (it == invs_.end()) return -1;
      if (is_endpoint(it->second.chain.kind)) return inv;
      inv = it->second.parent;
    }
    return -1;
  }
  bool descends(int inv, int ancestor) const {
    while (inv >= 0) {
      if (inv == ancestor) return true;
      auto it = invs_.find(inv);
      if (it == invs_.end()) return false;
      inv = it->second.parent;
    }
    return false;
  }
  Stage explain_stage(int inv) const;
  Decision explain_outside(std::size_t step) const;
  void describe_policy_step(Decision& d, std::size_t step, const std::string& action) const;
  std::optional<NflogPrefix> nflog_before(std::size_t step) const;
  std::string tier_at(int inv, std::size_t step, int* ordinal) const;
  void set_policy_tier(Decision& d, int inv, std::size_t step) const;

  Report& r_;
  MarkBits bits_;
  std::map<int, Invocation> invs_;
};

std::string direction_of(ChainKind k) {
  switch (k) {
    case ChainKind::from_workload:
    case ChainKind::to_host_endpoint:
    case ChainKind::policy_egress:
    case ChainKind::group_egress:
    case ChainKind::profile_egress: return "egress";
    default: return "ingress";
  }
}

std::string role_of(const ChainInfo& c) {
  switch (c.kind) {
    case ChainKind::from_workload: return "egress of workload";
    case ChainKind::to_workload: return "ingress of workload";
    case ChainKind::from_host_endpoint: return "ingress of host endpoint";
    case ChainKind::to_host_endpoint: return "egress of host endpoint";
    default: return "";
  }
}

// The NFLOG rule Calico puts right before a drop or after an accept mark in the same chain.
std::optional<NflogPrefix> Attributor::nflog_before(std::size_t step) const {
  const PathStep& s = r_.path[step];
  if (s.facts.log_prefix) return parse_nflog_prefix(*s.facts.log_prefix);
  if (step == 0) return std::nullopt;
  const PathStep& prev = r_.path[step - 1];
  if (prev.invocation != s.invocation || !prev.facts.log_prefix) return std::nullopt;
  return parse_nflog_prefix(*prev.facts.log_prefix);
}

// Tier in force at `step` of endpoint invocation `inv`: named by a "Start of tier" comment, or
// counted from the rules that clear the pass bit (iptables-nft hides comments).
std::string Attributor::tier_at(int inv, std::size_t step, int* ordinal) const {
  std::string name;
  int n = 0;
  for (std::size_t i : invs_.at(inv).steps) {
    if (i > step) break;
    const PathStep& s = r_.path[i];
    if (s.facts.clears_mark_bits && (*s.facts.clears_mark_bits & bits_.pass) &&
        !(*s.facts.clears_mark_bits & bits_.accept)) {
      ++n;
      name.clear();
      if (auto t = tier_from_comment(split_comment(s.rule.comment).text)) name = *t;
    }
  }
  *ordinal = n;
  return name;
}

// The tier of a policy decision at `step` (a rule in the policy chain) of endpoint invocation inv.
void Attributor::set_policy_tier(Decision& d, int inv, std::size_t step) const {
  int ordinal = 0;
  d.tier = tier_at(inv, step, &ordinal);
  if (!d.policy || d.kind != DecisionKind::policy_rule || !d.tier.empty()) return;
  const PathStep& s = r_.path[step];
  // v3.30/31 chain names start with the tier.
  if (s.rule.nft().chain.find('/') != std::string::npos && d.policy->kind.empty()) {
    auto bare = invs_.at(s.invocation).chain.suffix;
    d.tier = bare.substr(0, bare.find('/'));
  } else if (ordinal > 0) {
    d.tier = fmt::format("#{}", ordinal);
  }
}

void Attributor::describe_policy_step(Decision& d, std::size_t step,
                                      const std::string& action) const {
  const PathStep& s = r_.path[step];
  const Invocation& inv = invs_.at(s.invocation);
  d.action = action;
  bool profile =
      inv.chain.kind == ChainKind::profile_ingress || inv.chain.kind == ChainKind::profile_egress;
  d.kind = profile ? DecisionKind::profile_rule : DecisionKind::policy_rule;
  if (profile) {
    PolicyName pn;
    pn.kind = "profile";
    pn.name = inv.chain.suffix;
    pn.chain = inv.chain.bare;
    pn.recovered = !pn.name.empty() && pn.name[0] != '_';
    d.policy = pn;
  } else {
    d.policy = policy_from_chain(inv.chain, inv.first_comment);
  }
  d.direction = direction_of(inv.chain.kind);
  d.rule_id = split_comment(s.rule.comment).rule_id;
  // The NFLOG rule after the mark (flow logs on) names the exact rule index.
  for (std::size_t j = step + 1; j < r_.path.size() && r_.path[j].invocation == s.invocation; ++j) {
    if (!r_.path[j].facts.log_prefix) continue;
    if (auto p = parse_nflog_prefix(*r_.path[j].facts.log_prefix); p && p->rule_index) {
      d.rule_index = p->rule_index;
      d.rule_index_exact = true;
      d.nflog_prefix = *r_.path[j].facts.log_prefix;
      d.nflog_group = r_.path[j].facts.log_group;
    }
    break;
  }
  if (!d.rule_index && s.facts.action_ordinal >= 0) {
    d.rule_index = s.facts.action_ordinal;
    d.notes.push_back(
        "rule index counted from the chain's action rules; exact when each API rule renders as one "
        "action (no NFLOG prefix to confirm it)");
  }
}

Stage Attributor::explain_stage(int inv_id) const {
  const Invocation& inv = invs_.at(inv_id);
  Stage st;
  st.role = role_of(inv.chain);
  st.endpoint = inv.chain.suffix;
  st.chain = inv.chain.bare;
  Decision& d = st.decision;
  d.direction = direction_of(inv.chain.kind);
  d.endpoint = st.endpoint;
  st.outcome = "unknown";
  // Steps of this stage, including policy and profile chains it jumped to.
  std::vector<std::size_t> steps;
  for (std::size_t i = 0; i < r_.path.size(); ++i)
    if (descends(r_.path[i].invocation, inv_id)) steps.push_back(i);
  if (steps.empty()) return st;
  std::optional<std::size_t> last_allow_mark, last_pass_mark;
  for (std::size_t i : steps) {
    const PathStep& s = r_.path[i];
    const ChainKind k = invs_.at(s.invocation).chain.kind;
    bool in_rules = k != inv.chain.kind && !is_endpoint(k) && k != ChainKind::group_ingress &&
                    k != ChainKind::group_egress;
    if (in_rules && s.facts.sets_mark_bits && (*s.facts.sets_mark_bits & bits_.accept))
      last_allow_mark = i;
    if (in_rules && s.facts.sets_mark_bits && (*s.facts.sets_mark_bits & bits_.pass))
      last_pass_mark = i;
  }
  std::size_t last = steps.back();
  const PathStep& end = r_.path[last];
  const std::string& act = end.facts.action;
  if (act == "drop" || act == "reject") {
    st.outcome = "deny";
    d.rule = end.rule;
    d.action = "deny";
    d.rule_id = split_comment(end.rule.comment).rule_id;
    auto text = split_comment(end.rule.comment).text;
    auto log = nflog_before(last);
    if (log) {
      d.nflog_prefix = log->hashed ? ""
                                   : (end.facts.log_prefix ? *end.facts.log_prefix
                                                           : *r_.path[last - 1].facts.log_prefix);
      d.nflog_group =
          end.facts.log_prefix ? end.facts.log_group : r_.path[last - 1].facts.log_group;
    }
    const ChainKind k = invs_.at(end.invocation).chain.kind;
    if (end.invocation != inv_id && k != ChainKind::group_ingress && k != ChainKind::group_egress) {
      describe_policy_step(d, last, "deny");
      // v3.30+ sets the drop mark on the matching rule, then drops on the mark.
      for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
        const PathStep& s = r_.path[*it];
        if (s.invocation == end.invocation && s.facts.sets_mark_bits &&
            (*s.facts.sets_mark_bits & bits_.drop)) {
          describe_policy_step(d, *it, "deny");
          break;
        }
      }
      set_policy_tier(d, inv_id, last);
      d.rule = end.rule;
      return st;
    }
    if (end.facts.tests_ct_invalid) {
      d.kind = DecisionKind::ct_invalid;
    } else if (text.find("admin disabled") != std::string::npos ||
               (end.facts.unconditional && end.facts.position == 0)) {
      d.kind = DecisionKind::admin_down;
    } else if (text.find("encap") != std::string::npos ||
               end.rule.text.find("dport 4789") != std::string::npos ||
               end.rule.text.find("l4proto ipencap") != std::string::npos ||
               end.rule.text.find("l4proto 4 ") != std::string::npos) {
      d.kind = DecisionKind::encap_from_workload;
    } else if ((end.facts.tests_mark_clear && (*end.facts.tests_mark_clear & bits_.pass)) ||
               text.find("End of tier") != std::string::npos || (log && log->end_of_tier())) {
      d.kind = DecisionKind::end_of_tier_deny;
      int ordinal = 0;
      d.tier = tier_at(inv_id, last, &ordinal);
      if (auto t = tier_from_comment(text)) d.tier = *t;
      if (log && log->end_of_tier() && !log->hashed) d.tier = log->id;
      if (d.tier.empty()) {
        d.tier = fmt::format("#{}", ordinal);
        d.notes.push_back(fmt::format(
            "the tier's name is not in the ruleset (iptables-nft hides rule comments and no NFLOG "
            "prefix names it); it is tier number {} of this endpoint's {} chain",
            ordinal, d.direction));
      }
    } else if (text.find("no profiles") != std::string::npos ||
               (log && log->no_profile_matched()) || end.facts.unconditional) {
      d.kind = DecisionKind::no_profile_matched;
    } else {
      d.kind = DecisionKind::calico_rule;
    }
    return st;
  }
  if (act == "accept" && end.facts.tests_ct_established) {
    st.outcome = "allow";
    d.kind = DecisionKind::ct_established;
    d.action = "allow";
    d.rule = end.rule;
    return st;
  }
  // The stage returned: allowed if a policy or profile set the accept bit.
  if (last_allow_mark) {
    st.outcome = "allow";
    describe_policy_step(d, *last_allow_mark, "allow");
    const PathStep& ms = r_.path[*last_allow_mark];
    d.rule = ms.rule;
    set_policy_tier(d, inv_id, *last_allow_mark);
    return st;
  }
  if (last_pass_mark) {
    st.outcome = "pass";
    describe_policy_step(d, *last_pass_mark, "pass");
    return st;
  }
  st.outcome = act == "accept" ? "allow" : "unknown";
  d.kind = DecisionKind::calico_rule;
  d.rule = end.rule;
  return st;
}

Decision Attributor::explain_outside(std::size_t step) const {
  const PathStep& s = r_.path[step];
  const ChainInfo ci = invs_.at(s.invocation).chain;
  Decision d;
  d.rule = s.rule;
  auto parts = split_comment(s.rule.comment);
  d.rule_id = parts.rule_id;
  switch (ci.kind) {
    case ChainKind::wl_dispatch:
    case ChainKind::hep_dispatch:
      d.kind =
          s.facts.action == "drop" ? DecisionKind::unknown_interface : DecisionKind::calico_rule;
      break;
    case ChainKind::raw_prerouting:
      d.kind = s.facts.action == "drop" && (s.rule.text.find("fib saddr") != std::string::npos ||
                                            s.rule.text.find("rpfilter") != std::string::npos)
                   ? DecisionKind::rpf_failure
                   : DecisionKind::calico_rule;
      break;
    case ChainKind::wl_to_host:
      d.kind = s.facts.unconditional ||
                       parts.text.find("DefaultEndpointToHostAction") != std::string::npos
                   ? DecisionKind::default_endpoint_to_host
                   : DecisionKind::calico_rule;
      break;
    case ChainKind::cidr_block: d.kind = DecisionKind::service_loop_prevention; break;
    case ChainKind::not_calico: d.kind = DecisionKind::non_calico; break;
    default: d.kind = DecisionKind::calico_rule; break;
  }
  d.action = s.facts.action == "accept" ? "allow" : "deny";
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

std::string stage_text(const Stage& st) {
  const Decision& d = st.decision;
  std::string where = fmt::format("{} on {}", st.role, st.endpoint);
  switch (d.kind) {
    case DecisionKind::policy_rule:
    case DecisionKind::profile_rule:
      return fmt::format("{} by {}, {}",
                         d.action == "allow"  ? "allowed"
                         : d.action == "pass" ? "passed"
                                              : "denied",
                         policy_text(d), where);
    case DecisionKind::end_of_tier_deny: {
      std::string s = fmt::format("end-of-tier implicit deny in tier {}, {}", d.tier, where);
      if (!d.nflog_prefix.empty())
        s += fmt::format(" (NFLOG group {} prefix {})", d.nflog_group.value_or(0), d.nflog_prefix);
      return s;
    }
    case DecisionKind::no_profile_matched:
      return "no policy or profile allowed it (Drop if no profiles matched), " + where;
    case DecisionKind::ct_invalid: return "conntrack state INVALID, " + where;
    case DecisionKind::ct_established: return "part of an established connection, " + where;
    case DecisionKind::admin_down: return "the endpoint is administratively down, " + where;
    case DecisionKind::encap_from_workload:
      return "encapsulated (VXLAN/IPIP) traffic from a workload, " + where;
    default: return fmt::format("{} ({})", where, d.rule ? d.rule->text : "");
  }
}

void Attributor::run(std::optional<std::size_t> deciding) {
  // Stages in path order.
  std::map<int, std::size_t> stage_of_inv;
  for (const auto& [id, inv] : invs_)
    if (is_endpoint(inv.chain.kind) && !(inv.parent >= 0 && endpoint_of(inv.parent) >= 0)) {
      stage_of_inv[id] = r_.stages.size();
      r_.stages.push_back(explain_stage(id));
    }
  Decision& out = r_.decided_by;
  std::optional<RuleRef> rule = out.rule;
  if (r_.verdict == Verdict::indeterminate) return;
  int stage_inv = deciding ? endpoint_of(r_.path[*deciding].invocation) : -1;
  if (r_.verdict == Verdict::deny && stage_inv >= 0) {
    const Stage& st = r_.stages[stage_of_inv[stage_inv]];
    out = st.decision;
    out.summary = stage_text(st);
  } else if (r_.verdict == Verdict::deny && deciding) {
    out = explain_outside(*deciding);
    auto text = split_comment(r_.path[*deciding].rule.comment).text;
    switch (out.kind) {
      case DecisionKind::unknown_interface:
        out.summary =
            "the interface has no Calico endpoint (Unknown interface drop in the dispatch chain)";
        break;
      case DecisionKind::rpf_failure:
        out.summary =
            "reverse-path check failed: the workload sent from an address that is not its own";
        break;
      case DecisionKind::default_endpoint_to_host:
        out.summary = "workload to host traffic dropped by DefaultEndpointToHostAction";
        break;
      case DecisionKind::service_loop_prevention:
        out.summary = "ServiceLoopPrevention dropped traffic to a service CIDR with no service";
        break;
      case DecisionKind::non_calico:
        out.summary =
            fmt::format("dropped outside Calico by table {} {} chain {}", out.rule->nft().family,
                        out.rule->nft().table, out.rule->nft().chain);
        break;
      default:
        out.summary = fmt::format("dropped by Calico rule in {}{}", out.rule->nft().chain,
                                  text.empty() ? "" : ": " + text);
    }
  } else if (r_.verdict == Verdict::allow && !r_.stages.empty() &&
             !(deciding && stage_inv < 0 &&
               invs_.at(r_.path[*deciding].invocation).chain.kind == ChainKind::not_calico &&
               !r_.path[*deciding].facts.tests_mark_set)) {
    const Stage& last = r_.stages.back();
    out = last.decision;
    std::string s;
    for (std::size_t i = 0; i < r_.stages.size(); ++i)
      s += (i ? "; " : "") + stage_text(r_.stages[i]);
    out.summary = s;
  } else if (r_.verdict == Verdict::allow && deciding) {
    out = explain_outside(*deciding);
    auto text = split_comment(r_.path[*deciding].rule.comment).text;
    if (out.kind == DecisionKind::default_endpoint_to_host)
      out.summary = "workload to host traffic accepted by DefaultEndpointToHostAction";
    else if (out.kind == DecisionKind::non_calico)
      out.summary =
          fmt::format("accepted outside Calico by table {} {} chain {}", out.rule->nft().family,
                      out.rule->nft().table, out.rule->nft().chain);
    else
      out.summary = fmt::format("accepted by Calico rule in {}{}", out.rule->nft().chain,
                                text.empty() ? "" : ": " + text);
  } else {
    out = Decision{};
    out.kind = DecisionKind::chain_policy;
    out.action = r_.verdict == Verdict::allow ? "allow" : "deny";
    out.summary = rule ? fmt::format("{} by the policy of base chain {} {} {}",
                                     r_.verdict == Verdict::allow ? "accepted" : "dropped",
                                     rule->nft().family, rule->nft().table, rule->nft().chain)
                       : "no chain on the hook: the kernel accepts";
    for (const auto& s : r_.path)
      if (classify_chain(s.rule.nft().table, s.rule.nft().chain).kind == ChainKind::output &&
          s.facts.action == "return" && s.rule.text.find("oifname") != std::string::npos)
        out.notes.push_back(
            fmt::format("{} (cali-OUTPUT returns for cali* interfaces)", kHostToWorkloadUnpoliced));
  }
  // The deciding kernel rule stays what the backend found, whatever explained it.
  out.rule = rule;
}

}  // namespace

void attribute(Report& report, std::optional<std::size_t> deciding_step, const MarkBits& bits) {
  Attributor(report, bits).run(deciding_step);
}

std::string stage_summary(const Stage& stage) {
  return stage_text(stage);
}

Decision host_to_workload_decision() {
  Decision d;
  d.kind = DecisionKind::chain_policy;
  d.action = "allow";
  d.summary =
      "accepted without policy: calico_tc_main allows traffic from the host to a local workload "
      "on the workload's tc egress hook";
  d.notes.push_back(fmt::format(
      "{} (calico_tc_main returns before the policy program when the source is the host)",
      kHostToWorkloadUnpoliced));
  return d;
}

}  // namespace dpi::calico
