// The per-CPU state (cali_state*, key 0): the only memory a policy program reads and writes.
// Offsets by value size (reference §1.6, §6): 464 B v3.27, 480 B v3.28-v3.29 (no eventhdr),
// 488 B v3.30-v3.31 and 512 B v3.32 (eventhdr: +8).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "backends/ebpf/bytes.h"
#include "backends/ebpf/versions.h"
#include "core/ip.h"
#include "core/result.h"

namespace dpi::ebpf {

struct StateLayout {
  uint32_t size;
  ReleaseRange releases;
  uint32_t ip_src, ip_dst, pre_nat_ip_dst, post_nat_ip_dst;
  uint32_t pol_rc, sport, dport, pre_nat_dport, post_nat_dport, ip_proto;
  uint32_t rules_hit, rule_ids, flags;
};

// nullptr for a size no release uses.
const StateLayout* state_layout(uint32_t value_size);
Result<const StateLayout*> state_layout_checked(uint32_t value_size);

namespace pol_rc {
inline constexpr int32_t no_match = 0;
inline constexpr int32_t allow = 1;
inline constexpr int32_t deny = 2;
inline constexpr int32_t tail_call_failed = 10;
}  // namespace pol_rc

namespace state_flag {
inline constexpr uint64_t nat_outgoing = 0x1;
inline constexpr uint64_t skip_fib = 0x2;
inline constexpr uint64_t dest_is_host = 0x4;
inline constexpr uint64_t src_is_host = 0x8;
inline constexpr uint64_t log_packet = 0x400;
}  // namespace state_flag

inline constexpr std::size_t kMaxRuleIds = 32;

// The fields calico_tc_main fills for the policy program, and those the program writes back.
struct PolicyState {
  IpAddr ip_src, ip_dst, pre_nat_ip_dst, post_nat_ip_dst;  // v4 in the slot's first 4 bytes
  uint16_t sport = 0;
  uint16_t dport = 0;  // for ICMP: type in the low byte, code in the high byte
  uint16_t pre_nat_dport = 0, post_nat_dport = 0;
  uint8_t ip_proto = 0;
  uint64_t flags = 0;
  // written by the program
  int32_t pol_rc = 0;
  uint32_t rules_hit = 0;
  std::array<uint64_t, kMaxRuleIds> rule_ids{};

  void set_icmp(uint8_t type, uint8_t code) { dport = static_cast<uint16_t>(code << 8 | type); }
  // The recorded ids, rules_hit of them (capped at 32): the last one decided.
  std::vector<uint64_t> recorded_ids() const;
};

// A zeroed value of layout.size bytes with the fields set.
std::vector<uint8_t> encode_state(const StateLayout& layout, const PolicyState& s);
// family: how to read the address slots (4 or 6).
Result<PolicyState> decode_state(Bytes value, int family);

}  // namespace dpi::ebpf
