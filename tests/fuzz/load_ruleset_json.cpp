// Fuzz target: the nft JSON loader (load_ruleset_json), then what the CLI does with a ruleset it
// accepted: detect the dataplane, inspect a few flows over the seed node's routes, and render
// each report as text and JSON. Invariants: no crash, no sanitizer report, no exception escapes,
// and a refused input gets an error that starts with the input's name.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/nftables/detect.h"
#include "backends/nftables/inspect.h"
#include "backends/nftables/json_loader.h"
#include "core/node_info.h"
#include "core/report_json.h"
#include "core/report_text.h"
#include "fuzz_check.h"

namespace {

constexpr const char* kOrigin = "fuzz.json";

dpi::Flow flow(const char* src, const char* dst, const char* proto, std::optional<uint16_t> dport,
               const char* iif = "") {
  dpi::Flow f;
  f.src = *dpi::IpAddr::parse(src);
  f.dst = *dpi::IpAddr::parse(dst);
  f.l4proto = *dpi::parse_l4proto(proto);
  f.dport = dport;
  f.iif = iif;
  FUZZ_CHECK(dpi::normalize(f).ok(), "seed flow does not normalize");
  return f;
}

struct Setup {
  dpi::NodeInfo node;
  std::vector<dpi::Flow> flows;
};

const Setup& setup() {
  static const Setup s = [] {
    Setup s;
    auto j = nlohmann::json::parse(dpi::fuzz::source_file("examples/seed/node.json"));
    auto node = dpi::node_info_from_json(j, "examples/seed/node.json");
    FUZZ_CHECK(node.ok(), "examples/seed/node.json does not load");
    s.node = std::move(*node);
    // Pod to pod (forward), pod to a service ClusterIP (NAT), pod to the node (input), the node
    // to a pod (output), ICMP from outside, and IPv6 to the node.
    s.flows.push_back(flow("10.65.0.2", "10.65.0.5", "tcp", 9001));
    s.flows.push_back(flow("10.65.0.2", "10.96.0.10", "tcp", 80));
    s.flows.push_back(flow("10.65.0.2", "172.18.0.2", "tcp", 10250));
    s.flows.push_back(flow("172.18.0.2", "10.65.0.3", "udp", 53));
    s.flows.push_back(flow("192.0.2.7", "10.65.0.3", "icmp", std::nullopt, "eth0"));
    s.flows.push_back(flow("fe80::1", "fe80::cc81:daff:fee3:c9a0", "tcp", 443, "eth0"));
    return s;
  }();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto rs = dpi::nft::load_ruleset_json(text, kOrigin);
  if (!rs) {
    // Names from the input are quoted raw, so an error is one line only for real nft output
    // (nft's identifiers hold no newline); it must still start with the input's name.
    FUZZ_CHECK(rs.error().message.rfind(kOrigin, 0) == 0,
               "load error does not name the input: " + rs.error().message);
    return 0;
  }
  dpi::nft::Loaded src;
  src.ruleset = std::move(*rs);
  src.node = setup().node;
  src.description = kOrigin;
  (void)dpi::nft::detect(*src.ruleset);
  for (const auto& f : setup().flows) {
    auto rep = dpi::nft::inspect(src, f);
    if (!rep) continue;
    (void)dpi::render_text(*rep, dpi::TextOptions{true});
    (void)dpi::to_json(*rep).dump(2);
  }
  return 0;
}
