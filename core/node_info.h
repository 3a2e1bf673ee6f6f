// What a node knows about itself that the dataplane does not say: its interfaces, local
// addresses and routes. Read from netlink by a backend, or from a file for offline use.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/ip.h"
#include "core/result.h"

namespace dpi {

struct Interface {
  int index = 0;
  std::string name;
  bool up = false;
  std::vector<IpPrefix> addrs;
};

struct Route {
  IpPrefix dst;
  std::string type = "unicast";  // unicast, local, broadcast, blackhole, unreachable, prohibit...
  std::string dev;               // empty for blackhole and friends
  int oif = 0;
  std::optional<IpAddr> gateway;
  uint32_t table = 254;  // main; local is 255
  uint32_t priority = 0;
};

struct NodeInfo {
  std::vector<Interface> interfaces;
  std::vector<Route> routes;

  const Interface* find_interface(const std::string& name) const;
  const Interface* find_interface(int index) const;
  // Longest-prefix match over the local table first, then main, as the kernel's default rules do.
  const Route* lookup(const IpAddr& dst) const;
  bool is_local(const IpAddr& a) const;
};

nlohmann::json to_json(const NodeInfo& node);
Result<NodeInfo> node_info_from_json(const nlohmann::json& j, const std::string& origin);

}  // namespace dpi
