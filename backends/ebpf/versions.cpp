#include "backends/ebpf/versions.h"

namespace dpi::ebpf {

std::string release_name(Release r) {
  switch (r) {
    case Release::v3_27: return "v3.27";
    case Release::v3_28: return "v3.28";
    case Release::v3_29: return "v3.29";
    case Release::v3_30: return "v3.30";
    case Release::v3_31: return "v3.31";
    case Release::v3_32_0: return "v3.32.0";
    case Release::v3_32_1: return "v3.32.1";
  }
  return "v?";
}

std::string ReleaseRange::str() const {
  if (first == last) return release_name(first);
  return release_name(first) + "-" + release_name(last);
}

}  // namespace dpi::ebpf
