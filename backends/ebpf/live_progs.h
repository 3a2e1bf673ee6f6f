// Policy programs on a live node: a prog_array slot -> program id -> program info (name, tag,
// map ids, translated length). Read-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/ebpf/live_maps.h"
#include "backends/ebpf/prog_tag.h"
#include "core/result.h"

namespace dpi::ebpf {

struct ProgInfo {
  uint32_t id = 0;
  uint32_t type = 0;
  std::string name;  // kernel name, 15 chars at most
  ProgTag tag{};
  std::vector<uint32_t> map_ids;  // in first-use order (reference §8)
  uint32_t xlated_len = 0;        // bytes
};

// A userspace lookup in a prog_array returns the program's id; nullopt for an empty slot.
Result<std::optional<uint32_t>> prog_array_lookup(const PinnedMap& map, uint32_t index);
Result<ProgInfo> prog_info_by_id(uint32_t id);
Result<ProgInfo> prog_info_by_fd(int fd);

}  // namespace dpi::ebpf
