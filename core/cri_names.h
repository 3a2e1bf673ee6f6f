// Pod names from the node's container runtime, as crictl prints them: `crictl pods --state ready
// -o json` (the CRI ListPodSandboxResponse: {"items": [{"id", "metadata": {"name", "namespace",
// ...}, "state": "SANDBOX_READY", ...}]}) and `crictl inspectp -o json ID...` (per pod
// {"status": PodSandboxStatus, "info": ...}, one object for one ID, an array for several; the
// addresses are status.network.ip and .additionalIps[].ip, a host-network pod has
// status.linux.namespaces.options.network "NODE"). Field names as cri-tools'
// cmd/crictl/sandbox.go and util.go print the CRI messages (protojson). Core only: running crictl
// is the CLI's (cli/runtime_names.h).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/k8s_names.h"
#include "core/result.h"

namespace dpi {

struct CriSandbox {
  std::string id, ns, name;
};

// The ready sandboxes of a `crictl pods -o json` document (others are stopped attempts whose
// addresses may have gone to another pod). Errors (bad_input) name what is malformed.
Result<std::vector<CriSandbox>> parse_crictl_pods(const nlohmann::json& doc);

// The pods of `crictl pods`, with the addresses of `crictl inspectp` when given (nullptr: names
// only, Felix's interface hash still ties them to their cali* interfaces). Every pod is marked
// on this node.
Result<K8sNames> cri_names(const std::vector<CriSandbox>& sandboxes,
                           const nlohmann::json* inspectp);

}  // namespace dpi
