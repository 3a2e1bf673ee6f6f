#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backends/nftables/detect.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/source_options.h"

namespace dpi::cli {

namespace {

struct DetectOptions {
  SourceOptions source;
  std::string output = "text";
};

nlohmann::json kube_proxy_mode(const nft::Detection& d) {
  if (d.kube_proxy_nft) return "nftables";
  if (d.kube_proxy_iptables) return "iptables";
  return nullptr;
}

int run_detect(const DetectOptions& o) {
  auto spec = o.source.resolved();
  if (!spec) return report_error(spec.error());
  auto src = nft::load_source(*spec);
  if (!src) return report_error(src.error());
  nft::Detection d = nft::detect(*src->ruleset);
  if (o.output == "json") {
    nlohmann::json j = {
        {"schema", "dpinspect.detect/v1"},
        {"source", src->description},
        {"dataplanes",
         {{"nftables", d.native_calico}, {"iptables_nft", d.iptables_calico}, {"ebpf", nullptr}}},
        {"kind", d.kind()},
        {"layouts", d.layouts()},
        {"calico_version_hint",
         d.version_hint.empty() ? nlohmann::json(nullptr) : nlohmann::json(d.version_hint)},
        {"kube_proxy", kube_proxy_mode(d)},
        {"counts",
         {{"tables", d.tables}, {"chains", d.chains}, {"rules", d.rules}, {"sets", d.sets}}},
        {"xt_expressions", d.xt_expressions},
        {"clues", d.clues}};
    // Clues quote chain names from the input: bytes that are not UTF-8 become U+FFFD.
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << fmt::format("dataplane: {}\nsource:    {}\n", d.kind(), src->description);
    for (const auto& l : d.layouts()) std::cout << "layout:    " << l << "\n";
    if (!d.version_hint.empty()) std::cout << "calico:    " << d.version_hint << "\n";
    std::cout << fmt::format("size:      {} tables, {} chains, {} rules, {} named sets\n", d.tables,
                             d.chains, d.rules, d.sets);
    std::cout << "ebpf:      not checked (eBPF backend not built yet)\n";
    for (const auto& c : d.clues) std::cout << "  - " << c << "\n";
  }
  return 0;
}

}  // namespace

Runner add_detect(CLI::App& app) {
  auto o = std::make_shared<DetectOptions>();
  auto* cmd = app.add_subcommand(
      "detect",
      "Say which Calico dataplane(s) a node runs (native nftables, iptables through iptables-nft)\n"
      "and the version clues seen (mark layout, NFLOG rules, chain naming).\n\n"
      "Examples:\n"
      "  dpinspect detect\n"
      "  dpinspect detect --netns node1 -o json\n"
      "  dpinspect detect --ruleset examples/seed/iptables-nft.json");
  o->source.add_to(*cmd);
  cmd->add_option("-o,--output", o->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  return [o] { return run_detect(*o); };
}

}  // namespace dpi::cli
