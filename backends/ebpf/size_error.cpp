#include "backends/ebpf/size_error.h"

#include <vector>

#include <fmt/format.h>

namespace dpi::ebpf {

std::string known_sizes(MapRole role, int family, Part part) {
  struct Group {
    std::string_view name;
    uint32_t size;
    ReleaseRange range;
  };
  std::vector<Group> groups;
  for (const Layout& l : layouts()) {
    const MapSpec* m = find_map(l, role, family);
    if (!m) continue;
    uint32_t size = part == Part::key ? m->key_size : m->value_size;
    if (!groups.empty() && groups.back().name == m->pin_name && groups.back().size == size) {
      groups.back().range.last = l.releases.last;
    } else {
      groups.push_back({m->pin_name, size, l.releases});
    }
  }
  std::string out;
  for (const Group& g : groups) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} {} ({})", g.name, g.size, g.range.str());
  }
  return out;
}

Error size_error(MapRole role, int family, Part part, std::size_t seen) {
  std::string fam = family ? fmt::format(" (IPv{})", family) : "";
  return make_error(
      ErrorCode::bad_input,
      fmt::format("{} map{} {}: {} bytes seen, sizes known: {}", map_role_name(role), fam,
                  part == Part::key ? "key" : "value", seen, known_sizes(role, family, part)));
}

}  // namespace dpi::ebpf
