// The eBPF backend behind the dataplane interface (core/dataplane.h): Calico's eBPF dataplane,
// from the pinned maps and policy programs of a node (live, read-only) or a snapshot's `ebpf`
// section.
#pragma once

#include "core/dataplane.h"

namespace dpi::ebpf {

inline constexpr const char* kBpffsOption = "bpffs";
inline constexpr const char* kPolicyDebugDirOption = "policy-debug-dir";
inline constexpr const char* kDefaultPolicyDebugDir = "/var/run/calico/bpf/policy";
// The snapshot document's member this backend owns.
inline constexpr const char* kSnapshotSection = "ebpf";

class EbpfDataplane final : public DataplaneBackend {
 public:
  std::string_view name() const override { return "ebpf"; }
  std::string_view summary() const override {
    return "Calico eBPF: pinned maps and policy programs";
  }
  Layer layer() const override { return Layer::tc; }
  std::vector<SourceOption> source_options() const override;
  bool claims(const SourceRequest& req) const override;
  Status check(const SourceRequest& req) const override;
  Result<std::unique_ptr<LoadedDataplane>> load(const SourceRequest& req) const override;
  Result<std::optional<nlohmann::json>> snapshot(const SourceRequest& req) const override;
  std::string describe_snapshot(const nlohmann::json& section) const override;
  // Calico's eBPF programs log nothing to NFLOG: the rule counters map, polled.
  std::vector<std::string> watch_sources() const override { return {"counters"}; }
  Result<std::vector<std::unique_ptr<WatchSource>>> watch(const SourceRequest& req,
                                                          const WatchRequest& w) const override;
};

}  // namespace dpi::ebpf
