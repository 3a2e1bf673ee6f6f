// The backends this binary has. The list itself is defined in one file outside core/ (for the
// program: backends/registry.cpp, the only file that names every backend; a test binary links
// its own); everything here only walks it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dataplane.h"

namespace dpi {

// Every backend of this binary, in the order a packet meets their layers (Layer).
const std::vector<const DataplaneBackend*>& registered_dataplanes();

// Dataplanes dpinspect knows of, registered or not, for --dataplane and detect: "nftables",
// "ebpf". One that is not registered is refused with a message naming what was looked for.
const std::vector<std::string>& known_dataplanes();

const DataplaneBackend* find_dataplane(std::string_view name);

// --dataplane NAME|auto: the backends to read, loaded. auto: the backend a given option belongs
// to; otherwise every backend (one: no probing), keeping those that find Calico, or the first.
Result<std::vector<std::unique_ptr<LoadedDataplane>>> load_dataplanes(const std::string& wanted,
                                                                      const SourceRequest& req);

// The --dataplane help text: "auto (whatever is there), nftables (...), ebpf (not yet
// supported)".
std::string dataplane_choices_help();

}  // namespace dpi
