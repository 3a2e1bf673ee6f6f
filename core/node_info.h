// What a node knows about itself that the dataplane does not say: its interfaces, local
// addresses and routes. Read from netlink by a backend, or from a file for offline use.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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

// One policy-routing rule (`ip rule`): when its selectors match, its action says which table
// the lookup consults (or that it fails).
struct IpRule {
  uint32_t priority = 0;
  int family = 4;       // 4 or 6
  bool invert = false;  // "not": the action applies when the selectors do not all match
  std::optional<IpPrefix> src, dst;
  uint32_t fwmark = 0, fwmask = 0;  // fwmask 0: no fwmark selector
  std::string iif, oif;
  std::string action = "lookup";  // lookup, goto, nop, blackhole, unreachable, prohibit
  uint32_t table = 0;             // lookup
  uint32_t goto_priority = 0;     // goto
  int suppress_prefixlength = -1;
  uint8_t tos = 0;                 // 0: any
  std::optional<uint8_t> ipproto;  // l4 protocol number
  std::optional<std::pair<uint16_t, uint16_t>> sport, dport;
  std::optional<std::pair<uint32_t, uint32_t>> uidrange;
  // Selectors dpinspect does not model (l3mdev, tun_id, suppress_ifgroup, unknown actions), as
  // `ip rule` would print them; a lookup they could decide is refused.
  std::string unsupported;
};

// What a route lookup knows about the packet besides its destination.
struct RouteKey {
  IpAddr src;
  uint32_t mark = 0;
  // Input interface; "lo" for packets the node sends; "" when not known. A view: keys live only
  // for one lookup (the evaluator builds one per flow on its hot path).
  std::string_view iif;
  // The packet's protocol and ports, for ipproto/sport/dport rules (0 when the lookup has none).
  uint8_t l4proto = 0;
  uint16_t sport = 0, dport = 0;
  bool has_ports = false;
};

struct RouteResult {
  const Route* route = nullptr;  // null: no route (or refused, see unsupported)
  const IpRule* rule = nullptr;  // the rule whose action gave the answer (rules read only)
  std::string unsupported;       // why dpinspect cannot say which route the kernel picks
};

struct NodeInfo {
  std::vector<Interface> interfaces;
  std::vector<Route> routes;
  // The policy-routing rules, when they were read (live, or a file with "rules"); otherwise the
  // kernel's three default rules are assumed, then any other table in id order.
  std::vector<IpRule> rules;
  bool rules_read = false;

  const Interface* find_interface(const std::string& name) const;
  const Interface* find_interface(int index) const;
  // The route the kernel picks for dst: rules by priority, longest prefix within a table
  // (RouteIndex, core/route_index.h: build one to look up many times).
  RouteResult route(const IpAddr& dst, const RouteKey& key) const;
  // The route for a packet the node itself sends to dst without a mark (null: none, or not
  // decidable from what was read).
  const Route* lookup(const IpAddr& dst) const { return route(dst, RouteKey{{}, 0, "lo"}).route; }
  bool is_local(const IpAddr& a) const;
};

// As `ip rule` prints it: "100: from all fwmark 0x1/0x1 lookup 100".
std::string ip_rule_text(const IpRule& r);
// One of the kernel's three default rules (local, main, default tables).
bool is_default_ip_rule(const IpRule& r);

// The node's rules of one family in the order the kernel tries them (for callers that keep them).
std::vector<const IpRule*> rules_in_order(const NodeInfo& node, int family);
// The walk itself over rules already in that order (rules read from the node).
RouteResult walk_ip_rules(const std::vector<const IpRule*>& rules, const IpAddr& dst,
                          const RouteKey& key,
                          const std::function<const Route*(uint32_t)>& lookup_table);

nlohmann::json to_json(const NodeInfo& node);
Result<NodeInfo> node_info_from_json(const nlohmann::json& j, const std::string& origin);

}  // namespace dpi
