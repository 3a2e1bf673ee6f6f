// Turning what the operator typed (or wrote in a flows file) into Flows: addresses or pods on the
// node, protocol, ports, conntrack state. Shared by inspect and compare.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/calico/workload.h"
#include "core/flow.h"
#include "core/node_info.h"

namespace dpi::cli {

// --src/--dst: an address, or a pod on this node as namespace/name.
struct Endpoint {
  std::optional<IpAddr> addr;
  std::optional<calico::PodRef> pod;
};
Result<Endpoint> parse_endpoint(const std::string& v, const std::string& option);

// Fills the pod endpoints' addresses from the node's interfaces and routes; each resolution is
// appended to notes (it becomes an assumption line).
Status resolve_pods(Endpoint& src, Endpoint& dst, const std::optional<NodeInfo>& node,
                    const std::string& prefix, std::vector<std::string>& notes);

struct FlowArgs {
  std::string proto = "tcp", ct = "new";
  std::optional<int64_t> sport, dport, icmp_type, icmp_code;
  std::string iif, oif;
};

// A normalized flow; errors name the option (prefixed with `where`, e.g. "flows.jsonl:3: ").
Result<Flow> build_flow(const FlowArgs& a, const IpAddr& src, const IpAddr& dst,
                        const std::string& where = "");

}  // namespace dpi::cli
