// Helpers shared by the ipset readers (netlink and `ipset save` text).
#pragma once

#include <optional>
#include <string>

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
