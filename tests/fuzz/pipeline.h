// Shared by the loader fuzz targets: what the CLI does with a ruleset it accepted. Detect the
// dataplane, inspect a few flows over the seed node's routes (or the input's own node), and
// render each report as text and JSON. Any crash, sanitizer report or escaping exception in
// there is a finding against the loader that built the ruleset or against the evaluator.
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/nftables/detect.h"
#include "backends/nftables/inspect.h"
#include "core/node_info.h"
#include "core/report_json.h"
#include "core/report_text.h"
#include "fuzz_check.h"

namespace dpi::fuzz {

inline Flow make_flow(const char* src, const char* dst, const char* proto,
                      std::optional<uint16_t> dport, const char* iif = "") {
  Flow f;
  f.src = *IpAddr::parse(src);
  f.dst = *IpAddr::parse(dst);
  f.l4proto = *parse_l4proto(proto);
  f.dport = dport;
  f.iif = iif;
  FUZZ_CHECK(normalize(f).ok(), "seed flow does not normalize");
  return f;
}

struct Pipeline {
  NodeInfo node;
  std::vector<Flow> flows;
};

// Read once (call it from LLVMFuzzerInitialize).
inline const Pipeline& pipeline() {
  static const Pipeline p = [] {
    Pipeline p;
    auto j = nlohmann::json::parse(source_file("examples/seed/node.json"));
    auto node = node_info_from_json(j, "examples/seed/node.json");
    FUZZ_CHECK(node.ok(), "examples/seed/node.json does not load");
    p.node = std::move(*node);
    // Pod to pod (forward), pod to a service ClusterIP (NAT), pod to the node (input), the node
    // to a pod (output), ICMP from outside, and IPv6 to the node.
    p.flows.push_back(make_flow("10.65.0.2", "10.65.0.5", "tcp", 9001));
    p.flows.push_back(make_flow("10.65.0.2", "10.96.0.10", "tcp", 80));
    p.flows.push_back(make_flow("10.65.0.2", "172.18.0.2", "tcp", 10250));
    p.flows.push_back(make_flow("172.18.0.2", "10.65.0.3", "udp", 53));
    p.flows.push_back(make_flow("192.0.2.7", "10.65.0.3", "icmp", std::nullopt, "eth0"));
    p.flows.push_back(make_flow("fe80::1", "fe80::cc81:daff:fee3:c9a0", "tcp", 443, "eth0"));
    return p;
  }();
  return p;
}

// src.ruleset set; src.node left empty means the seed node.
inline void exercise(nft::Loaded& src) {
  if (!src.node) src.node = pipeline().node;
  if (src.description.empty()) src.description = "fuzz";
  (void)nft::detect(*src.ruleset);
  for (const auto& f : pipeline().flows) {
    auto rep = nft::inspect(src, f);
    if (!rep) continue;
    (void)render_text(*rep, TextOptions{true});
    // As cli/cmd_inspect.cpp prints it.
    (void)to_json(*rep).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

}  // namespace dpi::fuzz
