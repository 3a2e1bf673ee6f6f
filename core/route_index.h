// The one route lookup: the node's routes and local addresses indexed once, walked through
// its ip rules as the kernel does. NodeInfo::route and every backend's lookups use it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/node_info.h"

namespace dpi {

// An address as one big-endian integer, for hashing.
using AddrInt = unsigned __int128;
struct AddrIntHash {
  std::size_t operator()(AddrInt v) const {
    uint64_t x =
        static_cast<uint64_t>(v) ^ (static_cast<uint64_t>(v >> 64) * 0x9E3779B97F4A7C15ull);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return static_cast<std::size_t>(x);
  }
};

// The node's routes and local addresses indexed once, with the kernel's answers: tables in the
// kernel's rule order, longest prefix first, then lowest metric, then dump order; a throw route
// moves on to the next table.
class RouteIndex {
 public:
  RouteIndex() = default;
  explicit RouteIndex(const NodeInfo& node);
  // The kernel's route for dst, through the node's ip rules (node_info.h).
  RouteResult lookup(const IpAddr& dst, const RouteKey& key) const;
  // Longest-prefix match in one routing table.
  const Route* table_lookup(uint32_t table, const IpAddr& dst) const;
  bool is_local(const IpAddr& a) const;

 private:
  struct Level {
    int len = 0;
    std::unordered_map<AddrInt, const Route*, AddrIntHash> nets;
  };
  struct Table {
    uint32_t id = 0;
    std::vector<Level> v4, v6;  // longest prefix first
  };
  const NodeInfo* node_ = nullptr;
  std::vector<const IpRule*> rules_v4_, rules_v6_;  // in the kernel's order, sorted once
  std::vector<Table> tables_;
  std::vector<const Route*> local_routes_;                        // table local, type local
  std::unordered_set<AddrInt, AddrIntHash> local_v4_, local_v6_;  // interface addresses
};

}  // namespace dpi
