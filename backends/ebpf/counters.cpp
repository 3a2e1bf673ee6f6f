#include "backends/ebpf/counters.h"

#include <fmt/format.h>

#include "backends/ebpf/map_table.h"
#include "backends/ebpf/size_error.h"

namespace dpi::ebpf {

std::string_view counter_name(Release release, uint32_t index) {
  // Indices are stable across releases; later releases append.
  static constexpr std::string_view kNames[] = {
      "TOTAL_PACKETS",      "ACCEPTED_BY_FAILSAFE",
      "ACCEPTED_BY_POLICY", "BYPASS",
      "DROPPED_BY_POLICY",  "SHORT",
      "CSUM_FAIL",          "IP_OPTIONS",
      "IP_MALFORMED",       "ENCAP_FAIL",
      "DECAP_FAIL",         "UNAUTH_SOURCE",
      "RT_UNKNOWN",         "BLACK_HOLE",
      "SOURCE_COLLISION",   "SOURCE_COLLISION_FAILED",
      "CT_CREATE_FAILED",   "REDIRECT",
      "REDIRECT_NEIGH",     "REDIRECT_PEER",
      "FRAG_WAIT",          "FRAG_REORDER",
      "FRAG_UNSUPPORTED",   "DROPPED_BY_QOS",
      "RESERVED1",          "MAGLEV_NO_BACKEND",
      "NO_HOST_IP",
  };
  if (index == 13 && release < Release::v3_29) return "";
  uint32_t n = layout_for(release).counters_n();
  if (index >= n || index >= std::size(kNames)) return "";
  return kNames[index];
}

Result<CountersKey> decode_counters_key(Bytes key) {
  if (key.size() != 8) return size_error(MapRole::counters, 0, Part::key, key.size());
  uint32_t hook = le32(key, 4);
  if (hook > 2) return make_error(ErrorCode::bad_input, fmt::format("counters key: hook {}", hook));
  return CountersKey{le32(key, 0), static_cast<CounterHook>(hook)};
}

std::vector<uint8_t> encode_counters_key(const CountersKey& k) {
  std::vector<uint8_t> out(8);
  put_le32(out, 0, k.ifindex);
  put_le32(out, 4, static_cast<uint32_t>(k.hook));
  return out;
}

Result<std::vector<uint64_t>> sum_percpu_u64(Bytes all, uint32_t value_size, uint32_t cpus) {
  uint32_t stride = (value_size + 7) / 8 * 8;
  if (value_size % 8 != 0 || cpus == 0 || all.size() != std::size_t{stride} * cpus)
    return make_error(ErrorCode::bad_input,
                      fmt::format("per-CPU value: {} bytes for {} CPUs of {} bytes", all.size(),
                                  cpus, value_size));
  std::vector<uint64_t> sums(value_size / 8, 0);
  for (uint32_t cpu = 0; cpu < cpus; ++cpu)
    for (std::size_t i = 0; i < sums.size(); ++i)
      sums[i] += le64(all, std::size_t{cpu} * stride + 8 * i);
  return sums;
}

Result<std::vector<uint64_t>> decode_counters_value(Bytes all, uint32_t value_size, uint32_t cpus,
                                                    Release release) {
  if (value_size != layout_for(release).counters_n() * 8)
    return size_error(MapRole::counters, 0, Part::value, value_size);
  return sum_percpu_u64(all, value_size, cpus);
}

Result<uint64_t> decode_rule_counter_key(Bytes key) {
  if (key.size() != 8) return size_error(MapRole::rule_counters, 0, Part::key, key.size());
  return le64(key, 0);
}

std::vector<uint8_t> encode_rule_counter_key(uint64_t id) {
  std::vector<uint8_t> out(8);
  put_le64(out, 0, id);
  return out;
}

Result<uint64_t> decode_rule_counter_value(Bytes all, uint32_t cpus) {
  auto sums = sum_percpu_u64(all, 8, cpus);
  if (!sums) return sums.error();
  return (*sums)[0];
}

std::optional<uint64_t> parse_rule_id(std::string_view text) {
  if (text.size() < 3 || text.size() > 18 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X'))
    return std::nullopt;
  uint64_t v = 0;
  for (char c : text.substr(2)) {
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    if (d < 0) return std::nullopt;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  return v;
}

}  // namespace dpi::ebpf
