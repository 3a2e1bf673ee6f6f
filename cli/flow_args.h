// Turning what the operator typed (or wrote in a flows file) into Flows: addresses or pods on the
// node, protocol, ports, conntrack state. Shared by inspect and compare.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/calico/workload.h"
#include "core/dataplane.h"
#include "core/flow.h"
#include "core/k8s_names.h"
#include "core/node_info.h"

namespace dpi::cli {

// --src/--dst: an address, or a pod on this node as namespace/name.
struct Endpoint {
  std::optional<IpAddr> addr;
  std::optional<calico::PodRef> pod;  // a pod, or with --k8s a service
  std::optional<uint16_t> port;       // ns/svc:port (a service's port)
};
Result<Endpoint> parse_endpoint(const std::string& v, const std::string& option);

// Fills the pod endpoints' addresses from the node's interfaces and routes; each resolution is
// appended to notes (it becomes an assumption line).
Status resolve_pods(Endpoint& src, Endpoint& dst, const std::optional<NodeInfo>& node,
                    const std::string& prefix, std::vector<std::string>& notes);

// --k8s: the names from the file at path, as kubectl wrote it.
Result<K8sNames> load_k8s_names(const std::string& path, std::size_t max_bytes);

// The names a snapshot carries (`snapshot --k8s`), as its loader handed them on: nullopt for a
// source without them. path is the snapshot's (--ruleset); source is set to what the
// assumptions call them.
Result<std::optional<K8sNames>> snapshot_names(const LoadedDataplane& loaded,
                                               const std::string& path, std::string& source);

// With --k8s data, before the dataplane is read: an endpoint naming a service (ns/svc:port, or
// ns/svc when no pod has that name) gets the service's ClusterIP, and its port becomes *dport when
// none was given. Each resolution is appended to notes.
Status resolve_services(Endpoint& src, Endpoint& dst, const K8sNames& k8s,
                        const std::string& source, std::optional<int64_t>& dport,
                        std::vector<std::string>& notes);

// With --k8s data, after the node was read: a pod that has no interface on this node is refused
// with the node the data puts it on; without node information the pod's address comes from the
// data. Pods on this node are left to resolve_pods.
Status resolve_k8s_pods(Endpoint& src, Endpoint& dst, const K8sNames& k8s,
                        const std::string& source, const std::optional<NodeInfo>& node,
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
