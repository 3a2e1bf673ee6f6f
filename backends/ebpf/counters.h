// cali_counters* (per-CPU u64[N] per {ifindex, hook}) and cali_rule_ctrs2 (rule id -> per-CPU
// u64). Reference §1.7-1.8; N and the names by index per release from felix/bpf/counters/
// counters.go and felix/bpf-gpl/reasons.h at each tag.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "backends/ebpf/bytes.h"
#include "backends/ebpf/versions.h"
#include "core/result.h"

namespace dpi::ebpf {

enum class CounterHook : uint32_t { tc_ingress = 0, tc_egress = 1, xdp = 2 };

struct CountersKey {
  uint32_t ifindex = 0;
  CounterHook hook = CounterHook::tc_ingress;
};

// The name of counter `index` in `release` ("DROPPED_BY_POLICY"), or "" when the release has no
// such counter (index 13 before v3.29 is allocated but unused).
std::string_view counter_name(Release release, uint32_t index);

Result<CountersKey> decode_counters_key(Bytes key);
std::vector<uint8_t> encode_counters_key(const CountersKey& k);

// A per-CPU lookup returns one value per possible CPU, each rounded up to 8 bytes; this sums the
// u64 words across CPUs. value_size is the map's; cpus the number of possible CPUs.
Result<std::vector<uint64_t>> sum_percpu_u64(Bytes all_cpus, uint32_t value_size, uint32_t cpus);
// Counters value (all CPUs): N sums, N = value_size / 8, checked against the release's N.
Result<std::vector<uint64_t>> decode_counters_value(Bytes all_cpus, uint32_t value_size,
                                                    uint32_t cpus, Release release);

// cali_rule_ctrs2, the same in v3.27-v3.32 (felix/bpf-gpl/rule_counters.h:12-14,
// felix/bpf/counters/map.go:39-46,75-85): key = the rule id (u64 LE), value = per-CPU u64 packet
// count, summed over the CPUs; no bytes. The tc programs add an entry at a rule's first hit
// (update_rule_counters), Felix empties the map when it starts and deletes the ids of removed
// policies (felix/dataplane/linux/bpf_ep_mgr.go:816-823,1709-1720): no entry = 0 packets.
Result<uint64_t> decode_rule_counter_key(Bytes key);
std::vector<uint8_t> encode_rule_counter_key(uint64_t id);
Result<uint64_t> decode_rule_counter_value(Bytes all_cpus, uint32_t cpus);
// A rule id as reports write it ("0x1573250364eb46b5", BpfLocation::calico_rule_id); nullopt for
// anything else.
std::optional<uint64_t> parse_rule_id(std::string_view text);

}  // namespace dpi::ebpf
