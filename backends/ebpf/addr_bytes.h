// Addresses inside map keys and values: 4 bytes (v4 maps) or 16 (v6 maps), in network order.
#pragma once

#include <algorithm>
#include <cstddef>

#include "backends/ebpf/bytes.h"
#include "core/ip.h"

namespace dpi::ebpf {

inline std::size_t addr_len(int family) {
  return family == 4 ? 4 : 16;
}

// family is 4 or 6, as the map tables name it.
inline IpAddr addr_from(Bytes b, std::size_t off, int family) {
  IpAddr a;
  a.family = family == 4 ? 2 : 10;
  std::copy_n(b.begin() + off, addr_len(family), a.bytes.begin());
  return a;
}

}  // namespace dpi::ebpf
