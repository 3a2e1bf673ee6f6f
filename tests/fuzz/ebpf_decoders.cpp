// Fuzz target: every map decoder on the same bytes (first byte: IPv4 or IPv6), with the
// round trips that must hold where an encoder exists; release detection from maps whose sizes
// come from the input.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backends/ebpf/conntrack.h"
#include "backends/ebpf/counters.h"
#include "backends/ebpf/detect_release.h"
#include "backends/ebpf/ifstate.h"
#include "backends/ebpf/ip_sets.h"
#include "backends/ebpf/nat.h"
#include "backends/ebpf/routes.h"
#include "backends/ebpf/state.h"
#include "fuzz_check.h"
#include "fuzz_target.h"

using namespace dpi::ebpf;

DPI_FUZZ_ONE_INPUT(ebpf_decoders) {
  if (size == 0) return 0;
  int family = (data[0] & 1) ? 6 : 4;
  std::span<const uint8_t> b(data + 1, size - 1);
  std::vector<uint8_t> in(b.begin(), b.end());

  (void)decode_ifstate_key(b);
  if (auto s = decode_ifstate_value(b)) (void)ifstate_flag_names(s->flags);
  if (auto k = decode_route_key(b, family)) FUZZ_CHECK(encode_route_key(*k) == in, "route key");
  if (auto v = decode_route_value(b, family)) (void)route_flag_names(v->flags);
  if (auto k = decode_ip_set_key(b, family)) {
    FUZZ_CHECK(encode_ip_set_key(*k) == in || in[in.size() - 1] != 0, "ip set key");
    (void)k->addr_prefix_len();
  }
  if (auto k = decode_ct_key(b, family)) {
    // The protocol is a u32 on the wire, at most 255 once decoded.
    FUZZ_CHECK(encode_ct_key(*k) == in, "conntrack key");
  }
  (void)decode_ct_value(b, family);
  if (auto k = decode_nat_frontend_key(b, family)) {
    FUZZ_CHECK(encode_nat_frontend_key(*k).size() == in.size(), "frontend key size");
    (void)k->src_prefix_len();
  }
  (void)decode_nat_frontend_value(b);
  if (auto k = decode_nat_backend_key(b)) FUZZ_CHECK(encode_nat_backend_key(*k) == in, "be key");
  (void)decode_nat_backend_value(b, family);
  (void)decode_nat_affinity_key(b, family);
  (void)decode_nat_affinity_value(b, family);
  if (auto k = decode_counters_key(b)) FUZZ_CHECK(encode_counters_key(*k) == in, "counters key");
  for (uint32_t cpus : {1u, 2u, 3u}) {
    (void)decode_counters_value(b, 17 * 8, cpus, Release::v3_30);
    (void)decode_rule_counter_value(b, cpus);
  }
  if (auto k = decode_rule_counter_key(b))
    FUZZ_CHECK(encode_rule_counter_key(*k) == in, "rule key");
  if (auto s = decode_state(b, family)) {
    const StateLayout* l = state_layout(static_cast<uint32_t>(b.size()));
    FUZZ_CHECK(l != nullptr, "decoded state has a layout");
    auto again = decode_state(encode_state(*l, *s), family);
    FUZZ_CHECK(again.ok() && again->rule_ids == s->rule_ids && again->flags == s->flags,
               "state round trip");
  }
  // Detection over maps whose names and sizes the input picks.
  static const char* kNames[] = {"cali_iface4", "cali_state6", "cali_counters6",  "cali_jump3",
                                 "cali_state4", "cali_v4_ct4", "cali_rule_ctrs2", "x"};
  std::vector<PinnedMapInfo> maps;
  for (std::size_t i = 0; i + 4 <= b.size() && maps.size() < 16; i += 4)
    maps.push_back({kNames[b[i] & 7], b[i + 1], b[i + 2], static_cast<uint32_t>(b[i + 3]) * 8, 1});
  if (auto d = detect_release(maps)) FUZZ_CHECK(d->layout != nullptr, "detected layout");
  return 0;
}
