// cali_iface* (ifindex -> interface state): names, flags and the policy program indices.
// Reference §1.1 (52-byte value, v3.28+) and §6 (40-byte value, v3.27).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/ebpf/bytes.h"
#include "backends/ebpf/map_table.h"
#include "core/result.h"

namespace dpi::ebpf {

namespace ifstate_flag {
inline constexpr uint32_t wep = 0x1;
inline constexpr uint32_t v4_ready = 0x2;  // v3.27: "ready"
inline constexpr uint32_t v6_ready = 0x4;
inline constexpr uint32_t hep = 0x8;
inline constexpr uint32_t bond = 0x10;
inline constexpr uint32_t bond_slave = 0x20;
inline constexpr uint32_t vxlan = 0x40;
inline constexpr uint32_t ipip = 0x80;
inline constexpr uint32_t wireguard = 0x100;
inline constexpr uint32_t l3 = 0x200;
inline constexpr uint32_t not_managed = 0x400;
}  // namespace ifstate_flag

// Names of the set bits, lowest first; unknown bits as "0x...". Flags 0 is a host interface.
std::vector<std::string> ifstate_flag_names(uint32_t flags);

// A policy index: nullopt where Felix wrote -1 (no program). 0 is a real index.
using PolicyIndex = std::optional<uint32_t>;

struct IfState {
  uint32_t flags = 0;
  std::string name;
  // By tc hook, not by policy direction: ingress_v4 is the hook that runs a workload's egress
  // policy (reference §1.1).
  PolicyIndex xdp_v4, ingress_v4, egress_v4;
  PolicyIndex xdp_v6, ingress_v6, egress_v6;  // v3.27 has one set: the v4 fields
  PolicyIndex filter_ingress, filter_egress;
  bool dual_stack_layout = true;  // false for v3.27's 40-byte value

  // The index of the program attached at `hook` for `family` (4 or 6).
  PolicyIndex index_for(AttachHook hook, int family) const;
};

Result<uint32_t> decode_ifstate_key(Bytes key);
Result<IfState> decode_ifstate_value(Bytes value);

}  // namespace dpi::ebpf
