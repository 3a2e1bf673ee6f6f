#include "backends/ebpf/map_table.h"

namespace dpi::ebpf {

std::string_view map_type_name(MapType t) {
  switch (t) {
    case MapType::hash: return "hash";
    case MapType::array: return "array";
    case MapType::prog_array: return "prog_array";
    case MapType::percpu_hash: return "percpu_hash";
    case MapType::percpu_array: return "percpu_array";
    case MapType::lru_hash: return "lru_hash";
    case MapType::lpm_trie: return "lpm_trie";
  }
  return "unknown";
}

std::string_view map_role_name(MapRole r) {
  switch (r) {
    case MapRole::ifstate: return "ifstate";
    case MapRole::state: return "state";
    case MapRole::counters: return "counters";
    case MapRole::rule_counters: return "rule counters";
    case MapRole::progs: return "programs";
    case MapRole::progs_ing: return "ingress programs";
    case MapRole::progs_egr: return "egress programs";
    case MapRole::jump: return "policy jump";
    case MapRole::jump_ing: return "ingress policy jump";
    case MapRole::jump_egr: return "egress policy jump";
    case MapRole::xdp_progs: return "XDP programs";
    case MapRole::xdp_jump: return "XDP policy jump";
    case MapRole::ip_sets: return "IP sets";
    case MapRole::routes: return "routes";
    case MapRole::conntrack: return "conntrack";
    case MapRole::nat_fe: return "NAT frontends";
    case MapRole::nat_be: return "NAT backends";
    case MapRole::nat_aff: return "NAT affinity";
    case MapRole::failsafes: return "failsafes";
  }
  return "unknown";
}

namespace {

constexpr uint32_t kTcJump = 10000 * 24;  // entry points x sub-programs (v3.28+)

// Maps whose layout did not change from v3.27 to v3.32 (reference §1.3-1.5, felix/bpf/nat/maps.go,
// felix/bpf-gpl/nat_types.h): v4 and v6 twins.
void add_family_maps(std::vector<MapSpec>& m, std::string_view ct4, std::string_view ct6,
                     MapType ct_type) {
  m.push_back({MapRole::ip_sets, 4, "cali_v4_ip_sets", MapType::lpm_trie, 20, 4, 1048576, false});
  m.push_back({MapRole::ip_sets, 6, "cali_v6_ip_sets", MapType::lpm_trie, 32, 4, 1048576, false});
  m.push_back({MapRole::routes, 4, "cali_v4_routes", MapType::lpm_trie, 8, 8, 262144, false});
  m.push_back({MapRole::routes, 6, "cali_v6_routes", MapType::lpm_trie, 20, 20, 262144, false});
  m.push_back({MapRole::conntrack, 4, ct4, ct_type, 16, 88, 512000, false});
  m.push_back({MapRole::conntrack, 6, ct6, ct_type, 40, 128, 512000, false});
  m.push_back({MapRole::nat_fe, 4, "cali_v4_nat_fe3", MapType::lpm_trie, 16, 20, 65536, false});
  m.push_back({MapRole::nat_fe, 6, "cali_v6_nat_fe3", MapType::lpm_trie, 40, 20, 65536, false});
  m.push_back({MapRole::nat_be, 4, "cali_v4_nat_be", MapType::hash, 8, 8, 262144, false});
  m.push_back({MapRole::nat_be, 6, "cali_v6_nat_be", MapType::hash, 8, 20, 262144, false});
  m.push_back({MapRole::nat_aff, 4, "cali_v4_nat_aff", MapType::lru_hash, 16, 16, 65536, false});
  m.push_back({MapRole::nat_aff, 6, "cali_v6_nat_aff", MapType::lru_hash, 40, 32, 65536, false});
  // felix/bpf/failsafes/failsafes_map.go (version 2 from v3.27 to v3.32): prefixlen, port, proto,
  // flags, address.
  m.push_back({MapRole::failsafes, 4, "cali_v4_fsafes2", MapType::lpm_trie, 12, 4, 65536, false});
  m.push_back({MapRole::failsafes, 6, "cali_v6_fsafes2", MapType::lpm_trie, 24, 4, 65536, false});
}

MapSpec ifstate4() {
  return {MapRole::ifstate, 0, "cali_iface4", MapType::hash, 4, 52, 1000, true};
}
MapSpec rule_ctrs() {
  return {MapRole::rule_counters, 0, "cali_rule_ctrs2", MapType::percpu_hash, 8, 8, 10000, true};
}
MapSpec counters(std::string_view name, uint32_t n) {
  return {MapRole::counters, 0, name, MapType::percpu_hash, 8, 8 * n, 20000, true};
}
MapSpec state(std::string_view name, uint32_t size) {
  return {MapRole::state, 0, name, MapType::percpu_array, 4, size, 2, true};
}
MapSpec prog_array(MapRole role, std::string_view name, uint32_t max) {
  return {role, 0, name, MapType::prog_array, 4, 4, max, true};
}

// v3.28 to v3.31: one policy jump map and one generic program map for both tc hooks.
void add_v328_progs(std::vector<MapSpec>& m) {
  m.push_back(prog_array(MapRole::progs, "cali_progs3", 400));
  m.push_back(prog_array(MapRole::jump, "cali_jump3", kTcJump));
  m.push_back(prog_array(MapRole::xdp_progs, "xdp_cali_progs3", 400));
  m.push_back(prog_array(MapRole::xdp_jump, "xdp_cali_jump3", 100 * 24));
}

std::vector<Layout> build() {
  std::vector<Layout> out;
  {  // v3.27 (reference §6): 40-byte ifstate, no sub-programs, flags at 408 in the state.
    Layout l{{Release::v3_27, Release::v3_27}, {}};
    l.maps.push_back({MapRole::ifstate, 0, "cali_iface3", MapType::hash, 4, 40, 1000, true});
    l.maps.push_back(state("cali_state4", 464));
    l.maps.push_back(counters("cali_counters2", 14));
    l.maps.push_back(rule_ctrs());
    l.maps.push_back(prog_array(MapRole::progs, "cali_progs2", 200));
    l.maps.push_back(prog_array(MapRole::jump, "cali_jump2", 10000));
    l.maps.push_back(prog_array(MapRole::xdp_progs, "xdp_cali_progs2", 200));
    l.maps.push_back(prog_array(MapRole::xdp_jump, "xdp_cali_jump2", 100));
    add_family_maps(l.maps, "cali_v4_ct3", "cali_v6_ct3", MapType::hash);
    out.push_back(std::move(l));
  }
  {  // v3.28 and v3.29 pin identical maps (reference §9).
    Layout l{{Release::v3_28, Release::v3_29}, {}};
    l.maps.push_back(ifstate4());
    l.maps.push_back(state("cali_state4", 480));
    l.maps.push_back(counters("cali_counters2", 14));
    l.maps.push_back(rule_ctrs());
    add_v328_progs(l.maps);
    add_family_maps(l.maps, "cali_v4_ct3", "cali_v6_ct3", MapType::hash);
    out.push_back(std::move(l));
  }
  {  // v3.30: eventhdr in the state (488 B), 17 counters.
    Layout l{{Release::v3_30, Release::v3_30}, {}};
    l.maps.push_back(ifstate4());
    l.maps.push_back(state("cali_state4", 488));
    l.maps.push_back(counters("cali_counters3", 17));
    l.maps.push_back(rule_ctrs());
    add_v328_progs(l.maps);
    add_family_maps(l.maps, "cali_v4_ct3", "cali_v6_ct3", MapType::hash);
    out.push_back(std::move(l));
  }
  {  // v3.31: LRU conntrack (ct4), 25 counters.
    Layout l{{Release::v3_31, Release::v3_31}, {}};
    l.maps.push_back(ifstate4());
    l.maps.push_back(state("cali_state4", 488));
    l.maps.push_back(counters("cali_counters5", 25));
    l.maps.push_back(rule_ctrs());
    add_v328_progs(l.maps);
    add_family_maps(l.maps, "cali_v4_ct4", "cali_v6_ct4", MapType::lru_hash);
    out.push_back(std::move(l));
  }
  for (auto [rel, n] : {std::pair{Release::v3_32_0, 26u}, std::pair{Release::v3_32_1, 27u}}) {
    // v3.32: per-hook program and jump maps, 512-byte state; v3.32.1 adds NO_HOST_IP.
    Layout l{{rel, rel}, {}};
    l.maps.push_back(ifstate4());
    l.maps.push_back(state("cali_state6", 512));
    l.maps.push_back(counters("cali_counters6", n));
    l.maps.push_back(rule_ctrs());
    l.maps.push_back(prog_array(MapRole::progs_ing, "cali_progs_ing2", 400));
    l.maps.push_back(prog_array(MapRole::progs_egr, "cali_progs_egr2", 400));
    l.maps.push_back(prog_array(MapRole::jump_ing, "cali_jump_ing2", kTcJump));
    l.maps.push_back(prog_array(MapRole::jump_egr, "cali_jump_egr2", kTcJump));
    l.maps.push_back(prog_array(MapRole::xdp_progs, "xdp_cali_progs3", 400));
    l.maps.push_back(prog_array(MapRole::xdp_jump, "xdp_cali_jump3", 100 * 24));
    add_family_maps(l.maps, "cali_v4_ct4", "cali_v6_ct4", MapType::lru_hash);
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace

const char* attach_hook_name(AttachHook h) {
  switch (h) {
    case AttachHook::tc_ingress: return "tc ingress";
    case AttachHook::tc_egress: return "tc egress";
    case AttachHook::xdp: return "xdp";
  }
  return "?";
}

const MapSpec* policy_jump_map(const Layout& l, AttachHook hook) {
  switch (hook) {
    case AttachHook::tc_ingress:
      if (const MapSpec* m = find_map(l, MapRole::jump_ing)) return m;
      return find_map(l, MapRole::jump);
    case AttachHook::tc_egress:
      if (const MapSpec* m = find_map(l, MapRole::jump_egr)) return m;
      return find_map(l, MapRole::jump);
    case AttachHook::xdp: return find_map(l, MapRole::xdp_jump);
  }
  return nullptr;
}

uint32_t policy_jump_stride(const Layout& l, AttachHook hook) {
  if (l.releases.last == Release::v3_27) return 0;
  return hook == AttachHook::xdp ? 100 : 10000;
}

uint32_t Layout::counters_n() const {
  const MapSpec* c = find_map(*this, MapRole::counters);
  return c ? c->value_size / 8 : 0;
}

std::span<const Layout> layouts() {
  static const std::vector<Layout> table = build();
  return table;
}

const Layout& layout_for(Release r) {
  for (const Layout& l : layouts())
    if (l.releases.contains(r)) return l;
  return layouts().back();  // unreachable: every Release is in one layout
}

const MapSpec* find_map(const Layout& l, MapRole role, int family) {
  for (const MapSpec& m : l.maps)
    if (m.role == role && (m.family == 0 || family == 0 || m.family == family)) return &m;
  return nullptr;
}

}  // namespace dpi::ebpf
