// The only file that names every backend: dpinspect's registry (core/dataplane_registry.h). A new
// backend adds its header and one line to the list below.
#include "backends/ebpf/dataplane.h"
#include "backends/nftables/dataplane.h"
#include "core/dataplane_registry.h"

namespace dpi {

const DataplaneRegistry& builtin_dataplanes() {
  static const nft::NftablesDataplane nftables;
  static const ebpf::EbpfDataplane ebpf;
  // Listed as --help and detect name them; the registry orders them by layer (packet order).
  static const DataplaneRegistry registry({&nftables, &ebpf});
  return registry;
}

}  // namespace dpi
