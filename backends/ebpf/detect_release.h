// Which Calico release pinned these maps: by their names and sizes (reference §6, §9). Where
// releases pin identical maps the answer is their range; an unknown size is named, never guessed.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backends/ebpf/map_table.h"
#include "core/result.h"

namespace dpi::ebpf {

// What the kernel says about one pinned map (live: bpf_obj_get_info_by_fd; offline: a snapshot).
struct PinnedMapInfo {
  std::string name;  // pin file name
  uint32_t type = 0;
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
};

struct Detection {
  const Layout* layout = nullptr;
  ReleaseRange releases;
  std::vector<std::string> notes;  // maps of the layout that are absent (e.g. no IPv6)
};

Result<Detection> detect_release(std::span<const PinnedMapInfo> maps);

}  // namespace dpi::ebpf
