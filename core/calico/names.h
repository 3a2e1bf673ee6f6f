// Calico's chain and comment vocabulary: what a chain name or rule comment says about the
// endpoint, policy or profile it belongs to (reference: shared/reference/calico-nftables.md).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/report.h"

namespace dpi::calico {

enum class ChainKind {
  from_workload,  // cali-fw-<iface>: egress policy of a workload
  to_workload,    // cali-tw-<iface>: ingress policy
  from_host_endpoint,
  to_host_endpoint,
  policy_ingress,   // cali-pi-*
  policy_egress,    // cali-po-*
  group_ingress,    // cali-gi-*
  group_egress,     // cali-go-*
  profile_ingress,  // cali-pri-*
  profile_egress,   // cali-pro-*
  wl_dispatch,      // cali-from/to-wl-dispatch[-x]
  hep_dispatch,
  wl_to_host,
  cidr_block,
  raw_prerouting,  // raw cali-PREROUTING (RPF)
  input,           // cali-INPUT
  output,          // cali-OUTPUT
  forward,         // cali-FORWARD
  other_calico,
  not_calico,
};

struct ChainInfo {
  ChainKind kind = ChainKind::not_calico;
  std::string bare;    // name without the native nft layer prefix ("filter-")
  std::string layer;   // filter, raw, mangle, nat, or "" for iptables mode
  std::string suffix;  // interface, policy id or profile name
};

ChainInfo classify_chain(std::string_view table, std::string_view chain);
bool is_endpoint(ChainKind k);

// "cali:abc; Policy x ingress" -> rule id "cali:abc" and text "Policy x ingress".
struct CommentParts {
  std::string rule_id;
  std::string text;
};
CommentParts split_comment(std::string_view comment);

// Policy identity from its chain suffix and, when hashed, from its first rule's comment.
PolicyName policy_from_chain(const ChainInfo& chain, std::string_view first_comment);
std::optional<std::string> tier_from_comment(std::string_view text);

}  // namespace dpi::calico
