// The live node: interfaces, addresses and routes as rtnetlink reports them.
#pragma once

#include "core/node_info.h"
#include "core/result.h"

namespace dpi::os {

// Reads the calling thread's network namespace (wrap in in_netns for another one). Needs no
// privilege. Interfaces come sorted by index; routes of all tables, IPv4 then IPv6, in the
// kernel's dump order. Multipath routes are reduced to their first nexthop.
Result<NodeInfo> read_node_info();

}  // namespace dpi::os
