// Synthetic policy programs shaped like the ones Felix generates (reference: calico-ebpf.md §2):
// header (state lookup into r9), rules matching protocol, source CIDRs, destination IP sets
// (LPM lookups with a stack key), destination ports, rule-id recording, an end-of-tier deny,
// and the allow/deny footer tail-calling through skb->cb[0]/cb[1]. Written from the description,
// for the benchmark and the agreement test; not Felix's code.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "backends/ebpf/vm/insn.h"

namespace dpi::bench {

// ld_imm64 src=1 immediates the programs use.
inline constexpr int32_t kStateFd = 1;
inline constexpr int32_t kIpSetsFd = 2;
inline constexpr int32_t kProgsFd = 3;
inline constexpr uint32_t kStateSize = 512;
inline constexpr uint32_t kIpSetKeySize = 20;

// cali_tc_state offsets (v3.30+).
inline constexpr int16_t kOffIpSrc = 8;
inline constexpr int16_t kOffPostNatIpDst = 56;
inline constexpr int16_t kOffPolRc = 92;
inline constexpr int16_t kOffSport = 96;
inline constexpr int16_t kOffPostNatDport = 102;
inline constexpr int16_t kOffProto = 104;
inline constexpr int16_t kOffRulesHit = 108;
inline constexpr int16_t kOffRuleIds = 112;

struct PolicySpec {
  int rules = 50;
  int ip_sets = 8;
  int members_per_set = 64;
  uint64_t seed = 1;
};

struct SynthPolicy {
  std::vector<bpfvm::RawInsn> insns;
  std::vector<std::array<uint8_t, kIpSetKeySize>> members;  // IP-set map keys
  std::vector<uint32_t> addresses;                          // host order, for flows to hit
};

struct SynthFlow {
  uint32_t src = 0;  // host order
  uint32_t dst = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t proto = 0;
};

SynthPolicy make_policy(const PolicySpec& spec);
std::vector<SynthFlow> make_flows(const SynthPolicy& policy, int n, uint64_t seed);
// The state slot as calico_tc_main leaves it for the policy program: zeroed, then the flow.
void fill_state(std::span<uint8_t> state, const SynthFlow& flow);
// Calico's v4 IP-set key.
std::array<uint8_t, kIpSetKeySize> ipset_key(uint32_t prefixlen, uint64_t set_id, uint32_t addr,
                                             uint16_t port, uint8_t proto);

}  // namespace dpi::bench
