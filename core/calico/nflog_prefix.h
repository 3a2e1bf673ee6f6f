// Calico's NFLOG prefix grammar (rules/nflogprefix.go): <A><O><D>[<idx>]|<id>, e.g.
// "DPE|platform" (end of tier platform, egress, deny) or "API0|np/ns/allow" (rule 0 allowed).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dpi::calico {

struct NflogPrefix {
  std::string action;     // allow, deny, pass
  std::string owner;      // policy, profile
  std::string direction;  // ingress, egress
  std::optional<int> rule_index;
  std::string id;       // policy id, profile name, or tier name for end-of-tier prefixes
  bool hashed = false;  // prefixes of 63+ characters are shortened with a hash in the middle

  // End of tier when a policy-owner prefix has no rule index ("DPE|tier", "PPI|tier").
  bool end_of_tier() const { return owner == "policy" && !rule_index; }
  bool no_profile_matched() const { return owner == "profile" && action == "deny" && id.empty(); }
};

std::optional<NflogPrefix> parse_nflog_prefix(std::string_view s);

}  // namespace dpi::calico
