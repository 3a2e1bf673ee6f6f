// `meta random` compared with constants: which sides of the comparison a uniformly random 32-bit
// value can take. iptables-translate writes "-m statistic --mode random --probability p" as
// "meta random & 0x7fffffff < p * 2^31"; kube-proxy's iptables mode chains such rules to pick a
// service endpoint, so each side that can happen is one outcome to explore.
#pragma once

#include <optional>
#include <string>

#include "backends/nftables/model.h"

namespace dpi::nft {

// The sides m can take when its left side is `meta random` with any '&', '|', '^' constants and
// its right side a value, a range or a set of them. nullopt with why set for any other form
// (a concatenation, a set with concatenated keys): the caller makes it indeterminate.
std::optional<RandomStmt> random_sides(const MatchStmt& m, std::string* why);

}  // namespace dpi::nft
