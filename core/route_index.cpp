#include "core/route_index.h"

#include <algorithm>

namespace dpi {

namespace {

AddrInt addr_value(const IpAddr& a) {
  AddrInt v = 0;
  for (std::size_t i = 0; i < a.size(); ++i) v = (v << 8) | a.bytes[i];
  return v;
}

}  // namespace

RouteIndex::RouteIndex(const NodeInfo& node)
    : node_(&node), rules_v4_(rules_in_order(node, 4)), rules_v6_(rules_in_order(node, 6)) {
  auto rank = [](uint32_t t) -> uint64_t {
    switch (t) {
      case 255: return 0;
      case 254: return 1;
      case 253: return 2;
      default: return 3 + uint64_t{t};
    }
  };
  std::vector<uint32_t> ids;
  for (const auto& r : node.routes) ids.push_back(r.table);
  std::sort(ids.begin(), ids.end(), [&](uint32_t a, uint32_t b) { return rank(a) < rank(b); });
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (uint32_t id : ids) {
    Table t;
    t.id = id;
    for (const auto& r : node.routes) {
      if (r.table != id || r.dst.addr.empty()) continue;
      auto& levels = r.dst.addr.is_v4() ? t.v4 : t.v6;
      int bits = r.dst.addr.is_v4() ? 32 : 128;
      int len = std::clamp(r.dst.len, 0, bits);
      auto lv =
          std::find_if(levels.begin(), levels.end(), [&](const Level& l) { return l.len == len; });
      if (lv == levels.end()) {
        levels.push_back(Level{len, {}});
        lv = levels.end() - 1;
      }
      AddrInt net = addr_value(r.dst.addr);
      if (len < bits) net = len == 0 ? 0 : (net >> (bits - len)) << (bits - len);
      auto [it, inserted] = lv->nets.emplace(net, &r);
      // Same prefix: the lower metric wins, ties keep dump order.
      if (!inserted && r.priority < it->second->priority) it->second = &r;
    }
    for (auto* levels : {&t.v4, &t.v6})
      std::sort(levels->begin(), levels->end(),
                [](const Level& a, const Level& b) { return a.len > b.len; });
    tables_.push_back(std::move(t));
  }
  for (const auto& r : node.routes)
    if (r.table == 255 && r.type == "local") local_routes_.push_back(&r);
  for (const auto& i : node.interfaces)
    for (const auto& p : i.addrs) {
      if (p.addr.is_v4()) local_v4_.insert(addr_value(p.addr));
      if (p.addr.is_v6()) local_v6_.insert(addr_value(p.addr));
    }
}

const Route* RouteIndex::table_lookup(uint32_t table, const IpAddr& dst) const {
  if (dst.empty()) return nullptr;
  auto t =
      std::find_if(tables_.begin(), tables_.end(), [&](const Table& x) { return x.id == table; });
  if (t == tables_.end()) return nullptr;
  int bits = dst.is_v4() ? 32 : 128;
  AddrInt a = addr_value(dst);
  for (const auto& l : dst.is_v4() ? t->v4 : t->v6) {
    AddrInt net = l.len == 0 ? 0 : (l.len < bits ? (a >> (bits - l.len)) << (bits - l.len) : a);
    auto it = l.nets.find(net);
    if (it != l.nets.end()) return it->second;
  }
  return nullptr;
}

RouteResult RouteIndex::lookup(const IpAddr& dst, const RouteKey& key) const {
  if (dst.empty() || !node_) return {};
  if (!node_->rules_read) {
    // The kernel's default rules, then the other tables: tables_ is already in that order.
    for (const auto& t : tables_)
      if (const Route* r = table_lookup(t.id, dst); r && r->type != "throw")
        return {r, nullptr, {}};
    return {};
  }
  return walk_ip_rules(dst.is_v4() ? rules_v4_ : rules_v6_, dst, key,
                       [&](uint32_t table) { return table_lookup(table, dst); });
}

bool RouteIndex::is_local(const IpAddr& a) const {
  for (const Route* r : local_routes_)
    if (r->dst.contains(a)) return true;
  if (a.is_v4()) return local_v4_.count(addr_value(a)) > 0;
  if (a.is_v6()) return local_v6_.count(addr_value(a)) > 0;
  return false;
}

}  // namespace dpi
