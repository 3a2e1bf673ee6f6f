// `watch --source counters` on Calico's eBPF dataplane: polls the rule counters map
// (cali_rule_ctrs2) and reports each rule counter that changed since the last poll, its rule id
// attributed through the live policy-debug JSON (NodeModel::rule_places). Read-only.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/result.h"
#include "core/watch.h"

namespace dpi::ebpf {

// Reads the node (bpffs, policy_debug_dir) and takes the baseline reading at once, so that what
// is counted after this returns is reported. Pinned maps need root (ErrorCode::permission).
Result<std::unique_ptr<WatchSource>> open_counters_source(const std::string& bpffs,
                                                          const std::string& policy_debug_dir,
                                                          std::chrono::milliseconds interval);

}  // namespace dpi::ebpf
