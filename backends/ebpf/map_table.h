// Calico's pinned maps per release: pin name, type, key/value sizes, max entries. The sizes are
// what selects a layout at runtime (Felix recreates a map whose sizes differ), so every decoder
// checks them against this table. Sources: docs/ebpf-maps.md.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "backends/ebpf/versions.h"

namespace dpi::ebpf {

// The kernel's BPF_MAP_TYPE_* numbers, so that live map info compares directly.
enum class MapType : uint32_t {
  hash = 1,
  array = 2,
  prog_array = 3,
  percpu_hash = 5,
  percpu_array = 6,
  lru_hash = 9,
  lpm_trie = 11,
};
std::string_view map_type_name(MapType t);

enum class MapRole : uint8_t {
  ifstate,
  state,
  counters,
  rule_counters,
  progs,      // generic programs, one map for both tc hooks (<= v3.31)
  progs_ing,  // v3.32+: tc ingress hook
  progs_egr,
  jump,  // policy programs, one map for both tc hooks (<= v3.31)
  jump_ing,
  jump_egr,
  xdp_progs,
  xdp_jump,
  ip_sets,
  routes,
  conntrack,
  nat_fe,
  nat_be,
  nat_aff,
  failsafes,  // cali_v4_fsafes2: ports a host endpoint lets through before its policy
};
std::string_view map_role_name(MapRole r);

struct MapSpec {
  MapRole role;
  int family;  // 4 or 6 for per-family maps, 0 for maps shared by both
  std::string_view pin_name;
  MapType type;
  uint32_t key_size;
  uint32_t value_size;
  uint32_t max_entries;  // Felix's default; some are configurable (conntrack, NAT)
  bool signature;        // present on every node of the layout: detection requires it
};

// One layout: the releases that pin exactly these maps.
struct Layout {
  ReleaseRange releases;
  std::vector<MapSpec> maps;
  uint32_t counters_n() const;  // counters value size / 8
};

// The hook a program is attached to (not the policy direction: reference §1.1).
enum class AttachHook : uint8_t { tc_ingress, tc_egress, xdp };
const char* attach_hook_name(AttachHook h);

// Every known layout, oldest first.
std::span<const Layout> layouts();
const Layout& layout_for(Release r);
// nullptr when the layout has no such map (e.g. jump_ing before v3.32).
const MapSpec* find_map(const Layout& l, MapRole role, int family = 0);
// The policy jump map a hook's programs sit in: cali_jump_ing2/_egr2 (v3.32+), cali_jump3 for
// both tc hooks (v3.28-v3.31), cali_jump2 (v3.27), xdp_cali_jump* for XDP.
const MapSpec* policy_jump_map(const Layout& l, AttachHook hook);
// Sub-program stride in that map: 10000 (tc, v3.28+), 100 (XDP); v3.27 has no sub-programs (0).
uint32_t policy_jump_stride(const Layout& l, AttachHook hook);

}  // namespace dpi::ebpf
