// Fuzz target: the node file reader (--node FILE): JSON text, the optional {"node": ...} wrapper
// that source.cpp accepts, then node_info_from_json. Invariants: no crash or sanitizer report, a
// refused document gets a one-line error naming the file, and what to_json writes for an
// accepted node reads back to the same node. Route lookups (ip rules included) run over every
// accepted node.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "core/node_info.h"
#include "fuzz_check.h"
#include "fuzz_target.h"

DPI_FUZZ_ONE_INPUT(node_info_from_json) {
  constexpr const char* kOrigin = "node.json";
  auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  if (j.is_object() && j.contains("node")) j = j["node"];
  auto node = dpi::node_info_from_json(j, kOrigin);
  if (!node) {
    FUZZ_CHECK(dpi::fuzz::one_line_naming(node.error().message, kOrigin),
               "error is not one line naming the file: " + node.error().message);
    return 0;
  }
  const nlohmann::json written = dpi::to_json(*node);
  auto again = dpi::node_info_from_json(written, "written");
  FUZZ_CHECK(again.ok(), "to_json output does not read back: " + written.dump());
  FUZZ_CHECK(dpi::to_json(*again) == written, "to_json output reads back differently");

  // Route lookups through the ip rules with assorted flow keys: an answer is a route containing
  // the address, or the action of the rule that gave it; a refusal says why.
  dpi::RouteKey keys[3];
  keys[0].iif = "lo";
  keys[1] = {*dpi::IpAddr::parse("10.65.0.3"), 0x10001, "eth0", 6, 40000, 443, true};
  keys[2] = {{}, 1, "", 17, 0, 0, false};
  for (const char* a : {"10.65.0.2", "172.18.0.2", "0.0.0.0", "255.255.255.255", "fe80::1", "::"}) {
    auto addr = dpi::IpAddr::parse(a);
    for (const auto& key : keys) {
      auto res = node->route(*addr, key);
      if (res.route)
        FUZZ_CHECK(
            res.route->dst.contains(*addr) || (res.rule && res.rule->action == res.route->type),
            "route: neither a containing route nor a rule action");
      else if (res.rule)
        FUZZ_CHECK(!res.unsupported.empty(), "route refused without saying why");
    }
    (void)node->is_local(*addr);
  }
  for (const auto& r : node->rules) (void)dpi::ip_rule_text(r);
  for (const auto& i : node->interfaces) {
    FUZZ_CHECK(node->find_interface(i.name) == &i, "interface names are unique");
    FUZZ_CHECK(node->find_interface(i.index) == &i, "interface indexes are unique");
  }
  return 0;
}
