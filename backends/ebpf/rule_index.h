// From a policy-debug program to Calico's meaning of each instruction: tier, policy, rule index,
// action and rule id (MatchID), end-of-tier and no-profile positions; the roles of the program's
// map fds; IP-set name -> id pairs. Comment dialects (reference §2.3, §8, §9):
//   v3.28-v3.29  "Start of policy ns/tier.name", "End of tier t", end-of-tier ids 0
//   v3.30-v3.31  "Start of policy ns/tier.name", "End of tier t: deny|pass|"
//   v3.32        "Start of <Kind> ns/name n", "Start of rule ns/name <rule>", "End of tier t: a"
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/ebpf/debug_json.h"
#include "core/result.h"

namespace dpi::ebpf {

struct PolicyName {
  std::string kind;  // "NetworkPolicy", "GlobalNetworkPolicy", "KubernetesNetworkPolicy", ...;
                     // before v3.32 inferred from the name ("" when it cannot be)
  std::string ns;    // "" for cluster-scoped policies
  std::string name;  // without tier prefix
  std::string raw;   // as the comment wrote it
};

enum class SiteKind : uint8_t { rule, end_of_tier, no_profile };

struct RuleSite {
  SiteKind kind = SiteKind::rule;
  std::size_t first = 0;  // instruction range [first, end) in the concatenated stream
  std::size_t end = 0;
  std::string tier;                   // "" for profile rules and the no-profile rule
  std::optional<PolicyName> policy;   // rules of a policy
  std::string profile;                // rules of a profile (named from v3.32 only)
  int rule_index = -1;                // order of "Start of rule" within its policy/profile
  std::string action;                 // allow, deny, pass, log; "" when the comment has none
  std::optional<uint64_t> match_id;   // from the comment, else from the recorded immediate
  std::optional<std::size_t> record;  // instruction of the ld_imm64 that records the id
  std::string comment;                // the "Start of rule ..." / "End of tier ..." text
  // Host policy (pre-DNAT, apply-on-forward, normal host tiers and host profiles): before the
  // allowed_by_host_policy label. A workload's program has a host no-profile rule there too.
  bool host = false;
};

enum class MapFdRole : uint8_t { state, ip_sets, static_progs, policy_jump, unknown };
const char* map_fd_role_name(MapFdRole r);

struct MapFdRef {
  int32_t fd = 0;  // Felix's fd number at generation time
  MapFdRole role = MapFdRole::unknown;
  std::size_t first_use = 0;  // instruction index
};

struct IpSetRef {
  std::string name;  // "s:abc..." as Felix names it
  uint64_t id = 0;
};

struct RuleIndex {
  std::vector<RuleSite> sites;    // in instruction order
  std::vector<MapFdRef> maps;     // distinct fds in order of first use (= bpf_prog_info.map_ids)
  std::vector<IpSetRef> ip_sets;  // distinct, in order of appearance

  // Sites recording this id (several when ids repeat, e.g. 0).
  std::vector<const RuleSite*> find_id(uint64_t id) const;
  const RuleSite* site_at(std::size_t insn) const;
  std::optional<int32_t> fd_for(MapFdRole role) const;
};

Result<RuleIndex> build_rule_index(const DebugProgram& prog);

// The action in a rule's text form (`action:"allow"`), or "".
std::string rule_text_action(std::string_view rule_text);
// "ns/tier.name" / "tier.name" / "ns/knp.default.name" (<= v3.31) under tier `tier`.
PolicyName parse_legacy_policy_name(std::string_view raw, std::string_view tier);

}  // namespace dpi::ebpf
