// Calico releases whose eBPF maps dpinspect knows, and ranges of them: where releases pin
// identical maps (v3.28 and v3.29) only the range can be told from a node.
#pragma once

#include <cstdint>
#include <string>

namespace dpi::ebpf {

enum class Release : uint8_t { v3_27, v3_28, v3_29, v3_30, v3_31, v3_32_0, v3_32_1 };

std::string release_name(Release r);  // "v3.28", "v3.32.1"

struct ReleaseRange {
  Release first = Release::v3_27;
  Release last = Release::v3_27;

  bool contains(Release r) const { return first <= r && r <= last; }
  bool operator==(const ReleaseRange&) const = default;
  std::string str() const;  // "v3.30" or "v3.28-v3.29"
};

}  // namespace dpi::ebpf
