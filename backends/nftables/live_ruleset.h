// The live nftables ruleset and a cheap way to tell whether it changed.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace dpi::nft {

// `nft -j -a list ruleset` of the calling thread's network namespace (wrap in in_netns for
// another one), via libnftables. Needs CAP_NET_ADMIN: ErrorCode::permission otherwise.
Result<std::string> list_ruleset_json();

// The nf_tables generation id (NFT_MSG_GETGEN): bumped by every committed ruleset change in
// this namespace, so equal values before and after list_ruleset_json() mean the listing is one
// consistent ruleset. Needs CAP_NET_ADMIN.
Result<uint32_t> ruleset_generation();

}  // namespace dpi::nft
