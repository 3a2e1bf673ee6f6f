// The backends a program has, and everything the commands do with them: --dataplane auto|NAME,
// detect, snapshot. The program's list is defined in one file outside core/
// (backends/registry.cpp, the only file that names every backend); a test builds its own.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dataplane.h"

namespace dpi {

class DataplaneRegistry {
 public:
  // backends: kept in the order a packet meets their layers (Layer), whatever the order given.
  // also_known: dataplanes dpinspect knows of without a backend here (refused by name).
  explicit DataplaneRegistry(std::vector<const DataplaneBackend*> backends,
                             std::vector<std::string> also_known = {});

  // Every backend, in packet order.
  const std::vector<const DataplaneBackend*>& backends() const { return backends_; }
  // Dataplanes known by name, registered or not, for --dataplane and detect: the registered ones
  // in registration order, then also_known.
  const std::vector<std::string>& known() const { return known_; }
  const DataplaneBackend* find(std::string_view name) const;

  // --dataplane NAME|auto: the backends to read, loaded. auto: the backend a given option belongs
  // to; otherwise every backend (one: no probing), keeping those that find Calico, or the first.
  Result<std::vector<std::unique_ptr<LoadedDataplane>>> load(const std::string& wanted,
                                                             const SourceRequest& req) const;

  // The --dataplane help text: "auto (whatever is there), nftables (...), ebpf (...)".
  std::string choices_help() const;

 private:
  std::vector<const DataplaneBackend*> backends_;
  std::vector<std::string> known_;
};

// The dpinspect program's backends (backends/registry.cpp).
const DataplaneRegistry& builtin_dataplanes();

}  // namespace dpi
