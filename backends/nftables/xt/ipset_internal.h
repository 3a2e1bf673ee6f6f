// Helpers shared by the ipset readers (netlink and `ipset save` text).
#pragma once

#include <optional>
#include <string>

#include "backends/nftables/model.h"
#include "backends/nftables/xt/ipsets.h"

namespace dpi::nft::xt {

// The span of addr/cidr (cidr may exceed the width: then the address itself).
Range prefix_range(const Bytes& addr, int cidr);
Range exact_range(const Bytes& v);
// Applies a hash:ip netmask to the first (address) component of every member.
void apply_netmask(Ipset& s);
// Checks that every member has one range per key component.
std::optional<std::string> check_members(const Ipset& s);

}  // namespace dpi::nft::xt

namespace dpi::nft::xt {

// The elements a lookup in s matches, one Range per key component, with nomatch entries
// resolved the way hash:*net* sets look up: the most specific entry containing the value
// decides. return_nomatch (xt_set --return-nomatch) makes nomatch entries the matching ones and
// normal entries non-matching. nullopt + *why when nomatch entries cannot be resolved into plain
// intervals (more than one ranged component, or partially overlapping ranges).
std::optional<std::vector<SetElem>> resolve_members(const Ipset& s, bool return_nomatch,
                                                    std::string* why);

}  // namespace dpi::nft::xt
