// One answer from a node that runs more than one dataplane layer (an eBPF node keeps nftables
// rules for host traffic and kube-proxy leftovers): each layer's report, combined by the rule in
// docs/design.md ("More than one dataplane on a node").
#pragma once

#include <string>
#include <vector>

#include "core/dataplane.h"
#include "core/report.h"

namespace dpi {

// The reason wording by which a layer says a flow is outside what it judges: the eBPF backend
// answers a flow that touches no local workload as indeterminate with this in its reason (it builds
// the reason from this constant, so the two cannot drift apart).
inline constexpr const char* kOutsideLayerScope = "crosses no workload interface of this node";

// One layer's report for the flow.
struct LayerAnswer {
  std::string dataplane;  // the backend's name
  Layer layer = Layer::netfilter;
  Report report;
};

std::string_view layer_name(Layer l);

// Whether the layer judges this flow: false when its report says the flow is outside its scope
// (indeterminate for that reason only), true for any other answer.
bool layer_applies(const Report& r);

// answers: in packet order (the registry's order), at least one. One answer comes back as it is;
// with more, the report is the deciding layer's, with Report::layers naming each layer.
Report combine_layers(std::vector<LayerAnswer> answers);

}  // namespace dpi
