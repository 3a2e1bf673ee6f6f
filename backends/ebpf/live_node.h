// A live Calico eBPF node seen through its bpffs directory: the detected release, its maps by
// role, and the reads the backend needs most (interfaces, routes, policy programs). Read-only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backends/ebpf/detect_release.h"
#include "backends/ebpf/ifstate.h"
#include "backends/ebpf/live_maps.h"
#include "backends/ebpf/live_progs.h"
#include "backends/ebpf/routes.h"
#include "core/ip.h"
#include "core/result.h"

namespace dpi::ebpf {

class LiveNode {
 public:
  // Lists dir's maps and detects the release; an unknown layout is the error.
  static Result<LiveNode> open(const std::string& dir = kDefaultBpffs);

  const std::string& dir() const { return dir_; }
  const Detection& detection() const { return detection_; }
  const Layout& layout() const { return *detection_.layout; }
  const std::vector<PinnedMapInfo>& pinned() const { return pinned_; }

  // The release's map for a role; not_found naming the pin when it is not pinned.
  Result<PinnedMap> map(MapRole role, int family = 0) const;
  Result<PinnedMap> policy_jump(AttachHook hook) const;

 private:
  std::string dir_;
  Detection detection_;
  std::vector<PinnedMapInfo> pinned_;
};

// Every interface in the ifstate map, by ifindex.
Result<std::map<uint32_t, IfState>> read_ifstates(const PinnedMap& ifstate);

// The longest-prefix route for an address (the kernel's LPM lookup with a host-length key).
Result<std::optional<RouteValue>> lookup_route(const PinnedMap& routes, const IpAddr& addr);

struct PolicySlot {
  uint32_t k = 0;    // sub-program
  uint32_t key = 0;  // jump-map key: base + k * stride
  ProgInfo prog;
};

// The programs of the policy at `base`: sub-program 0, then 1, 2, ... until an empty slot.
// Empty when slot `base` itself is empty (the interface lost its policy program).
Result<std::vector<PolicySlot>> read_policy_programs(const PinnedMap& jump, uint32_t base,
                                                     uint32_t stride);

}  // namespace dpi::ebpf
