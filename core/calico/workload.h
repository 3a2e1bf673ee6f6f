// Pods by name: Felix names a Kubernetes pod's host-side veth after the pod, so a node's routes
// tell a local pod's address without asking the API server.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/ip.h"
#include "core/node_info.h"
#include "core/result.h"

namespace dpi::calico {

struct PodRef {
  std::string ns, name;
  std::string str() const { return ns + "/" + name; }
};

// "namespace/pod" with Kubernetes name characters; nullopt for anything else (an address, say).
std::optional<PodRef> parse_pod_ref(std::string_view s);

// The interface Felix creates for the pod: prefix + the first 11 hex digits of
// SHA-1("<namespace>.<pod>"), prefix cali unless FELIX_INTERFACEPREFIX. The rule is
// VethNameForWorkload in projectcalico/calico, libcalico-go/lib/backend/k8s/conversion/
// conversion.go: the CNI plugin names the host-side veth with it.
std::string workload_iface(const PodRef& pod, std::string_view prefix = "cali");

struct PodAddress {
  IpAddr addr;
  std::string iface;
};

// The pod's address on this node: the host route (/32 or /128) through its interface, of the
// preferred family when it has both. Errors (bad_input) say why: no such interface here (the pod
// runs elsewhere, or another prefix), or no route through it.
Result<PodAddress> pod_address(const NodeInfo& node, const PodRef& pod, std::string_view prefix,
                               int prefer_family = 4);

}  // namespace dpi::calico
