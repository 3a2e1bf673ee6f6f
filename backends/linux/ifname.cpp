#include "backends/linux/ifname.h"

// glibc's <net/if.h> and the kernel's <linux/if.h> define the same IFF_* names; which one wins
// depends on what was included first, so this file is compiled on its own, outside the unity
// units (backends/linux/CMakeLists.txt), and the files that need kernel headers never see
// glibc's.
#include <net/if.h>

#include <fmt/format.h>

namespace dpi::os {

std::string interface_name(uint32_t ifindex) {
  char buf[IF_NAMESIZE] = {};
  const char* name = if_indextoname(ifindex, buf);
  return name ? std::string(name) : fmt::format("ifindex {}", ifindex);
}

}  // namespace dpi::os
