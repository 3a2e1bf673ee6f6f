#include "core/report.h"

namespace dpi {

const NftRuleLocation& RuleRef::nft() const {
  static const NftRuleLocation kNone;
  const auto* n = std::get_if<NftRuleLocation>(&location);
  return n ? *n : kNone;
}

NftRuleLocation& RuleRef::nft() {
  if (!std::holds_alternative<NftRuleLocation>(location)) location = NftRuleLocation{};
  return std::get<NftRuleLocation>(location);
}

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::allow: return "allow";
    case Verdict::deny: return "deny";
    case Verdict::indeterminate: return "indeterminate";
  }
  return "?";
}

std::string_view decision_kind_name(DecisionKind k) {
  switch (k) {
    case DecisionKind::policy_rule: return "policy_rule";
    case DecisionKind::profile_rule: return "profile_rule";
    case DecisionKind::end_of_tier_deny: return "end_of_tier_deny";
    case DecisionKind::no_profile_matched: return "no_profile_matched";
    case DecisionKind::ct_invalid: return "ct_invalid";
    case DecisionKind::ct_established: return "ct_established";
    case DecisionKind::unknown_interface: return "unknown_interface";
    case DecisionKind::admin_down: return "admin_down";
    case DecisionKind::encap_from_workload: return "encap_from_workload";
    case DecisionKind::rpf_failure: return "rpf_failure";
    case DecisionKind::default_endpoint_to_host: return "default_endpoint_to_host";
    case DecisionKind::service_loop_prevention: return "service_loop_prevention";
    case DecisionKind::failsafe: return "failsafe";
    case DecisionKind::calico_rule: return "calico_rule";
    case DecisionKind::non_calico: return "non_calico";
    case DecisionKind::chain_policy: return "chain_policy";
    case DecisionKind::unknown: return "unknown";
  }
  return "unknown";
}

std::string PolicyName::display() const {
  if (!recovered) return chain + " (name not recoverable: hashed chain name and no comment)";
  std::string s;
  if (!kind.empty() && kind != "profile") s += kind + "/";
  if (!ns.empty()) s += ns + "/";
  return s + name;
}

int exit_code_for(Verdict v) {
  switch (v) {
    case Verdict::allow: return 0;
    case Verdict::deny: return 1;
    case Verdict::indeterminate: return 2;
  }
  return 2;
}

}  // namespace dpi
