// One rule's counter, read from nf_tables by handle (inspect --counters).
#pragma once

#include <optional>

#include "core/dataplane.h"
#include "core/report.h"
#include "core/result.h"

namespace dpi::nft {

// NFT_MSG_GETRULE for exactly this rule in the calling thread's namespace: its anonymous
// `counter` expression, or nullopt when it has none. not_found when the rule is gone (the
// ruleset changed since it was read). Needs CAP_NET_ADMIN: ErrorCode::permission otherwise.
Result<std::optional<RuleCounter>> read_rule_counter(const NftRuleLocation& at);

// The nfproto number of an nft family name ("ip" -> NFPROTO_IPV4); nullopt for an unknown one.
std::optional<uint8_t> family_number(const std::string& family);

}  // namespace dpi::nft
