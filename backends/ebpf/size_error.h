// The one error for bytes whose size matches no known layout: it names the map, the size seen and
// every size a known release uses, from the layout table.
#pragma once

#include <cstddef>
#include <string>

#include "backends/ebpf/map_table.h"
#include "core/result.h"

namespace dpi::ebpf {

enum class Part : uint8_t { key, value };

// "cali_iface3 40 (v3.27), cali_iface4 52 (v3.28-v3.32.1)"
std::string known_sizes(MapRole role, int family, Part part);
Error size_error(MapRole role, int family, Part part, std::size_t seen);

}  // namespace dpi::ebpf
