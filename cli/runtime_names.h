// Pod names from this node's container runtime: `crictl` on PATH, asked for its ready pods and
// their addresses (core/cri_names.h reads what it prints). A missing or failing crictl is never an
// error: it becomes a note for the report's assumptions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/k8s_names.h"

namespace dpi::cli {

struct RuntimeNames {
  std::optional<K8sNames> names;  // nullopt: crictl gave none
  // What the assumptions call them: "the container runtime (crictl, 4 pods on this node)".
  std::string source;
  std::vector<std::string> notes;  // why names or addresses are missing
  bool on_path = false;            // crictl was found (and asked)
};

// Runs `crictl pods --state ready -o json`, then `crictl inspectp -o json ID...` for the
// addresses; each run is given a few seconds.
RuntimeNames runtime_names(std::size_t max_bytes);

}  // namespace dpi::cli
