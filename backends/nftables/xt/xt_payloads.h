// The parameters of iptables-nft's compat expressions (nft_compat "match"/"target"), which
// `nft -j list ruleset` prints without them: read from the kernel's own rule dump.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"

namespace dpi::nft {

// One nft_compat expression: NFTA_MATCH_* or NFTA_TARGET_* as the kernel dumps it.
struct XtExpr {
  bool target = false;
  std::string name;  // "conntrack", "set", "MARK", ...
  uint32_t rev = 0;
  std::vector<uint8_t> info;  // the extension's struct (xt_conntrack_mtinfo3, ...), host order
  bool operator==(const XtExpr&) const = default;
};

struct RuleKey {
  std::string family, table, chain;  // family as nft prints it: ip, ip6, inet, arp, bridge, netdev
  uint64_t handle = 0;
  auto operator<=>(const RuleKey&) const = default;
};

// The xt expressions of each rule, in the order they appear in the rule (the same order as the
// rule's {"xt": ...} statements in nft's JSON). Rules without any are absent.
using XtPayloads = std::map<RuleKey, std::vector<XtExpr>>;

// NFT_MSG_GETRULE dump (all families) of the calling thread's network namespace.
// Errors: permission (needs CAP_NET_ADMIN), system.
Result<XtPayloads> read_xt_payloads();

// The same from saved reply bytes of that dump (4-byte aligned; see xt::nl_parse).
Result<XtPayloads> xt_payloads_from_dump(const void* buf, std::size_t len);

// nft's name for an NFPROTO_* value ("ip" for 2); "" when unknown.
std::string nft_family_name(int nfproto);

}  // namespace dpi::nft
