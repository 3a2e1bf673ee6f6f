#include "backends/nftables/calico_positions.h"

#include <map>

#include "core/calico/names.h"
#include "core/calico/nflog_prefix.h"

namespace dpi::nft {

using calico::Action;
using calico::ChainInfo;
using calico::ChainKind;
using calico::Located;
using calico::NflogPrefix;
using calico::Position;
using calico::PositionKind;
using calico::StageOutcome;
using calico::StagePosition;

namespace {

struct Invocation {
  int parent = -1;
  ChainInfo chain;
  std::string
      table;  // the chain's nft table: "calico" (native) or raw/mangle/filter (iptables-nft)
  std::string first_comment;
  std::vector<std::size_t> steps;
};

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

// Which host-endpoint chain: by Felix's table (the native layer prefix, or the iptables table)
// and the forward prefixes cali-fhfw-/cali-thfw- (endpoints.go HostEndpointTo*Chains).
calico::HostEndpointChain hep_chain_of(const ChainInfo& c, std::string_view table) {
  std::string_view layer = c.layer.empty() ? table : std::string_view(c.layer);
  if (layer == "raw") return calico::HostEndpointChain::untracked;
  if (layer == "mangle")
    return c.kind == ChainKind::from_host_endpoint ? calico::HostEndpointChain::pre_dnat
                                                   : calico::HostEndpointChain::dnat_egress;
  if (starts_with(c.bare, "cali-fhfw-") || starts_with(c.bare, "cali-thfw-"))
    return calico::HostEndpointChain::forward;
  return calico::HostEndpointChain::host;
}

// The endpoint a Calico endpoint chain polices (is_endpoint kinds only).
calico::Endpoint endpoint_of_chain(const ChainInfo& c, std::string_view table) {
  calico::Endpoint e;
  e.iface = c.suffix;
  e.chain = c.bare;
  switch (c.kind) {
    case ChainKind::from_workload:
      e.role = calico::EndpointRole::workload;
      e.direction = calico::Direction::egress;
      break;
    case ChainKind::to_workload:
      e.role = calico::EndpointRole::workload;
      e.direction = calico::Direction::ingress;
      break;
    case ChainKind::from_host_endpoint:
      e.role = calico::EndpointRole::host_endpoint;
      e.direction = calico::Direction::ingress;
      e.hep_chain = hep_chain_of(c, table);
      break;
    case ChainKind::to_host_endpoint:
      e.role = calico::EndpointRole::host_endpoint;
      e.direction = calico::Direction::egress;
      e.hep_chain = hep_chain_of(c, table);
      break;
    case ChainKind::policy_ingress:
    case ChainKind::policy_egress:
    case ChainKind::group_ingress:
    case ChainKind::group_egress:
    case ChainKind::profile_ingress:
    case ChainKind::profile_egress:
    case ChainKind::wl_dispatch:
    case ChainKind::hep_dispatch:
    case ChainKind::wl_to_host:
    case ChainKind::cidr_block:
    case ChainKind::raw_prerouting:
    case ChainKind::input:
    case ChainKind::output:
    case ChainKind::forward:
    case ChainKind::other_calico:
    case ChainKind::not_calico: break;
  }
  return e;
}

bool contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

// Felix's drop of IPIP (protocol 4) or VXLAN (UDP 4789) packets from a workload, as nft renders it.
bool matches_encapsulation(const RuleRef& rule) {
  return contains(rule.text, "dport 4789") || contains(rule.text, "l4proto ipencap") ||
         contains(rule.text, "l4proto 4 ");
}

// The raw table's reverse-path check: nft's fib expression, or iptables' rpfilter match.
bool matches_rpf(const RuleRef& rule) {
  return contains(rule.text, "fib saddr") || contains(rule.text, "rpfilter");
}

class Locator {
 public:
  Locator(const std::vector<PathStep>& path, const calico::MarkBits& bits)
      : path_(path), bits_(bits) {
    for (std::size_t i = 0; i < path.size(); ++i) {
      const PathStep& s = path[i];
      auto& inv = invs_[s.invocation];
      if (inv.steps.empty()) {
        inv.parent = s.parent_invocation;
        inv.chain = calico::classify_chain(s.rule.nft().table, s.rule.nft().chain);
        inv.table = s.rule.nft().table;
        inv.first_comment = s.chain_first_comment;
      }
      inv.steps.push_back(i);
    }
  }

  Located run(Verdict verdict, std::optional<std::size_t> deciding,
              const std::optional<RuleRef>& rule) const;

