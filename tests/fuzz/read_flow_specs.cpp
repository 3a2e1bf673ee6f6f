// Fuzz target: compare's flows file (read_flow_specs), then what compare does with each line:
// parse both endpoints (address or namespace/pod), resolve pods against the seed node, and build
// the flow. Invariants: no crash or sanitizer report; a refusal is one line naming the file (and
// the line, for a line's problem); a built flow is normalized (family of both ends agrees).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cli/flow_file.h"
#include "fuzz_check.h"
#include "fuzz_target.h"

namespace {

const dpi::NodeInfo& seed_node() {
  static const dpi::NodeInfo n = [] {
    auto j = nlohmann::json::parse(dpi::fuzz::source_file("examples/seed/node.json"));
    auto r = dpi::node_info_from_json(j, "node.json");
    FUZZ_CHECK(r.ok(), "examples/seed/node.json does not load");
    return *r;
  }();
  return n;
}

}  // namespace

DPI_FUZZ_INIT(read_flow_specs) {
  seed_node();
}

DPI_FUZZ_ONE_INPUT(read_flow_specs) {
  constexpr const char* kOrigin = "flows.jsonl";
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto specs = dpi::cli::read_flow_specs(text, kOrigin);
  if (!specs) {
    FUZZ_CHECK(dpi::fuzz::one_line_naming(specs.error().message, kOrigin),
               "error is not one line naming the file: " + specs.error().message);
    return 0;
  }
  std::optional<dpi::NodeInfo> node = seed_node();
  for (auto& s : *specs) {
    FUZZ_CHECK(s.where.rfind(kOrigin, 0) == 0, "a line's place does not name the file");
    auto from = dpi::cli::parse_endpoint(s.src, "src");
    auto to = dpi::cli::parse_endpoint(s.dst, "dst");
    if (!from || !to) continue;
    std::vector<std::string> notes;
    if (!dpi::cli::resolve_pods(*from, *to, node, "cali", notes)) continue;
    auto f = dpi::cli::build_flow(s.args, *from->addr, *to->addr, s.where);
    if (f) FUZZ_CHECK(f->src.family == f->dst.family, "a built flow mixes families");
  }
  return 0;
}
