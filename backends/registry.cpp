// The only file that names every backend. A new backend adds its header and one line to
// registered_dataplanes() (and its name to known_dataplanes() if it was not there yet).
#include "backends/ebpf/dataplane.h"
#include "backends/nftables/dataplane.h"
#include "core/dataplane_registry.h"

namespace dpi {

const std::vector<const DataplaneBackend*>& registered_dataplanes() {
  static const nft::NftablesDataplane nftables;
  static const ebpf::EbpfDataplane ebpf;
  // In packet order (Layer): tc programs before netfilter.
  static const std::vector<const DataplaneBackend*> all = {&ebpf, &nftables};
  return all;
}

const std::vector<std::string>& known_dataplanes() {
  static const std::vector<std::string> names = {"nftables", "ebpf"};
  return names;
}

}  // namespace dpi