 private:
  // The endpoint chain invocation that contains invocation `inv`, or -1.
  int endpoint_of(int inv) const {
    while (inv >= 0) {
      auto it = invs_.find(inv);
      if (it == invs_.end()) return -1;
      if (calico::is_endpoint(it->second.chain.kind)) return inv;
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
  StagePosition locate_stage(int inv) const;
  Position locate_outside(std::size_t step) const;
  void locate_policy_step(Position& p, std::size_t step, Action action) const;
  std::optional<NflogPrefix> nflog_before(std::size_t step) const;
  std::string tier_at(int inv, std::size_t step, int* ordinal) const;
  void set_policy_tier(Position& p, int inv, std::size_t step) const;

  const std::vector<PathStep>& path_;
  calico::MarkBits bits_;
  std::map<int, Invocation> invs_;
};

// The NFLOG rule Calico puts right before a drop or after an accept mark in the same chain.
std::optional<NflogPrefix> Locator::nflog_before(std::size_t step) const {
  const PathStep& s = path_[step];
  if (s.facts.log_prefix) return calico::parse_nflog_prefix(*s.facts.log_prefix);
  if (step == 0) return std::nullopt;
  const PathStep& prev = path_[step - 1];
  if (prev.invocation != s.invocation || !prev.facts.log_prefix) return std::nullopt;
  return calico::parse_nflog_prefix(*prev.facts.log_prefix);
}

// Tier in force at `step` of endpoint invocation `inv`: named by a "Start of tier" comment, or
// counted from the rules that clear the pass bit (iptables-nft hides comments).
std::string Locator::tier_at(int inv, std::size_t step, int* ordinal) const {
  std::string name;
  int n = 0;
  for (std::size_t i : invs_.at(inv).steps) {
    if (i > step) break;
    const PathStep& s = path_[i];
    if (s.facts.clears_mark_bits && (*s.facts.clears_mark_bits & bits_.pass) &&
        !(*s.facts.clears_mark_bits & bits_.accept)) {
      ++n;
      name.clear();
      if (auto t = calico::tier_from_comment(calico::split_comment(s.rule.comment).text)) name = *t;
    }
  }
  *ordinal = n;
  return name;
}

// The tier of a policy decision at `step` (a rule in the policy chain) of endpoint invocation inv.
void Locator::set_policy_tier(Position& p, int inv, std::size_t step) const {
  int ordinal = 0;
  p.tier = tier_at(inv, step, &ordinal);
  p.tier_ordinal.reset();
  if (!p.owner || p.kind != PositionKind::policy_rule || !p.tier.empty()) return;
  const PathStep& s = path_[step];
  // v3.30/31 chain names start with the tier.
  if (s.rule.nft().chain.find('/') != std::string::npos && p.owner->kind.empty()) {
    auto bare = invs_.at(s.invocation).chain.suffix;
    p.tier = bare.substr(0, bare.find('/'));
  } else if (ordinal > 0) {
    p.tier_ordinal = ordinal;
  }
}

void Locator::locate_policy_step(Position& p, std::size_t step, Action action) const {
  const PathStep& s = path_[step];
  const Invocation& inv = invs_.at(s.invocation);
  p.action = action;
  bool profile =
      inv.chain.kind == ChainKind::profile_ingress || inv.chain.kind == ChainKind::profile_egress;
  p.kind = profile ? PositionKind::profile_rule : PositionKind::policy_rule;
  if (profile) {
    PolicyName pn;
    pn.kind = "profile";
    pn.name = inv.chain.suffix;
    pn.chain = inv.chain.bare;
    pn.recovered = !pn.name.empty() && pn.name[0] != '_';
    p.owner = pn;
  } else {
    p.owner = calico::policy_from_chain(inv.chain, inv.first_comment);
  }
  p.rule_id = calico::split_comment(s.rule.comment).rule_id;
  // The NFLOG rule after the mark (flow logs on) names the exact rule index.
  for (std::size_t j = step + 1; j < path_.size() && path_[j].invocation == s.invocation; ++j) {
    if (!path_[j].facts.log_prefix) continue;
    if (auto lp = calico::parse_nflog_prefix(*path_[j].facts.log_prefix); lp && lp->rule_index) {
      p.rule_index = lp->rule_index;
      p.rule_index_exact = true;
      p.nflog_prefix = *path_[j].facts.log_prefix;
      p.nflog_group = path_[j].facts.log_group;
    }
    break;
  }
  if (!p.rule_index && s.facts.action_ordinal >= 0) {
    p.rule_index = s.facts.action_ordinal;
    p.rule_index_counted = true;
  }
}

StagePosition Locator::locate_stage(int inv_id) const {
  const Invocation& inv = invs_.at(inv_id);
  StagePosition st;
  st.endpoint = endpoint_of_chain(inv.chain, inv.table);
  Position& p = st.at;
  // Steps of this stage, including policy and profile chains it jumped to.
  std::vector<std::size_t> steps;
  for (std::size_t i = 0; i < path_.size(); ++i)
    if (descends(path_[i].invocation, inv_id)) steps.push_back(i);
  if (steps.empty()) return st;
  std::optional<std::size_t> last_allow_mark, last_pass_mark;
  for (std::size_t i : steps) {
    const PathStep& s = path_[i];
    const ChainKind k = invs_.at(s.invocation).chain.kind;
    bool in_rules = k != inv.chain.kind && !calico::is_endpoint(k) &&
                    k != ChainKind::group_ingress && k != ChainKind::group_egress;
    if (in_rules && s.facts.sets_mark_bits && (*s.facts.sets_mark_bits & bits_.accept))
      last_allow_mark = i;
    if (in_rules && s.facts.sets_mark_bits && (*s.facts.sets_mark_bits & bits_.pass))
      last_pass_mark = i;
  }
  std::size_t last = steps.back();
  const PathStep& end = path_[last];
  const std::string& act = end.facts.action;
  if (act == "drop" || act == "reject") {
    st.outcome = StageOutcome::deny;
    p.rule = end.rule;
    p.action = Action::deny;
    auto comment = calico::split_comment(end.rule.comment);
    p.rule_id = comment.rule_id;
    p.comment_text = comment.text;
    const std::string& text = comment.text;
    auto log = nflog_before(last);
    if (log) {
      p.nflog_prefix = log->hashed ? ""
                                   : (end.facts.log_prefix ? *end.facts.log_prefix
                                                           : *path_[last - 1].facts.log_prefix);
      p.nflog_group = end.facts.log_prefix ? end.facts.log_group : path_[last - 1].facts.log_group;
    }
    const ChainKind k = invs_.at(end.invocation).chain.kind;
    if (end.invocation != inv_id && k != ChainKind::group_ingress && k != ChainKind::group_egress) {
      locate_policy_step(p, last, Action::deny);
      // v3.30+ sets the drop mark on the matching rule, then drops on the mark.
      for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
        const PathStep& s = path_[*it];
        if (s.invocation == end.invocation && s.facts.sets_mark_bits &&
            (*s.facts.sets_mark_bits & bits_.drop)) {
          locate_policy_step(p, *it, Action::deny);
          break;
        }
      }
      set_policy_tier(p, inv_id, last);
      p.rule = end.rule;
      return st;
    }
    if (end.facts.tests_ct_invalid) {
      p.kind = PositionKind::ct_invalid;
    } else if (contains(text, "admin disabled") ||
               (end.facts.unconditional && end.facts.position == 0)) {
      p.kind = PositionKind::admin_down;
    } else if (contains(text, "encap") || matches_encapsulation(end.rule)) {
      p.kind = PositionKind::encapsulation;
    } else if ((end.facts.tests_mark_clear && (*end.facts.tests_mark_clear & bits_.pass)) ||
               contains(text, "End of tier") || (log && log->end_of_tier())) {
      p.kind = PositionKind::end_of_tier;
      int ordinal = 0;
      p.tier = tier_at(inv_id, last, &ordinal);
      if (auto t = calico::tier_from_comment(text)) p.tier = *t;
      if (log && log->end_of_tier() && !log->hashed) p.tier = log->id;
      if (p.tier.empty()) p.tier_ordinal = ordinal;
    } else if (contains(text, "no profiles") || (log && log->no_profile_matched()) ||
               end.facts.unconditional) {
      p.kind = PositionKind::no_profile;
    } else {
      p.kind = PositionKind::calico_rule;
    }
    return st;
  }
  // Felix's failsafe ports: a host-endpoint chain jumps to cali-failsafe-in/out first, whose
  // accepts end the stage before any policy (static.go failsafeInChain/failsafeOutChain).
  if (act == "accept" && starts_with(invs_.at(end.invocation).chain.bare, "cali-failsafe-")) {
    st.outcome = StageOutcome::allow;
    p.kind = PositionKind::failsafe;
    p.action = Action::allow;
    p.rule = end.rule;
    p.rule_id = calico::split_comment(end.rule.comment).rule_id;
    return st;
  }
  if (act == "accept" && end.facts.tests_ct_established) {
    st.outcome = StageOutcome::allow;
    p.kind = PositionKind::ct_established;
    p.action = Action::allow;
    p.rule = end.rule;
    return st;
  }
  // The stage returned: allowed if a policy or profile set the accept bit.
  if (last_allow_mark) {
    st.outcome = StageOutcome::allow;
    locate_policy_step(p, *last_allow_mark, Action::allow);
    p.rule = path_[*last_allow_mark].rule;
    set_policy_tier(p, inv_id, *last_allow_mark);
    return st;
  }
  if (last_pass_mark) {
    st.outcome = StageOutcome::pass;
    locate_policy_step(p, *last_pass_mark, Action::pass);
    return st;
  }
  st.outcome = act == "accept" ? StageOutcome::allow : StageOutcome::unknown;
  p.kind = PositionKind::calico_rule;
  p.rule = end.rule;
  return st;
}

Position Locator::locate_outside(std::size_t step) const {
  const PathStep& s = path_[step];
  const ChainInfo& ci = invs_.at(s.invocation).chain;
  Position p;
  p.rule = s.rule;
  auto parts = calico::split_comment(s.rule.comment);
  p.rule_id = parts.rule_id;
  p.comment_text = parts.text;
  const bool drop = s.facts.action == "drop";
  switch (ci.kind) {
    case ChainKind::wl_dispatch:
    case ChainKind::hep_dispatch:
      p.kind = drop ? PositionKind::unknown_interface : PositionKind::calico_rule;
      break;
    case ChainKind::raw_prerouting:
      p.kind = drop && matches_rpf(s.rule) ? PositionKind::rpf : PositionKind::calico_rule;
      break;
    case ChainKind::wl_to_host:
      p.kind = s.facts.unconditional || contains(parts.text, "DefaultEndpointToHostAction")
                   ? PositionKind::default_endpoint_to_host
                   : PositionKind::calico_rule;
      break;
    case ChainKind::cidr_block: p.kind = PositionKind::service_loop_prevention; break;
    case ChainKind::not_calico: p.kind = PositionKind::non_calico; break;
    case ChainKind::from_workload:
    case ChainKind::to_workload:
    case ChainKind::from_host_endpoint:
    case ChainKind::to_host_endpoint:
    case ChainKind::policy_ingress:
    case ChainKind::policy_egress:
    case ChainKind::group_ingress:
    case ChainKind::group_egress:
    case ChainKind::profile_ingress:
    case ChainKind::profile_egress:
    case ChainKind::input:
    case ChainKind::output:
    case ChainKind::forward:
    case ChainKind::other_calico: p.kind = PositionKind::calico_rule; break;
  }
  p.action = s.facts.action == "accept" ? Action::allow : Action::deny;
  return p;
}

Located Locator::run(Verdict verdict, std::optional<std::size_t> deciding,
                     const std::optional<RuleRef>& rule) const {
  Located out;
  out.rule = rule;
  // Stages in path order.
  std::map<int, std::size_t> stage_of_inv;
  for (const auto& [id, inv] : invs_)
    if (calico::is_endpoint(inv.chain.kind) && !(inv.parent >= 0 && endpoint_of(inv.parent) >= 0)) {
      stage_of_inv[id] = out.stages.size();
      out.stages.push_back(locate_stage(id));
    }
  if (verdict == Verdict::indeterminate) return out;
  int stage_inv = deciding ? endpoint_of(path_[*deciding].invocation) : -1;
  if (verdict == Verdict::deny && stage_inv >= 0) {
    out.by = Located::By::stage;
    auto it = stage_of_inv.find(stage_inv);
    out.stage = it == stage_of_inv.end() ? 0 : it->second;
  } else if (verdict == Verdict::deny && deciding) {
    out.position = locate_outside(*deciding);
  } else if (verdict == Verdict::allow && !out.stages.empty() &&
             !(deciding && stage_inv < 0 &&
               invs_.at(path_[*deciding].invocation).chain.kind == ChainKind::not_calico &&
               !path_[*deciding].facts.tests_mark_set)) {
    out.by = Located::By::stages;
  } else if (verdict == Verdict::allow && deciding) {
    out.position = locate_outside(*deciding);
  } else {
    Position& p = out.position;
    p.kind = PositionKind::chain_policy;
    p.action = verdict == Verdict::allow ? Action::allow : Action::deny;
    p.rule = rule;
    for (const auto& s : path_)
      if (calico::classify_chain(s.rule.nft().table, s.rule.nft().chain).kind ==
              ChainKind::output &&
          s.facts.action == "return" && contains(s.rule.text, "oifname"))
        ++p.host_to_workload_returns;
  }
  return out;
}

}  // namespace

Located locate_positions(const std::vector<PathStep>& path, Verdict verdict,
                         std::optional<std::size_t> deciding_step,
                         const std::optional<RuleRef>& deciding_rule,
                         const calico::MarkBits& bits) {
  return Locator(path, bits).run(verdict, deciding_step, deciding_rule);
}

void attribute(Report& report, std::optional<std::size_t> deciding_step,
               const calico::MarkBits& bits) {
  calico::explain(report, locate_positions(report.path, report.verdict, deciding_step,
                                           report.decided_by.rule, bits));
}

}  // namespace dpi::nft
