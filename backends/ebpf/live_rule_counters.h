// Calico's rule counters map (cali_rule_ctrs2) on a live node, opened once and read as often as
// asked: `inspect --counters` reads one rule id twice, a watch polls them all. Read-only (the
// map is opened with BPF_F_RDONLY like every pinned map).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backends/ebpf/live_maps.h"
#include "backends/ebpf/map_table.h"
#include "core/result.h"

namespace dpi::ebpf {

class LiveRuleCounters {
 public:
  // dir/spec.pin_name; bad_input when the pinned map's type or sizes are not the release's.
  static Result<LiveRuleCounters> open(const std::string& dir, const MapSpec& spec);

  const std::string& path() const { return map_.path(); }
  // The kernel's id of the map opened (a map re-created at the pin has another).
  uint32_t id() const { return map_.info().id; }
  // The packets rule `id` counted, summed over the CPUs; 0 when it has no entry (not hit since
  // Felix started or created the rule).
  Result<uint64_t> read(uint64_t id) const;
  // Every (rule id, packets) entry.
  Result<std::vector<std::pair<uint64_t, uint64_t>>> read_all() const;

 private:
  explicit LiveRuleCounters(PinnedMap m) : map_(std::move(m)) {}
  PinnedMap map_;
};

}  // namespace dpi::ebpf
